package storage

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// FS is the file system a FileStore runs on. Every file operation of the
// store goes through it, so that the simulator can give the store a disk
// that loses unsynced writes, tears them and rots synced bytes (MemFS),
// while production uses the operating system's (OSFS).
//
// The contract is POSIX's, with nothing taken for granted: a write is
// durable only after File.Sync of its file, and a create, rename or remove
// is durable only after SyncDir of the directory that holds the name.
type FS interface {
	// MkdirAll creates dir and any missing parents, durably.
	MkdirAll(dir string) error
	// ReadDir returns the names of the entries of dir, sorted. A missing
	// dir gives an error that matches fs.ErrNotExist.
	ReadDir(dir string) ([]string, error)
	// Open opens an existing file for reading.
	Open(name string) (File, error)
	// Create creates name, or empties it if it exists, for writing.
	Create(name string) (File, error)
	// OpenAppend opens an existing file for writing at its end.
	OpenAppend(name string) (File, error)
	// Remove deletes a file.
	Remove(name string) error
	// Rename replaces newname by oldname, atomically. Both are in the same
	// directory.
	Rename(oldname, newname string) error
	// SyncDir makes the creates, renames and removes done in dir durable.
	SyncDir(dir string) error
	// Stat returns the size of a file, or an error that matches
	// fs.ErrNotExist when there is none.
	Stat(name string) (int64, error)
	// Lock takes the exclusive lock of the data directory dir, or fails
	// with an error wrapping ErrLocked while another store (in this
	// process or another) holds it. unlock releases it; so does the end of
	// the process.
	Lock(dir string) (unlock func() error, err error)
}

// ErrLocked: another store holds the data directory: two replicas writing
// one log would corrupt it.
var ErrLocked = errors.New("storage: data directory is in use by another store")

// lockName is the file OSFS locks in a data directory.
const lockName = "vsr.lock"

// File is an open file of an FS. A file opened with Open only reads; one
// opened with Create or OpenAppend only writes.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	// Size returns the file's current length.
	Size() (int64, error)
	// Sync makes the file's content durable.
	Sync() error
	// Truncate changes the file's length; writes continue at the new end.
	Truncate(size int64) error
	// Close releases the file. It does not sync it.
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

var _ FS = OSFS{}

// MkdirAll creates dir and syncs the parent of every directory it creates,
// so that a crash right after cannot lose the directory with the files the
// store then puts in it.
func (OSFS) MkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	// Find the directories that do not exist yet, outermost last.
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range slices.Backward(missing) {
		if err := (OSFS{}).SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// ReadDir lists dir, sorted by name.
func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// Open opens name for reading.
func (OSFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Create creates or empties name for writing.
func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// OpenAppend opens an existing name for appending.
func (OSFS) OpenAppend(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Remove deletes name.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename renames oldname to newname.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// SyncDir fsyncs the directory itself: on Linux this is what makes a new,
// renamed or removed name survive a crash (fsync of the file is not enough).
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Stat returns the size of name.
func (OSFS) Stat(name string) (int64, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// osFile adapts *os.File to File.
type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
