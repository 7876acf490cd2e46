package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"sync"
)

// MemFS is an in-memory FS that models a disk behind a page cache, for the
// simulator and tests. It is deterministic: nothing in it depends on time,
// map order or anything but the calls made and the random sources given to
// its fault methods (memfs_faults.go).
//
// The model keeps, for every file, its current content (what reads see)
// and its durable content (what a crash leaves when nothing unsynced
// survives): File.Sync makes the current content durable. For every
// directory it keeps its current names, its durable names and the list of
// creates, renames and removes done since its last SyncDir, in order. A
// crash keeps a random prefix of that list per directory (journaling file
// systems commit metadata in order), and gives every file's unsynced bytes
// a random fate. Directories made by MkdirAll are durable at once: the
// model is about files, and the store creates its directory only once.
type MemFS struct {
	mu   sync.Mutex
	dirs map[string]*memDir
	// gen counts crashes and wipes: a handle opened before one fails, as a
	// process's file descriptors do not survive a power loss.
	gen uint64
	// failAfter is how many more mutating calls succeed before failErr is
	// returned by each of them; failErr nil means none fails.
	failAfter int
	failErr   error
	// locked holds the directories whose lock a store holds.
	locked map[string]bool
}

type memDir struct {
	names   map[string]*memInode
	durable map[string]*memInode
	pending []dirOp
}

type dirOpKind int

const (
	opCreate dirOpKind = iota
	opRemove
	opRename
)

// dirOp is a name change not yet made durable by SyncDir.
type dirOp struct {
	kind     dirOpKind
	name, to string
	ino      *memInode
}

// memInode is a file. data may share its backing array with durable in
// the prefix where the two are equal; data is only ever appended to in
// place (Truncate gives it a fresh array), so that sharing is safe.
type memInode struct {
	data    []byte
	durable []byte
}

// errStaleHandle is returned by a handle opened before a crash or wipe.
var errStaleHandle = errors.New("memfs: file handle from before a crash")

var _ FS = (*MemFS)(nil)

// NewMemFS returns an empty MemFS.
func NewMemFS() *MemFS { return &MemFS{dirs: map[string]*memDir{}} }

// mutate reports the injected failure, if one is due. Called with mu held
// by every operation that changes the disk.
func (m *MemFS) mutate() error {
	if m.failErr == nil {
		return nil
	}
	if m.failAfter > 0 {
		m.failAfter--
		return nil
	}
	return m.failErr
}

// lookup returns the directory and base name of name.
func (m *MemFS) lookup(name string) (*memDir, string, error) {
	name = filepath.Clean(name)
	d := m.dirs[filepath.Dir(name)]
	if d == nil {
		return nil, "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return d, filepath.Base(name), nil
}

// MkdirAll creates dir and its parents, durably.
func (m *MemFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.mutate(); err != nil {
		return err
	}
	for d := filepath.Clean(dir); m.dirs[d] == nil; d = filepath.Dir(d) {
		m.dirs[d] = &memDir{names: map[string]*memInode{}, durable: map[string]*memInode{}}
		if filepath.Dir(d) == d {
			break
		}
	}
	return nil
}

// ReadDir lists the files and subdirectories of dir, sorted.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = filepath.Clean(dir)
	d := m.dirs[dir]
	if d == nil {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	names := slices.Collect(maps.Keys(d.names))
	for sub := range m.dirs {
		if sub != dir && filepath.Dir(sub) == dir {
			names = append(names, filepath.Base(sub))
		}
	}
	slices.Sort(names)
	return names, nil
}

// Open opens an existing file for reading.
func (m *MemFS) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	ino := d.names[base]
	if ino == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{fs: m, ino: ino, gen: m.gen, name: name}, nil
}

// Create creates name, or empties it, for writing. A new name is volatile
// until SyncDir; emptying an existing file is volatile until Sync.
func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	if err := m.mutate(); err != nil {
		return nil, err
	}
	ino := d.names[base]
	if ino != nil {
		ino.data = nil
	} else {
		ino = &memInode{}
		d.names[base] = ino
		d.pending = append(d.pending, dirOp{kind: opCreate, name: base, ino: ino})
	}
	return &memFile{fs: m, ino: ino, gen: m.gen, name: name, write: true}, nil
}

