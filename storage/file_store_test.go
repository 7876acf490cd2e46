package storage

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// roundTrip saves appends, a truncation and hard states, reopens and checks
// that Load returns their effect, in order.
func roundTrip(t *testing.T, fsys FS, dir string) {
	s, err := Open(fsys, dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsNew() {
		t.Fatalf("a new store loads %+v", st)
	}
	mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 5, 1), HardState: hs(1, 0)})
	mustSave(t, s, Batch{HardState: hs(1, 3)})
	// A view change replaces ops 4 and 5 and adds 6.
	mustSave(t, s, Batch{LogFrom: 4, Entries: ents(4, 6, 2), HardState: hs(2, 3)})
	// A cut with no entries.
	mustSave(t, s, Batch{LogFrom: 6})
	s.Close()

	s, err = Open(fsys, dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err = s.Load()
	if err != nil {
		t.Fatal(err)
	}
	wantClean(t, st)
	if st.HardState != *hs(2, 3) {
		t.Fatalf("hard state %+v", st.HardState)
	}
	wantOps(t, st, 1, 5)
	for _, e := range st.Entries {
		if want := uint64(1); e.OpNumber >= 4 && e.View != 2 || e.OpNumber < 4 && e.View != want {
			t.Fatalf("entry %d is of view %d", e.OpNumber, e.View)
		}
	}
	// Later Saves extend what was loaded.
	mustSave(t, s, Batch{LogFrom: 6, Entries: ents(6, 7, 2)})
	s.Close()
	s, err = Open(fsys, dir, testID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err = s.Load()
	if err != nil {
		t.Fatal(err)
	}
	wantClean(t, st)
	wantOps(t, st, 1, 7)
	s.Close()
}

func TestRoundTripOSFS(t *testing.T) { roundTrip(t, OSFS{}, filepath.Join(t.TempDir(), "data")) }

func TestRoundTripMemFS(t *testing.T) { roundTrip(t, NewMemFS(), testDir) }

// TestRoundTripSurvivesCrashAfterSave: whatever Save returned nil for is
// durable, whatever the crash does to unsynced data.
func TestRoundTripSurvivesCrashAfterSave(t *testing.T) {
	for seed := range uint64(50) {
		m := NewMemFS()
		s, _ := openMem(t, m, Options{})
		mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 3, 1), HardState: hs(1, 2)})
		m.Crash(rng(seed))
		_, st := openMem(t, m, Options{})
		wantClean(t, st)
		wantOps(t, st, 1, 3)
		if st.HardState != *hs(1, 2) {
			t.Fatalf("seed %d: hard state %+v", seed, st.HardState)
		}
	}
}

// TestGroupCommitSyncsOnce: one Save of several batches writes one frame
// per batch and syncs once, and all of them load.
func TestGroupCommitSyncsOnce(t *testing.T) {
	m := NewMemFS()
	s, _ := openMem(t, m, Options{})
	cf := &countingFS{FS: m}
	s.fs = cf
	s.active = &countingFile{File: s.active, fs: cf}
	var bs []Batch
	for op := uint64(1); op <= 10; op++ {
		bs = append(bs, Batch{LogFrom: op, Entries: ents(op, op, 1), HardState: hs(1, op-1)})
	}
	mustSave(t, s, bs...)
	if cf.syncs != 1 || cf.writes != 1 {
		t.Fatalf("one Save of 10 batches made %d writes and %d syncs, want 1 and 1", cf.writes, cf.syncs)
	}
	if n := len(frameOffsets(t, m, segFiles(m)[0])); n != 11 {
		t.Fatalf("%d frames, want the base and 10 batches", n)
	}
	_, st := reopen(t, s, Options{})
	wantOps(t, st, 1, 10)
	if st.HardState != *hs(1, 9) {
		t.Fatalf("hard state %+v", st.HardState)
	}
}

type countingFS struct {
	FS
	syncs, writes int
}

type countingFile struct {
	File
	fs *countingFS
}

