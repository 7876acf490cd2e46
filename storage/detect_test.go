package storage

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
)

// The detection rules of Load: a torn tail is cut silently, everything
// else that is wrong is damage, with the state before it returned.

// saveOps saves ops 1..n, one Save each, with commit number op-1, and
// returns the store still open.
func saveOps(t *testing.T, m *MemFS, n uint64, opts Options) *FileStore {
	t.Helper()
	s, _ := openMem(t, m, opts)
	for op := uint64(1); op <= n; op++ {
		mustSave(t, s, Batch{LogFrom: op, Entries: ents(op, op, 1), HardState: hs(1, op-1)})
	}
	return s
}

// appendRaw appends b to name, synced, as if a crash had left it there.
func appendRaw(t *testing.T, m *MemFS, name string, b []byte) {
	t.Helper()
	f, err := m.OpenAppend(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func aFrame(t *testing.T, op uint64) []byte {
	b, err := appendBatchFrame(nil, 1000, &Batch{LogFrom: op, Entries: ents(op, op, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTornTailIsCutNotDamage(t *testing.T) {
	frame := aFrame(t, 6)
	badCRC := append([]byte(nil), frame...)
	badCRC[len(badCRC)-1] ^= 1
	cases := map[string][]byte{
		"partial header":               frame[:3],
		"partial payload":              frame[:len(frame)-4],
		"zero tail":                    make([]byte, 100),
		"bad checksum then zeros":      append(badCRC, make([]byte, 20)...),
		"payload zero-filled at end":   append(append([]byte(nil), frame[:12]...), make([]byte, 7)...),
		"length past the end, no more": {0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5},
	}
	for name, junk := range cases {
		t.Run(name, func(t *testing.T) {
			m := NewMemFS()
			s := saveOps(t, m, 5, Options{})
			s.Close()
			seg := segFiles(m)[0]
			good, _ := m.Stat(seg)
			appendRaw(t, m, seg, junk)
			s, st := openMem(t, m, Options{})
			wantClean(t, st)
			wantOps(t, st, 1, 5)
			if size, _ := m.Stat(seg); size != good {
				t.Fatalf("segment is %d bytes after Load, want the torn tail cut to %d", size, good)
			}
			mustSave(t, s, Batch{LogFrom: 6, Entries: ents(6, 6, 1)})
			_, st = reopen(t, s, Options{})
			wantClean(t, st)
			wantOps(t, st, 1, 6)
		})
	}
}

// TestBadChecksumAtVeryEndIsDamage: a complete last frame whose checksum
// fails may be a synced frame that rotted: damage, with what came before.
func TestBadChecksumAtVeryEndIsDamage(t *testing.T) {
	m := NewMemFS()
	saveOps(t, m, 5, Options{}).Close()
	seg := segFiles(m)[0]
	size, _ := m.Stat(seg)
	if err := m.FlipByte(seg, size-1); err != nil {
		t.Fatal(err)
	}
	_, st := openMem(t, m, Options{})
	wantDamage(t, st)
	wantOps(t, st, 1, 4)
	if st.HardState != recovering(hs(1, 3)) {
		t.Fatalf("hard state %+v, want the one of the last good frame, marked recovering", st.HardState)
	}
}

// TestCorruptMiddleFrameIsDamage: a bad frame followed by good ones is
// corruption: Damage names the file and offset, the state is the prefix
// before it, the segment is set aside, a reopen is clean, and later Saves
// extend the repaired log.
func TestCorruptMiddleFrameIsDamage(t *testing.T) {
	m := NewMemFS()
	saveOps(t, m, 10, Options{}).Close()
	seg := segFiles(m)[0]
	offs := frameOffsets(t, m, seg) // the base, then ops 1..10
	if err := m.FlipByte(seg, int64(offs[5]+frameHeaderSize+3)); err != nil {
		t.Fatal(err)
	}
	s, st := openMem(t, m, Options{})
	wantDamage(t, st)
	wantOps(t, st, 1, 4)
	if st.HardState != recovering(hs(1, 3)) {
		t.Fatalf("hard state %+v", st.HardState)
	}
	if msg := st.Damage.Error(); !strings.Contains(msg, filepath.Base(seg)) || !strings.Contains(msg, "offset") {
		t.Fatalf("damage %q does not say where", msg)
	}
	if _, err := m.Stat(seg + damagedSuffix); err != nil {
		t.Fatalf("damaged segment not set aside: %v", err)
	}
	mustSave(t, s, Batch{LogFrom: 5, Entries: ents(5, 7, 2), HardState: hs(2, 4)})
	s, st = reopen(t, s, Options{})
	wantClean(t, st)
	wantOps(t, st, 1, 7)
	if st.HardState != *hs(2, 4) {
		t.Fatalf("hard state %+v", st.HardState)
	}

	// A second damage replaces the first one's *.damaged files.
	cur := segFiles(m)
	last := cur[len(cur)-1]
	offs = frameOffsets(t, m, last)
	if err := m.FlipByte(last, int64(offs[1]+frameHeaderSize+1)); err != nil {
		t.Fatal(err)
	}
	_, st = reopen(t, s, Options{})
	wantDamage(t, st)
	if _, err := m.Stat(seg + damagedSuffix); err == nil {
		t.Fatal("an earlier repair's .damaged file was kept")
	}
	if _, err := m.Stat(last + damagedSuffix); err != nil {
		t.Fatalf("damaged segment not set aside: %v", err)
	}
}

// TestCorruptLengthIsDamageNotTear: a rotted length field that makes a
// middle frame of the last segment run past its end must not pass for a
// torn tail, which would silently drop the synced frames after it.
func TestCorruptLengthIsDamageNotTear(t *testing.T) {
	m := NewMemFS()
	saveOps(t, m, 10, Options{}).Close()
	seg := segFiles(m)[0]
	offs := frameOffsets(t, m, seg)
	if err := m.FlipByte(seg, int64(offs[3]+3)); err != nil { // the length's top byte
		t.Fatal(err)
	}
	_, st := openMem(t, m, Options{})
	wantDamage(t, st)
	wantOps(t, st, 1, 2)
}

// TestBadFrameInEarlierSegmentIsDamage: only the last segment may have a
// torn tail; a torn frame in an earlier one is damage.
func TestBadFrameInEarlierSegmentIsDamage(t *testing.T) {
	m := NewMemFS()
	saveOps(t, m, 20, Options{SegmentBytes: 300}).Close()
	segs := segFiles(m)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	appendRaw(t, m, segs[0], make([]byte, 10))
	_, st := openMem(t, m, Options{SegmentBytes: 300})
	wantDamage(t, st)
	// Everything in the first segment is kept.
	if len(st.Entries) == 0 || len(st.Entries) >= 20 {
		t.Fatalf("%d entries", len(st.Entries))
	}
}

// TestMissingSegmentIsDamage: a gap in segment numbers, or a first segment
// gone without a checkpoint covering it.
func TestMissingSegmentIsDamage(t *testing.T) {
	for _, which := range []string{"middle", "first"} {
		t.Run(which, func(t *testing.T) {
			m := NewMemFS()
			saveOps(t, m, 20, Options{SegmentBytes: 300}).Close()
			segs := segFiles(m)
			victim := segs[1]
			if which == "first" {
				victim = segs[0]
			}
			if err := m.RemoveFile(victim); err != nil {
				t.Fatal(err)
			}
			s, st := openMem(t, m, Options{SegmentBytes: 300})
			wantDamage(t, st)
			if !strings.Contains(st.Damage.Error(), "missing") {
				t.Fatalf("damage %q", st.Damage)
			}
			if which == "middle" {
				n := uint64(len(st.Entries))
				if n == 0 || n >= 20 {
					t.Fatalf("%d entries, want those of the first segment", n)
				}
				wantOps(t, st, 1, n)
			} else if len(st.Entries) != 0 || st.HardState != (HardState{Recovering: true}) {
				t.Fatalf("with the first segment missing, state %+v", st)
			}
			_, st = reopen(t, s, Options{SegmentBytes: 300})
			wantClean(t, st)
		})
	}
}

// TestMissingCheckpointFileIsDamage: the WAL records checkpoint 10, its
// file is gone and no later one exists.
func TestMissingCheckpointFileIsDamage(t *testing.T) {
	m := NewMemFS()
	s := saveOps(t, m, 15, Options{})
	if err := s.SaveCheckpoint(cp(10, "x")); err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, Batch{LogFrom: 16, Entries: ents(16, 16, 1)})
	s.Close()
	if err := m.RemoveFile(filepath.Join(testDir, ckptName(10))); err != nil {
		t.Fatal(err)
	}
	_, st := openMem(t, m, Options{})
	wantDamage(t, st)
	if !strings.Contains(st.Damage.Error(), "checkpoint 10") {
		t.Fatalf("damage %q", st.Damage)
	}
	if st.Checkpoint != nil {
		t.Fatalf("checkpoint %d", st.Checkpoint.OpNumber)
	}
	wantOps(t, st, 1, 15)
}

// TestSequenceGapIsDamage: a frame cut out of the middle of a segment,
// one that holds only a hard state, so that the entries stay contiguous
// and only the sequence numbers tell.
func TestSequenceGapIsDamage(t *testing.T) {
	m := NewMemFS()
	s := saveOps(t, m, 5, Options{})
	mustSave(t, s, Batch{HardState: hs(2, 4)})
	mustSave(t, s, Batch{LogFrom: 6, Entries: ents(6, 8, 2)})
	s.Close()
	seg := segFiles(m)[0]
	data, _ := readWhole(m, seg)
	offs := frameOffsets(t, m, seg) // base, ops 1..5, the hard state, 6..8
	spliced := append(append([]byte(nil), data[:offs[6]]...), data[offs[7]:]...)
	f, _ := m.Create(seg)
	f.Write(spliced)
	f.Sync()
	f.Close()
	_, st := openMem(t, m, Options{})
	wantDamage(t, st)
	if !strings.Contains(st.Damage.Error(), "sequence number") {
		t.Fatalf("damage %q", st.Damage)
	}
	wantOps(t, st, 1, 5)
}

// TestCommitPastLogIsDamage: a hard state whose commit number the log and
// checkpoint do not reach.
func TestCommitPastLogIsDamage(t *testing.T) {
	m := NewMemFS()
	s, _ := openMem(t, m, Options{})
	mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 3, 1), HardState: hs(1, 9)})
	_, st := reopen(t, s, Options{})
	wantDamage(t, st)
	wantOps(t, st, 1, 3)
}

// TestEntriesNotContiguousIsDamage: a log restarted past its end with no
// checkpoint covering the gap (its checkpoint file rotted away).
func TestEntriesNotContiguousIsDamage(t *testing.T) {
	m := NewMemFS()
	s := saveOps(t, m, 3, Options{})
	if err := s.SaveCheckpoint(cp(10, "x")); err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, Batch{LogFrom: 11, Entries: ents(11, 12, 2)})
	s.Close()
	// The checkpoint file and the record of it both gone: only the gap
	// in the log remains to tell.
	m.RemoveFile(filepath.Join(testDir, ckptName(10)))
	seg := segFiles(m)[0]
	offs := frameOffsets(t, m, seg)
	data, _ := readWhole(m, seg)
	rec := data[offs[4]:offs[5]]
	payload := rec[frameHeaderSize:]
	if payload[0] != kindCheckpoint {
		t.Fatalf("frame 4 is of kind %d", payload[0])
	}
	// Make the record a valid empty batch with the same sequence number.
	seq, _ := binary.Uvarint(payload[1:])
	empty, _ := appendBatchFrame(nil, seq, &Batch{})
	fixed := append(append(append([]byte(nil), data[:offs[4]]...), empty...), data[offs[5]:]...)
	f, _ := m.Create(seg)
	f.Write(fixed)
	f.Sync()
	f.Close()
	_, st := openMem(t, m, Options{})
	wantDamage(t, st)
	if !strings.Contains(st.Damage.Error(), "entries are missing") {
		t.Fatalf("damage %q", st.Damage)
	}
	wantOps(t, st, 1, 3)
}

// TestOnlySegmentLostIsDamage: a store that saved batches and lost its
// only segment (no checkpoint either) must not load as a new store, which
// would make the replica start over with an empty log and break every
// promise it made. The head file still names the lost segment.
func TestOnlySegmentLostIsDamage(t *testing.T) {
	m := NewMemFS()
	saveOps(t, m, 5, Options{}).Close()
	segs := segFiles(m)
	if len(segs) != 1 {
		t.Fatalf("%d segments, want 1", len(segs))
	}
	if err := m.RemoveFile(segs[0]); err != nil {
		t.Fatal(err)
	}
	s, st := openMem(t, m, Options{})
	wantDamage(t, st)
	if st.IsNew() {
		t.Fatal("a store that lost its only segment loads as new")
	}
	if msg := st.Damage.Error(); !strings.Contains(msg, "missing") || !strings.Contains(msg, filepath.Base(segs[0])) {
		t.Fatalf("damage %q does not name the missing segment", msg)
	}
	_, st = reopen(t, s, Options{})
	wantClean(t, st)
}

// TestNewestSegmentLostIsDamage: with several segments, losing the newest
// leaves segments that replay without a gap; only the head tells.
func TestNewestSegmentLostIsDamage(t *testing.T) {
	opts := Options{SegmentBytes: 300}
	m := NewMemFS()
	saveOps(t, m, 20, opts).Close()
	segs := segFiles(m)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	if err := m.RemoveFile(segs[len(segs)-1]); err != nil {
		t.Fatal(err)
	}
	s, st := openMem(t, m, opts)
	wantDamage(t, st)
	if !strings.Contains(st.Damage.Error(), filepath.Base(segs[len(segs)-1])) {
		t.Fatalf("damage %q does not name the missing segment", st.Damage)
	}
	n := uint64(len(st.Entries))
	if n == 0 || n >= 20 {
		t.Fatalf("%d entries, want those of the older segments", n)
	}
	wantOps(t, st, 1, n)
	// The repair's reset segment is the newest and the head names it: the
	// store reloads clean, and later Saves extend it.
	mustSave(t, s, Batch{LogFrom: n + 1, Entries: ents(n+1, n+1, 2)})
	s, st = reopen(t, s, opts)
	wantClean(t, st)
	wantOps(t, st, 1, n+1)
	s.Close()
}

// TestNewestSegmentEmptiedIsDamage: a newest segment with nothing intact
// in it passes for a rotation that a crash cut short, unless the head
// names it: the head is written only once the segment's base frame is
// durable, so then its content was lost.
func TestNewestSegmentEmptiedIsDamage(t *testing.T) {
	opts := Options{SegmentBytes: 300}
	m := NewMemFS()
	saveOps(t, m, 20, opts).Close()
	segs := segFiles(m)
	newest := segs[len(segs)-1]
	size, _ := m.Stat(newest)
	f, err := m.Create(newest)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, size))
	f.Sync()
	f.Close()
	_, st := openMem(t, m, opts)
	wantDamage(t, st)
	if n := len(st.Entries); n == 0 || n >= 20 {
		t.Fatalf("%d entries", n)
	}
}

