package storage

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestRandomCorruptionNeverLoadsWrongState: one flipped byte anywhere in
// the WAL or a checkpoint file of a cleanly closed store is either reported
// as damage, or (when it hit nothing Load reads, such as the checkpoint
// kept for fallback) leaves the state exactly as saved. Never a silently
// different state. After the damage the repaired store loads cleanly.
func TestRandomCorruptionNeverLoadsWrongState(t *testing.T) {
	seeds := uint64(400)
	if testing.Short() {
		seeds = 50
	}
	damaged := 0
	for seed := range seeds {
		r := rng(seed)
		g := &gen{r: r, m: newModel()}
		fsys := NewMemFS()
		opts := Options{SegmentBytes: 200 + int64(r.IntN(1500))}
		s, _ := openMem(t, fsys, opts)
		for range 10 + r.IntN(60) {
			switch k := r.IntN(10); {
			case k < 8:
				mustSave(t, s, g.batches()...)
			case k < 9:
				if op := g.checkpointOp(); op != 0 {
					if err := s.SaveCheckpoint(cp(op, fmt.Sprint("state ", op))); err != nil {
						t.Fatal(err)
					}
					g.m.ckpt = op
				}
			default:
				if err := s.Compact(g.m.ckpt); err != nil {
					t.Fatal(err)
				}
			}
		}
		s.Close()
		name, off, ok := fsys.CorruptRandom(r, func(n string) bool { return filepath.Base(n) != metaName })
		if !ok {
			t.Fatalf("seed %d: no file to corrupt", seed)
		}
		s, st := openMem(t, fsys, opts)
		if st.Damage == nil {
			c := uint64(0)
			if st.Checkpoint != nil {
				c = st.Checkpoint.OpNumber
			}
			if c != g.m.ckpt {
				t.Fatalf("seed %d: byte %d of %s flipped: checkpoint %d, want %d, and no damage", seed, off, name, c, g.m.ckpt)
			}
			if d := g.m.diff(st); d != "" {
				t.Fatalf("seed %d: byte %d of %s flipped: %s, and no damage", seed, off, name, d)
			}
			continue
		}
		damaged++
		if !strings.Contains(st.Damage.Error(), filepath.Base(name)) && !strings.Contains(st.Damage.Error(), "missing") {
			t.Logf("seed %d: byte %d of %s flipped: damage %q does not name the file", seed, off, name, st.Damage)
		}
		_, st = reopen(t, s, opts)
		wantClean(t, st)
	}
	t.Logf("%d of %d corruptions reported as damage", damaged, seeds)
	if damaged < int(seeds)/2 {
		t.Fatalf("only %d of %d corruptions were reported", damaged, seeds)
	}
}
