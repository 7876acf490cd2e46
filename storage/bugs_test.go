//go:build vsrbugs

package storage

import "testing"

// TestInjectSkipChecksumsTrustsCorruptFrames: with the defect on, Load
// takes a frame whose checksum fails for intact and returns its rotted
// content without damage, which is what the simulator's self-test must
// catch.
func TestInjectSkipChecksumsTrustsCorruptFrames(t *testing.T) {
	m := NewMemFS()
	saveOps(t, m, 5, Options{}).Close()
	seg := segFiles(m)[0]
	offs := frameOffsets(t, m, seg)
	// The last byte of op 3's frame is in its operation's text.
	if err := m.FlipByte(seg, int64(offs[4]-1)); err != nil {
		t.Fatal(err)
	}
	InjectSkipChecksums(true)
	defer InjectSkipChecksums(false)
	_, st := openMem(t, m, Options{})
	if st.Damage != nil {
		t.Fatalf("with checksums skipped, damage: %v", st.Damage)
	}
	if len(st.Entries) != 5 || string(st.Entries[2].Operation) == string(ent(3, 1).Operation) {
		t.Fatalf("the rotted entry did not come back rotted: %q", st.Entries[2].Operation)
	}
}