// OpenAppend opens an existing file for writing at its end.
func (m *MemFS) OpenAppend(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	ino := d.names[base]
	if ino == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{fs: m, ino: ino, gen: m.gen, name: name, write: true}, nil
}

// Remove deletes name; volatile until SyncDir.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookup(name)
	if err != nil {
		return err
	}
	if d.names[base] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if err := m.mutate(); err != nil {
		return err
	}
	delete(d.names, base)
	d.pending = append(d.pending, dirOp{kind: opRemove, name: base})
	return nil
}

// Rename moves oldname over newname, in the same directory; volatile until
// SyncDir.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookup(oldname)
	if err != nil {
		return err
	}
	if filepath.Dir(filepath.Clean(newname)) != filepath.Dir(filepath.Clean(oldname)) {
		return fmt.Errorf("memfs: rename %s to %s: across directories", oldname, newname)
	}
	ino := d.names[base]
	if ino == nil {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	if err := m.mutate(); err != nil {
		return err
	}
	to := filepath.Base(newname)
	delete(d.names, base)
	d.names[to] = ino
	d.pending = append(d.pending, dirOp{kind: opRename, name: base, to: to})
	return nil
}

// SyncDir makes dir's name changes durable.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.dirs[filepath.Clean(dir)]
	if d == nil {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	if err := m.mutate(); err != nil {
		return err
	}
	d.durable = maps.Clone(d.names)
	d.pending = nil
	return nil
}

// Stat returns the current size of name.
func (m *MemFS) Stat(name string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookup(name)
	if err != nil {
		return 0, err
	}
	ino := d.names[base]
	if ino == nil {
		return 0, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return int64(len(ino.data)), nil
}

// apply replays op on names; a crash applies a prefix of a directory's
// pending operations to its durable names.
func (op dirOp) apply(names map[string]*memInode) {
	switch op.kind {
	case opCreate:
		names[op.name] = op.ino
	case opRemove:
		delete(names, op.name)
	case opRename:
		if ino, ok := names[op.name]; ok {
			names[op.to] = ino
			delete(names, op.name)
		}
	}
}

// memFile is a handle on a memInode.
type memFile struct {
	fs     *MemFS
	ino    *memInode
	gen    uint64
	name   string
	write  bool
	off    int64
	closed bool
}

// check reports why f cannot be used; called with fs.mu held.
func (f *memFile) check(write bool) error {
	switch {
	case f.closed:
		return fmt.Errorf("memfs: %s: %w", f.name, fs.ErrClosed)
	case f.gen != f.fs.gen:
		return fmt.Errorf("memfs: %s: %w", f.name, errStaleHandle)
	case write && !f.write:
		return fmt.Errorf("memfs: %s: opened for reading", f.name)
	case !write && f.write:
		return fmt.Errorf("memfs: %s: opened for writing", f.name)
	}
	return nil
}

func (f *memFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(false); err != nil {
		return 0, err
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(true); err != nil {
		return 0, err
	}
	if err := f.fs.mutate(); err != nil {
		return 0, err
	}
	f.ino.data = append(f.ino.data, p...)
	return len(p), nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed || f.gen != f.fs.gen {
		return 0, f.check(f.write)
	}
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(true); err != nil {
		return err
	}
	if err := f.fs.mutate(); err != nil {
		return err
	}
	d := f.ino.data
	f.ino.durable = d[:len(d):len(d)]
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check(true); err != nil {
		return err
	}
	if err := f.fs.mutate(); err != nil {
		return err
	}
	// A fresh array, so that later appends never write into bytes the
	// durable content may share.
	data := make([]byte, size, max(size, int64(len(f.ino.data))))
	copy(data, f.ino.data)
	f.ino.data = data
	return nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return fmt.Errorf("memfs: %s: %w", f.name, fs.ErrClosed)
	}
	f.closed = true
	return nil
}

// Lock takes dir's lock, held in memory: a crash or a wipe releases every
// lock, as the end of a process does.
func (m *MemFS) Lock(dir string) (func() error, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.locked[dir] {
		return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	if m.locked == nil {
		m.locked = map[string]bool{}
	}
	m.locked[dir] = true
	gen := m.gen
	return func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.gen == gen {
			delete(m.locked, dir)
		}
		return nil
	}, nil
}
