package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapshot returns every file of dir and its content.
func snapshot(t *testing.T, fsys FS, dir string) map[string]string {
	t.Helper()
	names, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, n := range names {
		b, err := readWhole(fsys, filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = string(b)
	}
	return files
}

// populated returns a data directory of testID holding a log and a
// checkpoint, on the real file system and on a MemFS.
func populated(t *testing.T) map[string]struct {
	fs  FS
	dir string
} {
	out := map[string]struct {
		fs  FS
		dir string
	}{
		"OSFS":  {OSFS{}, filepath.Join(t.TempDir(), "data")},
		"MemFS": {NewMemFS(), testDir},
	}
	for _, c := range out {
		s, err := Open(c.fs, c.dir, testID, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(); err != nil {
			t.Fatal(err)
		}
		mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 5, 1), HardState: hs(1, 2)})
		if err := s.SaveCheckpoint(cp(3, "x")); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	return out
}

// TestOpenRefusesAnotherIdentity: another cluster, index or group size is
// refused with ErrIdentity naming both, and nothing in the directory moves.
func TestOpenRefusesAnotherIdentity(t *testing.T) {
	others := []Identity{
		{ClusterID: 8, ReplicaIndex: 1, ReplicaCount: 3},
		{ClusterID: 7, ReplicaIndex: 2, ReplicaCount: 3},
		{ClusterID: 7, ReplicaIndex: 1, ReplicaCount: 5},
	}
	for name, c := range populated(t) {
		before := snapshot(t, c.fs, c.dir)
		for _, other := range others {
			s, err := Open(c.fs, c.dir, other, Options{})
			if !errors.Is(err, ErrIdentity) {
				t.Fatalf("%s: Open as %s: %v, want ErrIdentity", name, other, err)
			}
			if s != nil {
				t.Fatalf("%s: Open returned a store with its error", name)
			}
			if msg := err.Error(); !strings.Contains(msg, testID.String()) || !strings.Contains(msg, other.String()) {
				t.Fatalf("%s: error %q does not name both identities", name, msg)
			}
		}
		if after := snapshot(t, c.fs, c.dir); !maps.Equal(before, after) {
			t.Fatalf("%s: a refused open changed the directory", name)
		}
	}
}

// TestOpenRefusesAnotherVersion: another format version, or a meta file
// that is not ours, is refused with ErrVersion, untouched.
func TestOpenRefusesAnotherVersion(t *testing.T) {
	v2 := encodeMeta(testID)
	binary.LittleEndian.PutUint32(v2[8:], FormatVersion+1)
	binary.LittleEndian.PutUint32(v2[metaSize-4:], crc32.Checksum(v2[:metaSize-4], castagnoli))
	metas := map[string][]byte{
		"version": v2,
		"magic":   []byte("SQLite format 3\x00 and more bytes after it"),
	}
	for what, meta := range metas {
		for name, c := range populated(t) {
			f, err := c.fs.Create(filepath.Join(c.dir, metaName))
			if err != nil {
				t.Fatal(err)
			}
			f.Write(meta)
			f.Sync()
			f.Close()
			before := snapshot(t, c.fs, c.dir)
			if _, err := Open(c.fs, c.dir, testID, Options{}); !errors.Is(err, ErrVersion) {
				t.Fatalf("%s, %s: Open: %v, want ErrVersion", what, name, err)
			}
			if after := snapshot(t, c.fs, c.dir); !maps.Equal(before, after) {
				t.Fatalf("%s, %s: a refused open changed the directory", what, name)
			}
		}
	}
}

// TestOpenRefusesForeignDirectory: a directory with someone else's files
// and no meta file is not taken over.
func TestOpenRefusesForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, OSFS{}, dir)
	if _, err := Open(OSFS{}, dir, testID, Options{}); !errors.Is(err, ErrForeignDir) {
		t.Fatalf("Open of a foreign directory: %v, want ErrForeignDir", err)
	}
	if after := snapshot(t, OSFS{}, dir); !maps.Equal(before, after) {
		t.Fatal("a refused open changed the directory")
	}
}

// TestOpenRefusesStoreFilesWithoutMeta: a store's files whose meta file
// is gone cannot be vouched for.
func TestOpenRefusesStoreFilesWithoutMeta(t *testing.T) {
	c := populated(t)["MemFS"]
	m := c.fs.(*MemFS)
	if err := m.RemoveFile(filepath.Join(c.dir, metaName)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, m, c.dir)
	if _, err := Open(m, c.dir, testID, Options{}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Open: %v, want ErrDamaged", err)
	}
	if after := snapshot(t, m, c.dir); !maps.Equal(before, after) {
		t.Fatal("a refused open changed the directory")
	}
}

