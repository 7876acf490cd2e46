package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"github.com/vsrgo/vsr/messages"
)

// Options tunes a FileStore. The zero value is the default.
type Options struct {
	// SegmentBytes is the size past which the WAL moves to a new segment
	// file (default 64 MiB). Compaction frees space in whole segments, so
	// smaller segments free it sooner, at the cost of more files.
	SegmentBytes int64

	// skipChecksums makes Load take frames whose checksum fails for intact
	// ones (decoding what it can): a defect for the simulator's self-test,
	// which must show that its checks catch a store that trusts corrupt
	// data. It is unexported so that a normal build cannot set it: the only
	// setter, WithSkippedChecksums, exists under the vsrbugs build tag. It
	// is an option of each store, not a package variable, so that stores
	// running side by side in one process (a simulated cluster's replicas,
	// parallel tests) do not share the defect.
	skipChecksums bool
}

// DefaultSegmentBytes is Options.SegmentBytes when it is zero.
const DefaultSegmentBytes = 64 << 20

// maxKeptBuffer bounds the encoding buffer a FileStore keeps between Saves,
// so that one large Save does not pin its buffer forever.
const maxKeptBuffer = 1 << 20

// FileStore is the Store on an FS: a meta file naming the owner, a
// write-ahead log in segment files, a head file naming the newest segment,
// and checkpoint files (see wal.go, head.go, checkpoint_file.go and meta.go
// for the formats, load.go for how Load tells a crash from corruption).
//
// It keeps in memory only what validation and compaction need: the log's
// last op, the latest checkpoint's op, the hard state and, per segment, the
// highest op it brought the log to. The entries live on disk.
type FileStore struct {
	fs     FS
	dir    string
	opts   Options
	unlock func() error // releases the directory's lock

	// ckptMu serialises SaveCheckpoint, which writes its file without mu so
	// that a large checkpoint does not hold up Saves, and guards ckpts.
	ckptMu sync.Mutex
	ckpts  []uint64 // ops of the checkpoint files present, ascending

	// mu guards the WAL and everything below.
	mu     sync.Mutex
	loaded bool
	closed bool
	failed error // the write error that failed the store, or nil
	active File  // the last segment, open for appending
	size   int64 // its length
	segs   []segment
	seq    uint64 // the last frame's sequence number
	bounds logBounds
	hs     HardState
	encBuf []byte
}

// segment is a WAL segment file and the highest op the log reached in it:
// once a durable checkpoint covers that op, and a later segment exists,
// nothing in it is needed any more.
type segment struct {
	num   uint64
	maxOp uint64
}

var _ Store = (*FileStore)(nil)

// Open opens the data directory dir of the replica id on fsys, creating it
// when it is missing or empty. A directory of another replica gives an
// error wrapping ErrIdentity, one of another format ErrVersion, and one
// holding files that are not a store's ErrForeignDir; such a directory is
// left untouched. Load must be called next.
func Open(fsys FS, dir string, id Identity, opts Options) (*FileStore, error) {
	if id.ReplicaCount < 1 || id.ReplicaIndex < 0 || id.ReplicaIndex >= id.ReplicaCount {
		return nil, fmt.Errorf("storage: invalid identity: %s", id)
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	dir = filepath.Clean(dir)
	if err := openDir(fsys, dir, id); err != nil {
		return nil, err
	}
	// The lock is taken once the directory is known to be this replica's,
	// so that a refused directory is left untouched.
	unlock, err := fsys.Lock(dir)
	if err != nil {
		return nil, err
	}
	return &FileStore{fs: fsys, dir: dir, opts: opts, unlock: unlock}, nil
}

// writable reports why the store cannot write; called with mu held.
func (s *FileStore) writable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.failed != nil:
		return fmt.Errorf("%w (failed earlier: %v)", ErrClosed, s.failed)
	case !s.loaded:
		return errors.New("storage: Load must be called before writing")
	}
	return nil
}