func (f *countingFile) Sync() error                 { f.fs.syncs++; return f.File.Sync() }
func (f *countingFile) Write(p []byte) (int, error) { f.fs.writes++; return f.File.Write(p) }

// TestRotationAndCompactKeepLatestState: segments rotate past SegmentBytes;
// Compact deletes only segments a checkpoint covers, never the active
// one; the latest hard state, the checkpoint and the entries after it
// still load.
func TestRotationAndCompactKeepLatestState(t *testing.T) {
	m := NewMemFS()
	opts := Options{SegmentBytes: 300}
	s, _ := openMem(t, m, opts)
	for op := uint64(1); op <= 40; op++ {
		mustSave(t, s, Batch{LogFrom: op, Entries: ents(op, op, 1), HardState: hs(1, op-1)})
	}
	before := len(segFiles(m))
	if before < 5 {
		t.Fatalf("%d segments after 40 saves with 300-byte segments", before)
	}
	// Without a checkpoint, Compact deletes nothing.
	if err := s.Compact(40); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(m)); n != before {
		t.Fatalf("Compact without a checkpoint deleted %d segments", before-n)
	}
	if err := s.SaveCheckpoint(cp(30, "state at 30")); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(30); err != nil {
		t.Fatal(err)
	}
	after := len(segFiles(m))
	if after >= before || after < 2 {
		t.Fatalf("Compact(30) left %d of %d segments", after, before)
	}
	s, st := reopen(t, s, opts)
	wantClean(t, st)
	if st.Checkpoint == nil || st.Checkpoint.OpNumber != 30 || string(st.Checkpoint.State) != "state at 30" {
		t.Fatalf("checkpoint %+v", st.Checkpoint)
	}
	wantOps(t, st, 31, 40)
	if st.HardState != *hs(1, 39) {
		t.Fatalf("hard state %+v", st.HardState)
	}
	// Compacting everything still keeps the active segment, and the hard
	// state in it.
	if err := s.SaveCheckpoint(cp(40, "state at 40")); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(1000); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(m)); n != 1 {
		t.Fatalf("Compact past everything left %d segments, want the active one", n)
	}
	_, st = reopen(t, s, opts)
	wantClean(t, st)
	wantOps(t, st, 41, 40)
	if st.HardState != *hs(1, 39) || st.Checkpoint.OpNumber != 40 {
		t.Fatalf("after full compaction: hard state %+v, checkpoint %d", st.HardState, st.Checkpoint.OpNumber)
	}
}

// TestCheckpointsKeepLatestTwo: older checkpoint files are deleted, and
// Load returns the latest.
func TestCheckpointsKeepLatestTwo(t *testing.T) {
	m := NewMemFS()
	s, _ := openMem(t, m, Options{})
	mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 50, 1)})
	for _, op := range []uint64{10, 20, 30, 40} {
		if err := s.SaveCheckpoint(cp(op, fmt.Sprint("state ", op))); err != nil {
			t.Fatal(err)
		}
	}
	// An older checkpoint than the latest is not written.
	if err := s.SaveCheckpoint(cp(25, "stale")); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(testDir, ckptName(30)), filepath.Join(testDir, ckptName(40))}
	if got := ckptFiles(m); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("checkpoint files %v, want %v", got, want)
	}
	_, st := reopen(t, s, Options{})
	wantClean(t, st)
	if st.Checkpoint.OpNumber != 40 || string(st.Checkpoint.State) != "state 40" ||
		!bytes.Equal(st.Checkpoint.Head, []byte("head 40")) {
		t.Fatalf("checkpoint %d %q %q", st.Checkpoint.OpNumber, st.Checkpoint.Head, st.Checkpoint.State)
	}
	wantOps(t, st, 41, 50)
}

