package storage

import (
	"errors"
	"testing"

	"github.com/vsrgo/vsr/messages"
)

// Tests both stores must pass alike.

func eachStore(t *testing.T, f func(t *testing.T, s Store, reload func() State)) {
	t.Run("MemStore", func(t *testing.T) {
		s := NewMemStore()
		if _, err := s.Load(); err != nil {
			t.Fatal(err)
		}
		f(t, s, func() State {
			st, err := s.Load()
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("FileStore", func(t *testing.T) {
		m := NewMemFS()
		fs, _ := openMem(t, m, Options{})
		f(t, fs, func() State {
			// Load a second store on the same directory (the first stays
			// open: MemFS shares the files). The lock that keeps two stores
			// off one directory is lifted for this look.
			m.mu.Lock()
			m.locked = nil
			m.mu.Unlock()
			_, st := openMem(t, m, Options{})
			return st
		})
	})
}

// TestSaveRejectsMalformedBatches: each malformed batch gives ErrBadBatch
// and nothing of its Save is written, not even the good batches before it.
func TestSaveRejectsMalformedBatches(t *testing.T) {
	good := Batch{LogFrom: 4, Entries: ents(4, 4, 1), HardState: hs(1, 3)}
	bad := map[string][]Batch{
		"nil entry":              {{LogFrom: 4, Entries: []*messages.Entry{ent(4, 1), nil}}},
		"misnumbered entries":    {{LogFrom: 4, Entries: []*messages.Entry{ent(4, 1), ent(6, 1)}}},
		"first entry not there":  {{LogFrom: 4, Entries: ents(5, 5, 1)}},
		"gap after the log":      {{LogFrom: 5, Entries: ents(5, 5, 1)}},
		"entries with no start":  {{Entries: ents(4, 4, 1)}},
		"gap after a good batch": {good, {LogFrom: 6, Entries: ents(6, 6, 1)}},
		"bad after a good batch": {good, {LogFrom: 5, Entries: []*messages.Entry{nil}}},
	}
	for name, bs := range bad {
		t.Run(name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s Store, reload func() State) {
				mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 3, 1), HardState: hs(1, 2)})
				if err := s.Save(bs); !errors.Is(err, ErrBadBatch) {
					t.Fatalf("Save: %v, want ErrBadBatch", err)
				}
				st := reload()
				wantClean(t, st)
				wantOps(t, st, 1, 3)
				if st.HardState != *hs(1, 2) {
					t.Fatalf("hard state %+v: the rejected Save wrote", st.HardState)
				}
				// A rejected batch does not fail the store.
				mustSave(t, s, good)
			})
		})
	}
}

// TestLogMayRestartAfterCheckpoint: past a durable checkpoint the log may
// start after it, with nothing between; one op further is a gap.
func TestLogMayRestartAfterCheckpoint(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, reload func() State) {
		mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 3, 1)})
		if err := s.Save([]Batch{{LogFrom: 11, Entries: ents(11, 11, 2)}}); !errors.Is(err, ErrBadBatch) {
			t.Fatalf("a restart with no checkpoint: %v, want ErrBadBatch", err)
		}
		if err := s.SaveCheckpoint(cp(10, "installed")); err != nil {
			t.Fatal(err)
		}
		if err := s.Save([]Batch{{LogFrom: 12, Entries: ents(12, 12, 2)}}); !errors.Is(err, ErrBadBatch) {
			t.Fatalf("a gap past the checkpoint: %v, want ErrBadBatch", err)
		}
		mustSave(t, s, Batch{LogFrom: 11, Entries: ents(11, 12, 2), HardState: hs(2, 10)})
		st := reload()
		wantClean(t, st)
		if st.Checkpoint == nil || st.Checkpoint.OpNumber != 10 {
			t.Fatalf("checkpoint %+v", st.Checkpoint)
		}
		wantOps(t, st, 11, 12)
	})
}

// TestCompactKeepsEntriesPastCheckpoint: Compact never drops what the
// checkpoint does not cover, whatever through says.
func TestCompactKeepsEntriesPastCheckpoint(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, reload func() State) {
		mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 20, 1), HardState: hs(1, 15)})
		if err := s.SaveCheckpoint(cp(10, "x")); err != nil {
			t.Fatal(err)
		}
		if err := s.Compact(18); err != nil {
			t.Fatal(err)
		}
		st := reload()
		wantOps(t, st, 11, 20)
		// A cut below the compaction point still works.
		mustSave(t, s, Batch{LogFrom: 16, Entries: ents(16, 17, 2)})
		wantOps(t, reload(), 11, 17)
	})
}

// TestMemStoreCompactFreesEntries: MemStore holds no entry Compact dropped.
func TestMemStoreCompactFreesEntries(t *testing.T) {
	s := NewMemStore()
	mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 100, 1)})
	if err := s.SaveCheckpoint(cp(90, "x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(90); err != nil {
		t.Fatal(err)
	}
	if len(s.ents) != 10 || s.base != 90 {
		t.Fatalf("after Compact(90): %d entries from op %d", len(s.ents), s.base+1)
	}
}

// TestClosedStoreRefusesWrites: after Close every write is ErrClosed.
func TestClosedStoreRefusesWrites(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ func() State) {
		s.Close()
		if err := s.Save([]Batch{{HardState: hs(1, 0)}}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Save after Close: %v", err)
		}
		if err := s.SaveCheckpoint(cp(1, "x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("SaveCheckpoint after Close: %v", err)
		}
		if err := s.Compact(1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Compact after Close: %v", err)
		}
	})
}
