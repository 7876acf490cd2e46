package storage

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces dir/name with data so that a crash leaves either
// the old file or the new one, never a mix: it writes name+".tmp", syncs it,
// renames it over name and syncs dir. It makes dir if it is missing. It is
// for the store's users (a node's OwnerFile, a group's record of its
// members); the store itself writes through FS.
func WriteFileAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	final := filepath.Join(dir, name)
	tmp := final + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
