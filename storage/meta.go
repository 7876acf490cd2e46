package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"strings"
)

// The meta file, vsr.meta, names the directory's owner. It is written once,
// when the directory is initialised, and read at every open. Its presence
// also marks the directory as initialised: it gets its name only after the
// first WAL segment and the head file (head.go) are durable (see
// initDir). Its format is
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
// is missing, empty, or holds an initialisation that a crash cut short. It
// changes nothing in a directory it refuses: one of another owner or
// format, one holding files that are not a store's, and one holding a
// store's files but neither the meta file nor its temporary file (whose
// owner is unknown, so they are neither adopted nor overwritten).
func openDir(fsys FS, dir string, id Identity) error {
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := fsys.MkdirAll(dir); err != nil {
			return fmt.Errorf("storage: create %s: %w", dir, err)
		}
		return initDir(fsys, dir, id)
	}
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", dir, err)
	}
	var mine, foreign []string
	hasMeta, hasMetaTmp := false, false
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, OwnerFile):
			// The user's (see OwnerFile).
		case n == metaName:
			hasMeta = true
		case n == metaName+tmpSuffix:
			hasMetaTmp = true
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
	if hasMetaTmp {
		return redoInit(fsys, dir, id, mine)
	}
	if len(mine) > 0 {
		// A store's files without the meta: whose they are is unknown, so
		// they are neither adopted nor overwritten.
		return fmt.Errorf("%w: %s holds %d store files but no %s: its owner is unknown", ErrDamaged, dir, len(mine), metaName)
	}
	return initDir(fsys, dir, id)
}

// initDir makes dir, which holds none of the store's files, a new data
// directory of id. Its order is what lets Load and openDir read a
// directory without guessing:
//   - the meta file's temporary file is written and its name made durable
//     before any other file of the store exists, so that a directory
//     holding a store's files without the meta file holds it too whenever
//     an initialisation made them (openDir then starts the initialisation
//     over, and refuses any other such directory);
//   - the first segment, with its base frame, and the head naming it are
//     made durable next;
//   - the meta file gets its name last. A directory with the meta file
//     therefore always had its first segment and head: Load takes either
//     one missing for a lost file (damage), never for a new store.
func initDir(fsys FS, dir string, id Identity) error {
	final := filepath.Join(dir, metaName)
	tmp := final + tmpSuffix
	if err := writeSynced(fsys, tmp, encodeMeta(id)); err != nil {
		return err
	}
	if err := syncDir(fsys, dir); err != nil {
		return err
	}
	base, err := appendBaseFrame(nil, 1, false, HardState{}, 0, 0, nil)
	if err != nil {
		return err
	}
	if err := writeSynced(fsys, filepath.Join(dir, segName(firstSegment)), base); err != nil {
		return err
	}
	// The head's directory sync also makes the segment's name durable.
	if err := writeHead(fsys, dir, firstSegment); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, final); err != nil {
		return fmt.Errorf("storage: rename %s: %w", tmp, err)
	}
	return syncDir(fsys, dir)
}

// redoInit starts over an initialisation of dir that a crash cut short
// (the meta file's temporary file is there, the meta file is not): nothing
// was ever stored in it, so the files that initialisation makes are
// deleted and it runs again. Any other store file means the directory is
// not what an initialisation leaves; it is refused, untouched. The meta
// file's temporary file is kept until initDir rewrites it, so that a crash
// during the deletions still leaves the directory recognisable as an
// unfinished initialisation.
func redoInit(fsys FS, dir string, id Identity, mine []string) error {
	for _, n := range mine {
		if n != segName(firstSegment) && n != headName && n != headName+tmpSuffix {
			return fmt.Errorf("%w: %s holds %s, which no initialisation makes, and no %s: its owner is unknown",
				ErrDamaged, dir, n, metaName)
		}
	}
	for _, n := range mine {
		name := filepath.Join(dir, n)
		if err := fsys.Remove(name); err != nil {
			return fmt.Errorf("storage: remove %s: %w", name, err)
		}
	}
	if len(mine) > 0 {
		if err := syncDir(fsys, dir); err != nil {
			return err
		}
	}
	return initDir(fsys, dir, id)
}

// writeSynced creates name holding data and syncs it. Its name is durable
// only after a sync of its directory.
func writeSynced(fsys FS, name string, data []byte) error {
	f, err := fsys.Create(name)
	if err != nil {
		return fmt.Errorf("storage: create %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("storage: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("storage: sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", name, err)
	}
	return nil
}

// replaceFile makes data the content of the file base of dir, durably:
// temporary file, sync, rename, sync of the directory. Whatever a crash
// does, the file then holds its old content or data, whole; a leftover
// temporary file is removed by the next Load.
func replaceFile(fsys FS, dir, base string, data []byte) error {
	final := filepath.Join(dir, base)
	tmp := final + tmpSuffix
	if err := writeSynced(fsys, tmp, data); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, final); err != nil {
		return fmt.Errorf("storage: rename %s: %w", tmp, err)
	}
	return syncDir(fsys, dir)
}

// syncDir makes the name changes in dir durable.
func syncDir(fsys FS, dir string) error {
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("storage: sync directory %s: %w", dir, err)
	}
	return nil
}
