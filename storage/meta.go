package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
)

// The meta file, vsr.meta, names the directory's owner. It is written once,
// when the directory is initialised, and read at every open:
//
//	magic "vsr-meta", u32 FormatVersion, u32 zero, u64 ClusterID,
//	u64 ReplicaIndex, u64 ReplicaCount, u32 CRC-32C of all before it
//
// little endian. The magic and version come first and are checked before
// anything else, so that a later format may change everything after them.

const (
	metaMagic = "vsr-meta"
	metaSize  = 8 + 4 + 4 + 8 + 8 + 8 + 4
)

// ErrForeignDir: the directory holds files that are not a data directory's.
// A store refuses it rather than write among (and later delete) a user's
// files.
var ErrForeignDir = errors.New("storage: directory is not a vsr data directory")

func encodeMeta(id Identity) []byte {
	b := make([]byte, 0, metaSize)
	b = append(b, metaMagic...)
	b = binary.LittleEndian.AppendUint32(b, FormatVersion)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, id.ClusterID)
	b = binary.LittleEndian.AppendUint64(b, uint64(id.ReplicaIndex))
	b = binary.LittleEndian.AppendUint64(b, uint64(id.ReplicaCount))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// checkMeta verifies that the meta file b names id.
func checkMeta(name string, b []byte, id Identity) error {
	if len(b) < 12 || string(b[:8]) != metaMagic {
		return fmt.Errorf("%w: %s does not start with the magic %q", ErrVersion, name, metaMagic)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != FormatVersion {
		return fmt.Errorf("%w: %s has format version %d, this build reads version %d", ErrVersion, name, v, FormatVersion)
	}
	if len(b) != metaSize || crc32.Checksum(b[:metaSize-4], castagnoli) != binary.LittleEndian.Uint32(b[metaSize-4:]) {
		return fmt.Errorf("%w: %s is corrupt (bad length or checksum): the directory's owner is unknown", ErrDamaged, name)
	}
	got := Identity{
		ClusterID:    binary.LittleEndian.Uint64(b[16:]),
		ReplicaIndex: int(binary.LittleEndian.Uint64(b[24:])),
		ReplicaCount: int(binary.LittleEndian.Uint64(b[32:])),
	}
	if got != id {
		return fmt.Errorf("%w: %s belongs to %s, not to %s", ErrIdentity, filepath.Dir(name), got, id)
	}
	return nil
}

// String names the identity in errors.
func (id Identity) String() string {
	return fmt.Sprintf("cluster %d replica %d of %d", id.ClusterID, id.ReplicaIndex, id.ReplicaCount)
}

// openDir checks that dir is id's data directory, or initialises it when it
// is missing or empty. It changes nothing in a directory it refuses.
func openDir(fsys FS, dir string, id Identity) error {
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := fsys.MkdirAll(dir); err != nil {
			return fmt.Errorf("storage: create %s: %w", dir, err)
		}
		return writeMeta(fsys, dir, id)
	}
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", dir, err)
	}
	var mine, foreign []string
	hasMeta := false
	for _, n := range names {
		switch {
		case n == metaName:
			hasMeta = true
		case n == metaName+tmpSuffix:
			// A first open that crashed before its rename: nothing else
			// can be here yet, and the file is rewritten below.
		case ours(n):
			mine = append(mine, n)
		default:
			foreign = append(foreign, n)
		}
	}
	if hasMeta {
		name := filepath.Join(dir, metaName)
		b, err := readWhole(fsys, name)
		if err != nil {
			return err
		}
		return checkMeta(name, b, id)
	}
	if len(foreign) > 0 {
		return fmt.Errorf("%w: %s has no %s and holds %q", ErrForeignDir, dir, metaName, foreign[:min(len(foreign), 5)])
	}
	if len(mine) > 0 {
		// A store's files without the meta: whose they are is unknown, so
		// they are neither adopted nor overwritten.
		return fmt.Errorf("%w: %s holds %d store files but no %s: its owner is unknown", ErrDamaged, dir, len(mine), metaName)
	}
	return writeMeta(fsys, dir, id)
}

// writeMeta writes the meta file durably: temporary file, sync, rename,
// sync of the directory.
func writeMeta(fsys FS, dir string, id Identity) error {
	final := filepath.Join(dir, metaName)
	tmp := final + tmpSuffix
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", tmp, err)
	}
	if _, err := f.Write(encodeMeta(id)); err != nil {
		f.Close()
		return fmt.Errorf("storage: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("storage: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, final); err != nil {
		return fmt.Errorf("storage: rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("storage: sync directory %s: %w", dir, err)
	}
	return nil
}
