package storage

import (
	"errors"
	"strings"
	"testing"
)

var errInjected = errors.New("injected disk failure")

// ambiguousTail is in the Damage of a complete bad frame at the very end
// of the log, which a crash alone can produce (a torn write whose last
// piece reads as zeros and ends exactly at a frame's end).
const ambiguousTail = "torn write or a synced frame that rotted"

// TestCrashLosesOnlyUnsyncedWrites: a Save whose write reached the page
// cache but whose sync failed is, after a crash, either wholly there or
// wholly gone; the Saves before it are all there, and none of it is
// damage.
func TestCrashLosesOnlyUnsyncedWrites(t *testing.T) {
	seen := map[int]bool{}
	for seed := range uint64(200) {
		m := NewMemFS()
		s, _ := openMem(t, m, Options{})
		mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 3, 1), HardState: hs(1, 2)})
		m.FailWritesAfter(1, errInjected) // the write lands, the sync fails
		bs := []Batch{
			{LogFrom: 4, Entries: ents(4, 5, 1), HardState: hs(1, 4)},
			{LogFrom: 6, Entries: ents(6, 6, 1), HardState: hs(1, 5)},
		}
		if err := s.Save(bs); !errors.Is(err, errInjected) {
			t.Fatalf("Save: %v", err)
		}
		m.FailWrites(nil)
		m.Crash(rng(seed))
		_, st := openMem(t, m, Options{})
		if st.Damage != nil && !strings.Contains(st.Damage.Error(), ambiguousTail) {
			t.Fatalf("seed %d: a crash made damage: %v", seed, st.Damage)
		}
		last := st.Entries[len(st.Entries)-1].OpNumber
		if st.Damage != nil != st.HardState.Recovering {
			t.Fatalf("seed %d: damage %v with hard state %+v: a damaged store comes back recovering", seed, st.Damage, st.HardState)
		}
		st.HardState.Recovering = false
		switch {
		case last == 3 && st.HardState == *hs(1, 2):
			seen[0] = true
		case last == 5 && st.HardState == *hs(1, 4):
			seen[1] = true
		case last == 6 && st.HardState == *hs(1, 5):
			seen[2] = true
		default:
			t.Fatalf("seed %d: after the crash: last op %d, hard state %+v: not a prefix of whole batches", seed, last, st.HardState)
		}
		wantOps(t, st, 1, last)
	}
	if len(seen) != 3 {
		t.Fatalf("200 crashes left only the prefixes %v of the unsynced Save", seen)
	}
}

