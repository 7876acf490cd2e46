package storage

import (
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
)

// The fault methods of MemFS. Each is deterministic given its arguments and
// the calls made before it, so that a simulator seed replays the same disk.

// tornZeroMax bounds the zero-filled piece at the end of a torn write: a
// file system that grew the file's size but had not written the last block
// when power failed shows zeros there.
const tornZeroMax = 4096

// Crash models a power loss. Per directory, a random prefix of the creates,
// renames and removes since its last SyncDir survives. Per file, its
// unsynced content is lost entirely, kept entirely, or torn: a random
// length of it kept, the last piece of which may read as zeros. Handles
// opened before the crash fail from now on.
func (m *MemFS) Crash(rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(m.dirs)) {
		d := m.dirs[name]
		keep := rng.IntN(len(d.pending) + 1)
		for _, op := range d.pending[:keep] {
			op.apply(d.durable)
		}
		d.pending = nil
		d.names = maps.Clone(d.durable)
		for _, base := range slices.Sorted(maps.Keys(d.names)) {
			crashFile(d.names[base], rng)
		}
	}
	m.locked = nil
	m.gen++
}

// crashFile gives ino's unsynced content a random fate.
func crashFile(ino *memInode, rng *rand.Rand) {
	data, dur := ino.data, ino.durable
	// p is where the unsynced part starts: the longest common prefix.
	p := 0
	for p < len(data) && p < len(dur) && data[p] == dur[p] {
		p++
	}
	var out []byte
	switch {
	case p == len(data) && p == len(dur):
		out = slices.Clone(dur)
	default:
		switch rng.IntN(3) {
		case 0: // lost
			out = slices.Clone(dur)
		case 1: // kept
			out = slices.Clone(data)
		default: // torn
			k := rng.IntN(len(data) - p + 1)
			out = slices.Clone(data[:p+k])
			if k > 0 && rng.IntN(2) == 0 {
				z := 1 + rng.IntN(min(k, tornZeroMax))
				clear(out[len(out)-z:])
			}
		}
	}
	ino.data = out
	ino.durable = out[:len(out):len(out)]
}

// Files returns every file's name (full path) and current size.
func (m *MemFS) Files() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	files := map[string]int64{}
	for dir, d := range m.dirs {
		for base, ino := range d.names {
			files[filepath.Join(dir, base)] = int64(len(ino.data))
		}
	}
	return files
}

// FlipByte inverts every bit of the byte at offset off of name, in its
// current and in its durable content: the disk returns wrong data there,
// as a latent sector error or bit rot that the drive did not catch would.
func (m *MemFS) FlipByte(name string, off int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookup(name)
	if err != nil {
		return err
	}
	ino := d.names[base]
	if ino == nil {
		return &fs.PathError{Op: "flipbyte", Path: name, Err: fs.ErrNotExist}
	}
	if off < 0 || off >= int64(len(ino.data)) {
		return fmt.Errorf("memfs: flipbyte %s: offset %d outside %d bytes", name, off, len(ino.data))
	}
	ino.data[off] ^= 0xff
	if off < int64(len(ino.durable)) && &ino.durable[off] != &ino.data[off] {
		ino.durable[off] ^= 0xff
	}
	return nil
}

// CorruptRandom flips one byte, chosen with rng, of a non-empty file whose
// name (full path) match accepts (any file when match is nil). It returns
// the file and offset, or ok false when no file qualifies.
func (m *MemFS) CorruptRandom(rng *rand.Rand, match func(name string) bool) (name string, off int64, ok bool) {
	files := m.Files()
	var names []string
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if files[n] > 0 && (match == nil || match(n)) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "", 0, false
	}
	name = names[rng.IntN(len(names))]
	off = rng.Int64N(files[name])
	if err := m.FlipByte(name, off); err != nil {
		panic(err) // the file was listed a moment ago under the same lock order
	}
	return name, off, true
}

// RemoveFile deletes name durably, as a lost or misdirected write would
// make it vanish. Meant for a disk at rest (between a crash and a restart):
// it also forgets any pending name change that mentions it.
func (m *MemFS) RemoveFile(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.lookup(name)
	if err != nil {
		return err
	}
	if d.names[base] == nil && d.durable[base] == nil {
		return &fs.PathError{Op: "removefile", Path: name, Err: fs.ErrNotExist}
	}
	delete(d.names, base)
	delete(d.durable, base)
	d.pending = slices.DeleteFunc(d.pending, func(op dirOp) bool { return op.name == base || op.to == base })
	return nil
}

// Wipe loses the whole disk: every file and directory. Handles opened
// before fail from now on.
func (m *MemFS) Wipe() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dirs = map[string]*memDir{}
	m.locked = nil
	m.gen++
}

// FailWrites makes every later call that changes the disk (Write, Sync,
// Truncate, Create, Remove, Rename, SyncDir, MkdirAll) fail with err, as a
// full or failing disk does; nil makes them succeed again.
func (m *MemFS) FailWrites(err error) { m.FailWritesAfter(0, err) }

// FailWritesAfter lets the next n calls that change the disk succeed, then
// fails every later one with err, so that a test can fail the disk at a
// chosen point in the middle of an operation.
func (m *MemFS) FailWritesAfter(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failAfter, m.failErr = n, err
}