// fail marks the store failed by err and returns err. After a failed write
// or sync the store cannot know what the disk holds: Linux may drop the
// dirty pages of a failed fsync and report success to the next fsync (the
// PostgreSQL "fsyncgate" of 2018, https://wiki.postgresql.org/wiki/Fsync_Errors),
// so retrying could acknowledge data that is gone. The only safe course is
// to stop writing and let a restart's Load find out what survived.
func (s *FileStore) fail(err error) error {
	if s.failed == nil {
		s.failed = err
	}
	return err
}

// failUnlocked is fail for a caller that does not hold mu.
func (s *FileStore) failUnlocked(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail(err)
}

func (s *FileStore) path(name string) string { return filepath.Join(s.dir, name) }

// Save appends one frame per batch to the active segment and syncs it once.
func (s *FileStore) Save(batches []Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if len(batches) == 0 {
		return nil
	}
	after, peak, err := checkBatches(batches, s.bounds)
	if err != nil {
		return err
	}
	if s.size >= s.opts.SegmentBytes {
		if err := s.rotate(); err != nil {
			return s.fail(err)
		}
	}
	buf := s.encBuf[:0]
	seq := s.seq
	for i := range batches {
		seq++
		if buf, err = appendBatchFrame(buf, seq, &batches[i]); err != nil {
			return fmt.Errorf("%w: %v", ErrBadBatch, err)
		}
	}
	if err := s.appendSync(buf); err != nil {
		return s.fail(err)
	}
	s.seq = seq
	s.bounds.lastOp = after.lastOp
	s.segs[len(s.segs)-1].maxOp = max(s.segs[len(s.segs)-1].maxOp, peak)
	for i := range batches {
		if hs := batches[i].HardState; hs != nil {
			s.hs = *hs
		}
	}
	if cap(buf) <= maxKeptBuffer {
		s.encBuf = buf[:0]
	} else {
		s.encBuf = nil
	}
	return nil
}

// appendSync writes buf at the end of the active segment and syncs it.
func (s *FileStore) appendSync(buf []byte) error {
	name := s.path(segName(s.segs[len(s.segs)-1].num))
	if _, err := s.active.Write(buf); err != nil {
		return fmt.Errorf("storage: write %s: %w", name, err)
	}
	s.size += int64(len(buf))
	if err := s.active.Sync(); err != nil {
		return fmt.Errorf("storage: sync %s: %w", name, err)
	}
	return nil
}

// rotate starts the next segment with a base frame restating the state so
// far. The active segment is already synced (every append syncs), and the
// new one becomes durable, name and all, before anything is appended to it.
// Only then does the head file name it: a crash in between leaves a newest
// segment past the head's, which Load accepts, while the other order would
// leave a head past every segment, which Load takes for a lost segment.
func (s *FileStore) rotate() error {
	num := s.segs[len(s.segs)-1].num + 1
	f, err := s.createSegment(num, s.seq+1, false, nil)
	if err != nil {
		return err
	}
	if err := writeHead(s.fs, s.dir, num); err != nil {
		f.Close()
		return err
	}
	old := s.active
	if err := s.setActive(f); err != nil {
		return err
	}
	s.seq++
	s.segs = append(s.segs, segment{num: num, maxOp: s.bounds.lastOp})
	if err := old.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", s.path(segName(num-1)), err)
	}
	return nil
}

// createSegment writes the segment num holding one base frame with the
// sequence number seq, the store's hard state and bounds and entries,
// syncs it and its directory, and returns it open for appending. A reset
// segment is first written under a temporary name, so that it appears
// whole or not at all: it supersedes every segment before it.
func (s *FileStore) createSegment(num, seq uint64, reset bool, entries []*messages.Entry) (File, error) {
	final := s.path(segName(num))
	name := final
	if reset {
		name += tmpSuffix
	}
	buf, err := appendBaseFrame(nil, seq, reset, s.hs, s.bounds.ckptOp, s.bounds.lastOp, entries)
	if err != nil {
		return nil, err
	}
	f, err := s.fs.Create(name)
	if err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", name, err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: sync %s: %w", name, err)
	}
	if reset {
		f.Close()
		if err := s.fs.Rename(name, final); err != nil {
			return nil, fmt.Errorf("storage: rename %s: %w", name, err)
		}
		if f, err = s.fs.OpenAppend(final); err != nil {
			return nil, fmt.Errorf("storage: open %s: %w", final, err)
		}
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: sync directory %s: %w", s.dir, err)
	}
	return f, nil
}