// TestOpenInitialisesEmptyOrMissingDirectory: both give a new store, and
// a meta file left half-made by a crashed first open does not stop it.
func TestOpenInitialisesEmptyOrMissingDirectory(t *testing.T) {
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "a", "b")
	withTmp := t.TempDir()
	os.WriteFile(filepath.Join(withTmp, metaName+tmpSuffix), []byte("vsr-m"), 0o644)
	for _, dir := range []string{empty, missing, withTmp} {
		s, err := Open(OSFS{}, dir, testID, Options{})
		if err != nil {
			t.Fatalf("Open %s: %v", dir, err)
		}
		st, err := s.Load()
		if err != nil || !st.IsNew() {
			t.Fatalf("Load of %s: %+v, %v", dir, st, err)
		}
		s.Close()
		if _, err := Open(OSFS{}, dir, testID, Options{}); err != nil {
			t.Fatalf("reopen %s: %v", dir, err)
		}
	}
}

// TestWipedDiskLoadsNew: a disk that lost everything opens as a new store
// (telling it from a new replica is the caller's business).
func TestWipedDiskLoadsNew(t *testing.T) {
	m := NewMemFS()
	saveOps(t, m, 5, Options{}).Close()
	m.Wipe()
	_, st := openMem(t, m, Options{})
	if !st.IsNew() {
		t.Fatalf("a wiped disk loads %+v", st)
	}
}

// TestOpenRefusesCorruptMeta: a meta file whose checksum fails names no
// owner that can be trusted: ErrDamaged, not a wrong identity, untouched.
func TestOpenRefusesCorruptMeta(t *testing.T) {
	c := populated(t)["MemFS"]
	m := c.fs.(*MemFS)
	if err := m.FlipByte(filepath.Join(c.dir, metaName), 20); err != nil { // in the cluster ID
		t.Fatal(err)
	}
	before := snapshot(t, m, c.dir)
	if _, err := Open(m, c.dir, testID, Options{}); !errors.Is(err, ErrDamaged) || errors.Is(err, ErrIdentity) {
		t.Fatalf("Open: %v, want ErrDamaged", err)
	}
	if after := snapshot(t, m, c.dir); !maps.Equal(before, after) {
		t.Fatal("a refused open changed the directory")
	}
}

// TestCrashDuringInitialisation: a crash at any point of a first open, or
// of the open that finishes an initialisation cut short, leaves a
// directory that opens as a clean new store, never one that is refused or
// damaged; and the store then keeps what it is given.
func TestCrashDuringInitialisation(t *testing.T) {
	points := 0
	for n := 0; ; n++ {
		finished := false
		for seed := range uint64(20) {
			r := rng(seed)
			m := NewMemFS()
			m.FailWritesAfter(n, errInjected)
			s, err := Open(m, testDir, testID, Options{})
			if err == nil {
				_, err = s.Load()
				s.Close()
			}
			if err != nil && !errors.Is(err, errInjected) {
				t.Fatalf("point %d seed %d: first open: %v", n, seed, err)
			}
			finished = err == nil
			m.FailWrites(nil)
			m.Crash(r)
			if r.IntN(2) == 0 {
				// Crash again while the next open finishes the work.
				m.FailWritesAfter(r.IntN(20), errInjected)
				if s, err := Open(m, testDir, testID, Options{}); err == nil {
					s.Load()
					s.Close()
				} else if !errors.Is(err, errInjected) {
					t.Fatalf("point %d seed %d: second open: %v", n, seed, err)
				}
				m.FailWrites(nil)
				m.Crash(r)
			}
			s, err = Open(m, testDir, testID, Options{})
			if err != nil {
				t.Fatalf("point %d seed %d: open after the crash: %v", n, seed, err)
			}
			st, err := s.Load()
			if err != nil {
				t.Fatalf("point %d seed %d: Load after the crash: %v", n, seed, err)
			}
			if !st.IsNew() {
				t.Fatalf("point %d seed %d: after the crash the store loads %+v", n, seed, st)
			}
			mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 2, 1), HardState: hs(1, 1)})
			_, st = reopen(t, s, Options{})
			wantClean(t, st)
			wantOps(t, st, 1, 2)
		}
		points++
		if finished {
			break
		}
		if n > 100 {
			t.Fatal("the first open never finishes")
		}
	}
	t.Logf("crashed at %d points of the initialisation", points)
}

