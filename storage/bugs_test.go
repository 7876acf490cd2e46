//go:build vsrbugs

package storage

import "testing"

// TestWithSkippedChecksumsTrustsCorruptFrames: with the defect on, Load
// takes a frame whose checksum fails for intact and returns its rotted
// content without damage, which is what the simulator's self-test must
// catch. A store opened without the option, on a disk with the same rot,
// still reports it: the defect belongs to one store, not to the process.
func TestWithSkippedChecksumsTrustsCorruptFrames(t *testing.T) {
	rotted := func() *MemFS {
		m := NewMemFS()
		saveOps(t, m, 5, Options{}).Close()
		seg := segFiles(m)[0]
		offs := frameOffsets(t, m, seg)
		// The last byte of op 3's frame is in its operation's text.
		if err := m.FlipByte(seg, int64(offs[4]-1)); err != nil {
			t.Fatal(err)
		}
		return m
	}
	buggy, healthy := rotted(), rotted()
	sb, st := openMem(t, buggy, WithSkippedChecksums(Options{}))
	defer sb.Close()
	if st.Damage != nil {
		t.Fatalf("with checksums skipped, damage: %v", st.Damage)
	}
	if len(st.Entries) != 5 || string(st.Entries[2].Operation) == string(ent(3, 1).Operation) {
		t.Fatalf("the rotted entry did not come back rotted: %q", st.Entries[2].Operation)
	}
	// Opened while the defective store is still open.
	_, st = openMem(t, healthy, Options{})
	wantDamage(t, st)
	wantOps(t, st, 1, 2)
}