// TestRandomCrashesKeepSyncedBatches drives a FileStore on a MemFS with
// random work, failing the disk in the middle of a Save, SaveCheckpoint,
// Compact or Load and crashing it at random points over many seeds. After
// each crash, Load must return exactly the effect of the Saves that
// returned nil plus a prefix of whole batches of the one that failed, with
// a checkpoint that was durable or being written, and no damage (but the
// one ambiguous case a crash can make, with the same guarantee).
func TestRandomCrashesKeepSyncedBatches(t *testing.T) {
	seeds := uint64(300)
	if testing.Short() {
		seeds = 50
	}
	var crashes, partial int
	for seed := range seeds {
		r := rng(seed)
		g := &gen{r: r, m: newModel()}
		fsys := NewMemFS()
		opts := Options{SegmentBytes: 200 + int64(r.IntN(1500))}
		s, _ := openMem(t, fsys, opts)
		for step := range 120 {
			// What the disk may hold after a crash now: candidate models
			// and the checkpoint ops allowed.
			cands := []*model{g.m.clone()}
			ckpts := []uint64{g.m.ckpt}
			failing := r.IntN(8) == 0
			if failing {
				fsys.FailWritesAfter(r.IntN(8), errInjected)
			}
			var err error
			switch k := r.IntN(10); {
			case k < 7:
				before := g.m.clone()
				bs := g.batches()
				if err = s.Save(bs); err != nil {
					cands = cands[:0]
					for p := range bs {
						c := before.clone()
						for _, b := range bs[:p] {
							c.apply(b)
						}
						cands = append(cands, c)
					}
					cands = append(cands, g.m.clone())
				} else {
					cands = []*model{g.m.clone()}
				}
			case k < 9:
				if op := g.checkpointOp(); op != 0 {
					if err = s.SaveCheckpoint(cp(op, "s")); err != nil {
						ckpts = append(ckpts, op)
					} else {
						ckpts = []uint64{op}
					}
					g.m.ckpt = op
				}
			default:
				err = s.Compact(g.m.ckpt)
			}
			if err != nil && !errors.Is(err, errInjected) {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			if !failing && r.IntN(12) != 0 {
				continue
			}
			// Crash, and maybe fail the disk during the Load after it,
			// then crash again.
			crashes++
			fsys.FailWrites(nil)
			fsys.Crash(r)
			s.Close()
			if r.IntN(4) == 0 {
				fsys.FailWritesAfter(r.IntN(4), errInjected)
				if s2, err := Open(fsys, testDir, testID, opts); err == nil {
					s2.Load()
				}
				fsys.FailWrites(nil)
				fsys.Crash(r)
			}
			var st State
			s, st = openMem(t, fsys, opts)
			if st.Damage != nil && !strings.Contains(st.Damage.Error(), ambiguousTail) {
				t.Fatalf("seed %d step %d: a crash made damage: %v", seed, step, st.Damage)
			}
			var c uint64
			if st.Checkpoint != nil {
				c = st.Checkpoint.OpNumber
			}
			if !containsOp(ckpts, c) {
				t.Fatalf("seed %d step %d: checkpoint %d, want one of %v", seed, step, c, ckpts)
			}
			match := -1
			var diffs []string
			for i, cand := range cands {
				d := cand.diff(st)
				if d == "" {
					match = i
					break
				}
				diffs = append(diffs, d)
			}
			if match < 0 {
				t.Fatalf("seed %d step %d: the state after the crash is none of the allowed ones:\n%s",
					seed, step, strings.Join(diffs, "\n"))
			}
			if match > 0 && match < len(cands)-1 {
				partial++
			}
			g.m = cands[match]
			g.m.ckpt = c
			if st.Damage != nil {
				g.m.hs.Recovering = true // the repaired base records it
			}
		}
		s.Close()
	}
	t.Logf("%d crashes, %d left a strict prefix of a failed group commit", crashes, partial)
	if partial == 0 {
		t.Fatal("no crash left a strict prefix of a group commit: the test does not reach torn Saves")
	}
}

func containsOp(ops []uint64, op uint64) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// TestDamagedStoreRecoversAfterCrashDuringRepair: a crash while Load sets
// damage aside and writes the new base leaves a store that loads either
// the same damage again or the repaired state, never less.
func TestDamagedStoreRecoversAfterCrashDuringRepair(t *testing.T) {
	for seed := range uint64(100) {
		m := NewMemFS()
		saveOps(t, m, 20, Options{SegmentBytes: 300}).Close()
		segs := segFiles(m)
		offs := frameOffsets(t, m, segs[1])
		m.FlipByte(segs[1], int64(offs[2]+frameHeaderSize))
		r := rng(seed)
		m.FailWritesAfter(r.IntN(12), errInjected)
		if s, err := Open(m, testDir, testID, Options{SegmentBytes: 300}); err == nil {
			s.Load()
		}
		m.FailWrites(nil)
		m.Crash(r)
		s, st := openMem(t, m, Options{SegmentBytes: 300})
		n := uint64(len(st.Entries))
		if n == 0 || n >= 20 {
			t.Fatalf("seed %d: %d entries after a crash during repair", seed, n)
		}
		wantOps(t, st, 1, n)
		_, st2 := reopen(t, s, Options{SegmentBytes: 300})
		wantClean(t, st2)
		if got := uint64(len(st2.Entries)); got != n {
			t.Fatalf("seed %d: %d entries after the repair, %d before", seed, got, n)
		}
	}
}

// TestCrashDuringRotation: a crash at any point of a Save that starts a
// new segment (making the segment, then rewriting the head, then
// appending) loses no batch a Save returned nil for, keeps or drops the
// failed Save whole, and is never damage (but the one ambiguous tail a
// crash can make, which still keeps every saved batch).
func TestCrashDuringRotation(t *testing.T) {
	opts := Options{SegmentBytes: 300}
	points := 0
	for n := 0; ; n++ {
		finished := false
		for seed := range uint64(20) {
			r := rng(seed)
			m := NewMemFS()
			s, _ := openMem(t, m, opts)
			var saved uint64
			for s.size < opts.SegmentBytes || saved < 3 {
				saved++
				mustSave(t, s, Batch{LogFrom: saved, Entries: ents(saved, saved, 1), HardState: hs(1, saved-1)})
			}
			before := len(segFiles(m))
			m.FailWritesAfter(n, errInjected)
			next := saved + 1
			err := s.Save([]Batch{{LogFrom: next, Entries: ents(next, next, 1), HardState: hs(1, saved)}})
			if err != nil && !errors.Is(err, errInjected) {
				t.Fatalf("point %d seed %d: Save: %v", n, seed, err)
			}
			if err == nil && len(segFiles(m)) != before+1 {
				t.Fatalf("point %d seed %d: the Save did not rotate", n, seed)
			}
			finished = err == nil
			m.FailWrites(nil)
			m.Crash(r)
			s.Close()
			s, st := openMem(t, m, opts)
			if st.Damage != nil && !strings.Contains(st.Damage.Error(), ambiguousTail) {
				t.Fatalf("point %d seed %d: a crash during rotation made damage: %v", n, seed, st.Damage)
			}
			last := uint64(len(st.Entries))
			if last < saved || last > next || finished && last != next {
				t.Fatalf("point %d seed %d: %d entries after the crash, want %d (or %d)", n, seed, last, saved, next)
			}
			wantOps(t, st, 1, last)
			if st.HardState != *hs(1, last-1) {
				t.Fatalf("point %d seed %d: hard state %+v with %d entries", n, seed, st.HardState, last)
			}
			_, st = reopen(t, s, opts)
			wantClean(t, st)
			wantOps(t, st, 1, last)
		}
		points++
		if finished {
			break
		}
		if n > 100 {
			t.Fatal("the Save never finishes")
		}
	}
	t.Logf("crashed at %d points of the rotation", points)
}