// TestOpenFinishesInterruptedInitialisation: the files an initialisation
// makes before the meta file's rename are deleted and made again; any
// other file beside the meta file's temporary file is refused, untouched.
func TestOpenFinishesInterruptedInitialisation(t *testing.T) {
	put := func(m *MemFS, name, content string) {
		f, err := m.Create(filepath.Join(testDir, name))
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(content))
		f.Sync()
		f.Close()
		m.SyncDir(testDir)
	}
	cases := map[string]struct {
		files []string
		want  error // nil: a new store
	}{
		"segment and head":    {files: []string{segName(firstSegment), headName, headName + tmpSuffix}},
		"torn segment":        {files: []string{segName(firstSegment)}},
		"a checkpoint":        {files: []string{segName(firstSegment), ckptName(5)}, want: ErrDamaged},
		"a later segment":     {files: []string{segName(2)}, want: ErrDamaged},
		"someone else's file": {files: []string{headName, "notes.txt"}, want: ErrForeignDir},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m := NewMemFS()
			m.MkdirAll(testDir)
			put(m, metaName+tmpSuffix, "vsr-me")
			for _, f := range c.files {
				put(m, f, "junk")
			}
			before := snapshot(t, m, testDir)
			s, err := Open(m, testDir, testID, Options{})
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("Open: %v, want %v", err, c.want)
				}
				if after := snapshot(t, m, testDir); !maps.Equal(before, after) {
					t.Fatal("a refused open changed the directory")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			st, err := s.Load()
			if err != nil || !st.IsNew() {
				t.Fatalf("Load: %+v, %v", st, err)
			}
			s.Close()
		})
	}
}

// TestOldFormatIsRefused: a directory of format version 1, which has no
// head file, is refused rather than loaded as damaged.
func TestOldFormatIsRefused(t *testing.T) {
	c := populated(t)["MemFS"]
	m := c.fs.(*MemFS)
	v1 := encodeMeta(testID)
	binary.LittleEndian.PutUint32(v1[8:], 1)
	binary.LittleEndian.PutUint32(v1[metaSize-4:], crc32.Checksum(v1[:metaSize-4], castagnoli))
	if err := replaceFile(m, c.dir, metaName, v1); err != nil {
		t.Fatal(err)
	}
	m.RemoveFile(filepath.Join(c.dir, headName))
	if _, err := Open(m, c.dir, testID, Options{}); !errors.Is(err, ErrVersion) {
		t.Fatalf("Open of a version 1 directory: %v, want ErrVersion", err)
	}
}

// TestSecondStoreOnOneDirectoryIsRefused: two stores writing one log would
// corrupt it, so a second Open of a directory fails while the first store
// is open, and succeeds once it is closed or its process has crashed.
func TestSecondStoreOnOneDirectoryIsRefused(t *testing.T) {
	for _, fsys := range []struct {
		name string
		fs   FS
		dir  string
	}{{"MemFS", NewMemFS(), testDir}, {"OSFS", OSFS{}, t.TempDir()}} {
		t.Run(fsys.name, func(t *testing.T) {
			first, err := Open(fsys.fs, fsys.dir, testID, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Open(fsys.fs, fsys.dir, testID, Options{}); !errors.Is(err, ErrLocked) {
				t.Fatalf("second Open: %v, want ErrLocked", err)
			}
			first.Close()
			second, err := Open(fsys.fs, fsys.dir, testID, Options{})
			if err != nil {
				t.Fatalf("Open after Close: %v", err)
			}
			if m, ok := fsys.fs.(*MemFS); ok {
				m.Crash(rng(1))
				if _, err := Open(m, fsys.dir, testID, Options{}); err != nil {
					t.Fatalf("Open after a crash of the process that held the lock: %v", err)
				}
			}
			second.Close()
		})
	}
}

// TestTheOwnersFileIsLeftAlone: a directory that holds the user's owner file
// (OwnerFile, and its temporary file) before the store is made is still
// taken as empty and initialised, and the store never reads, changes or
// removes the file, through writes, a checkpoint, a reopen and a load.
func TestTheOwnersFileIsLeftAlone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{OwnerFile: "the user's", OwnerFile + ".tmp": "half written"}
	for n, content := range owner {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		s, err := Open(OSFS{}, dir, testID, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(); err != nil {
			t.Fatal(err)
		}
		mustSave(t, s, Batch{LogFrom: 1, Entries: ents(1, 5, 1), HardState: hs(1, 2)})
		if err := s.SaveCheckpoint(cp(3, "x")); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	files := snapshot(t, OSFS{}, dir)
	for n, content := range owner {
		if files[n] != content {
			t.Fatalf("%s: got %q, want %q", n, files[n], content)
		}
	}
}