// TestCorruptLatestCheckpointFallsBack: a rotted latest checkpoint file is
// damage; Load returns the one before and sets the bad file aside.
func TestCorruptLatestCheckpointFallsBack(t *testing.T) {
	m := NewMemFS()
	s, _ := openMem(t, m, Options{})
	mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 30, 1), HardState: hs(1, 5)})
	for _, op := range []uint64{10, 20} {
		if err := s.SaveCheckpoint(cp(op, "x")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	latest := filepath.Join(testDir, ckptName(20))
	if err := m.FlipByte(latest, ckptHeaderSize+2); err != nil {
		t.Fatal(err)
	}
	s, st := openMem(t, m, Options{})
	wantDamage(t, st)
	if st.Checkpoint == nil || st.Checkpoint.OpNumber != 10 {
		t.Fatalf("fell back to %+v, want the checkpoint at 10", st.Checkpoint)
	}
	// The WAL's record of checkpoint 20 is where the replay stops: the
	// entries before it are all there.
	wantOps(t, st, 11, 30)
	if _, err := m.Stat(latest + damagedSuffix); err != nil {
		t.Fatalf("the corrupt checkpoint was not set aside: %v", err)
	}
	// The repaired store loads cleanly.
	_, st = reopen(t, s, Options{})
	wantClean(t, st)
	wantOps(t, st, 11, 30)
}

// TestSaveCheckpointConcurrentWithSave: SaveCheckpoint runs from another
// goroutine while Saves go on; both land in the WAL intact (run with
// -race).
func TestSaveCheckpointConcurrentWithSave(t *testing.T) {
	m := NewMemFS()
	s, _ := openMem(t, m, Options{SegmentBytes: 2000})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for op := uint64(10); op <= 200; op += 10 {
			if err := s.SaveCheckpoint(cp(op, "s")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for op := uint64(1); op <= 300; op++ {
		mustSave(t, s, Batch{LogFrom: op, Entries: ents(op, op, 1), HardState: hs(1, op-1)})
	}
	wg.Wait()
	if err := s.Compact(200); err != nil {
		t.Fatal(err)
	}
	_, st := reopen(t, s, Options{SegmentBytes: 2000})
	wantClean(t, st)
	if st.Checkpoint.OpNumber != 200 {
		t.Fatalf("checkpoint %d", st.Checkpoint.OpNumber)
	}
	wantOps(t, st, 201, 300)
}

// TestWriteFailureClosesStore: a failed write or sync is returned, and the
// store refuses every later write, since what the disk holds is unknown.
func TestWriteFailureClosesStore(t *testing.T) {
	for _, after := range []int{0, 1} { // the write fails; the sync fails
		m := NewMemFS()
		s, _ := openMem(t, m, Options{})
		mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 2, 1)})
		diskFull := errors.New("disk full")
		m.FailWritesAfter(after, diskFull)
		if err := s.Save([]Batch{{LogFrom: 3, Entries: ents(3, 3, 1)}}); !errors.Is(err, diskFull) {
			t.Fatalf("Save on a failing disk: %v", err)
		}
		m.FailWrites(nil)
		if err := s.Save([]Batch{{LogFrom: 3, Entries: ents(3, 3, 1)}}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Save after a failure: %v, want ErrClosed", err)
		}
		if err := s.SaveCheckpoint(cp(1, "x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("SaveCheckpoint after a failure: %v, want ErrClosed", err)
		}
		if err := s.Compact(1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Compact after a failure: %v, want ErrClosed", err)
		}
		// A restart finds what was synced.
		_, st := reopen(t, s, Options{})
		wantClean(t, st)
		if n := len(st.Entries); n != 2 && n != 3 {
			t.Fatalf("%d entries after a failed save", n)
		}
	}
}

// TestCheckpointWriteFailureClosesStore: the same for SaveCheckpoint.
func TestCheckpointWriteFailureClosesStore(t *testing.T) {
	m := NewMemFS()
	s, _ := openMem(t, m, Options{})
	mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 2, 1)})
	m.FailWrites(errors.New("i/o error"))
	if err := s.SaveCheckpoint(cp(2, "x")); err == nil {
		t.Fatal("SaveCheckpoint on a failing disk succeeded")
	}
	m.FailWrites(nil)
	if err := s.Save([]Batch{{HardState: hs(1, 1)}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after a failed checkpoint: %v, want ErrClosed", err)
	}
}