// TestHeadFileLostOrCorruptIsDamage: without an intact head, a lost newest
// segment cannot be ruled out. The state holds everything (nothing else is
// wrong), the damage names the head, and the repair writes a new one.
func TestHeadFileLostOrCorruptIsDamage(t *testing.T) {
	head := filepath.Join(testDir, headName)
	spoil := map[string]func(m *MemFS) error{
		"removed": func(m *MemFS) error { return m.RemoveFile(head) },
		"number":  func(m *MemFS) error { return m.FlipByte(head, 8) },
		"checksum": func(m *MemFS) error {
			size, _ := m.Stat(head)
			return m.FlipByte(head, size-1)
		},
		"truncated": func(m *MemFS) error {
			f, err := m.OpenAppend(head)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := f.Truncate(headSize - 1); err != nil {
				return err
			}
			return f.Sync()
		},
	}
	for name, f := range spoil {
		t.Run(name, func(t *testing.T) {
			opts := Options{SegmentBytes: 300}
			m := NewMemFS()
			saveOps(t, m, 20, opts).Close()
			if err := f(m); err != nil {
				t.Fatal(err)
			}
			s, st := openMem(t, m, opts)
			wantDamage(t, st)
			if !strings.Contains(st.Damage.Error(), headName) {
				t.Fatalf("damage %q does not name the head file", st.Damage)
			}
			wantOps(t, st, 1, 20)
			_, st = reopen(t, s, opts)
			wantClean(t, st)
			wantOps(t, st, 1, 20)
		})
	}
}

// TestSegmentPastHeadIsFine: a crash between making a new segment durable
// and rewriting the head leaves the head one segment behind. That is no
// damage, and Load brings the head up to the newest segment.
func TestSegmentPastHeadIsFine(t *testing.T) {
	opts := Options{SegmentBytes: 300}
	m := NewMemFS()
	saveOps(t, m, 20, opts).Close()
	segs := segFiles(m)
	newest, _ := parseName(filepath.Base(segs[len(segs)-1]), segPrefix, segSuffix)
	if err := writeHead(m, testDir, newest-1); err != nil {
		t.Fatal(err)
	}
	s, st := openMem(t, m, opts)
	wantClean(t, st)
	wantOps(t, st, 1, 20)
	s.Close()
	if got, bad, err := readHead(m, testDir); err != nil || bad != "" || got != newest {
		t.Fatalf("after Load the head names segment %d (%q, %v), want %d", got, bad, err, newest)
	}
}

// recovering is h marked recovering, as a damaged store returns its hard
// state.
func recovering(h *HardState) HardState {
	r := *h
	r.Recovering = true
	return r
}