// SaveCheckpoint writes cp's file, then records in the WAL that it exists,
// so that Load can tell a checkpoint file that went missing from one never
// written, and keeps the latest two checkpoint files. A checkpoint at or
// below one already durable is not written again: Load returns the later.
func (s *FileStore) SaveCheckpoint(cp Checkpoint) error {
	if cp.OpNumber == 0 {
		return fmt.Errorf("%w: checkpoint at op 0", ErrBadBatch)
	}
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.mu.Lock()
	err := s.writable()
	latest := s.bounds.ckptOp
	s.mu.Unlock()
	if err != nil || cp.OpNumber <= latest {
		return err
	}
	if err := writeCheckpointFile(s.fs, s.dir, &cp); err != nil {
		return s.failUnlocked(err)
	}
	s.ckpts = append(s.ckpts, cp.OpNumber)
	if err := s.recordCheckpoint(cp.OpNumber); err != nil {
		return err
	}
	return s.pruneCheckpoints()
}

// recordCheckpoint appends to the WAL the record that checkpoint op is
// durable, under mu: a Save may be appending from another goroutine.
func (s *FileStore) recordCheckpoint(op uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if err := s.appendSync(appendCheckpointFrame(nil, s.seq+1, op)); err != nil {
		return s.fail(err)
	}
	s.seq++
	s.bounds.ckptOp = max(s.bounds.ckptOp, op)
	return nil
}

// pruneCheckpoints deletes every checkpoint file but the latest two: the
// one before the latest is what Load falls back to if the latest rots.
// Called with ckptMu held.
func (s *FileStore) pruneCheckpoints() error {
	slices.Sort(s.ckpts)
	if len(s.ckpts) <= 2 {
		return nil
	}
	old := s.ckpts[:len(s.ckpts)-2]
	for _, op := range old {
		if err := s.fs.Remove(s.path(ckptName(op))); err != nil {
			return s.failUnlocked(fmt.Errorf("storage: remove %s: %w", s.path(ckptName(op)), err))
		}
	}
	s.ckpts = slices.Delete(s.ckpts, 0, len(old))
	if err := s.fs.SyncDir(s.dir); err != nil {
		return s.failUnlocked(fmt.Errorf("storage: sync directory %s: %w", s.dir, err))
	}
	return nil
}

// Compact deletes the oldest segments, never the active one, while the
// highest op each brought the log to is covered by both through and the
// latest durable checkpoint. Later segments restate the hard state and the
// checkpoint in their base frames, so nothing else is lost. Segments go in
// order, each removal synced before the next, so that a crash leaves the
// remaining segments without a gap.
func (s *FileStore) Compact(through uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	limit := min(through, s.bounds.ckptOp)
	for len(s.segs) > 1 && s.segs[0].maxOp <= limit {
		name := s.path(segName(s.segs[0].num))
		if err := s.fs.Remove(name); err != nil {
			return s.fail(fmt.Errorf("storage: remove %s: %w", name, err))
		}
		if err := s.fs.SyncDir(s.dir); err != nil {
			return s.fail(fmt.Errorf("storage: sync directory %s: %w", s.dir, err))
		}
		s.segs = s.segs[1:]
	}
	return nil
}

// Close closes the active segment. The store is unusable after it.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	var err error
	if s.active != nil {
		err = s.active.Close()
	}
	return errors.Join(err, s.unlock())
}
