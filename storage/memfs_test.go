package storage

import (
	"errors"
	"io/fs"
	"maps"
	"testing"
)

// The MemFS model: what is synced survives every crash, what is not may be
// lost, kept or torn, and a crash is a function of the random source.

func writeFile(t *testing.T, m *MemFS, name, content string, sync bool) File {
	t.Helper()
	f, err := m.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func content(t *testing.T, m *MemFS, name string) (string, bool) {
	t.Helper()
	b, err := readWhole(m, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// TestMemFSSyncedDataSurvivesCrash: a synced file in a synced directory
// is intact after any crash.
func TestMemFSSyncedDataSurvivesCrash(t *testing.T) {
	for seed := range uint64(100) {
		m := NewMemFS()
		m.MkdirAll("/d")
		f := writeFile(t, m, "/d/a", "durable", true)
		m.SyncDir("/d")
		f.Write([]byte(" and more"))
		m.Crash(rng(seed))
		if got, ok := content(t, m, "/d/a"); !ok || len(got) < len("durable") || got[:7] != "durable" {
			t.Fatalf("seed %d: synced content became %q (exists %v)", seed, got, ok)
		}
	}
}

// TestMemFSUnsyncedFatesAllOccur: the unsynced tail is lost, kept or torn
// (with or without zeros), and an unsynced create may vanish.
func TestMemFSUnsyncedFatesAllOccur(t *testing.T) {
	fates := map[string]bool{}
	for seed := range uint64(300) {
		m := NewMemFS()
		m.MkdirAll("/d")
		f := writeFile(t, m, "/d/a", "0123", true)
		m.SyncDir("/d")
		f.Write([]byte("456789"))
		writeFile(t, m, "/d/new", "x", true)
		m.Crash(rng(seed))
		got, _ := content(t, m, "/d/a")
		switch {
		case got == "0123":
			fates["lost"] = true
		case got == "0123456789":
			fates["kept"] = true
		case len(got) > 4 && len(got) <= 10 && got[len(got)-1] == 0:
			fates["torn with zeros"] = true
		case len(got) > 4 && len(got) < 10 && "0123456789"[:len(got)] == got:
			fates["torn"] = true
		default:
			t.Fatalf("seed %d: %q is no fate of an unsynced append", seed, got)
		}
		if _, ok := content(t, m, "/d/new"); ok {
			fates["create kept"] = true
		} else {
			fates["create lost"] = true
		}
	}
	if len(fates) != 6 {
		t.Fatalf("fates seen: %v", fates)
	}
}

// TestMemFSRenameDurableOnlyAfterSyncDir: a rename that was synced stays;
// one that was not may be undone.
func TestMemFSRenameDurableOnlyAfterSyncDir(t *testing.T) {
	undone := false
	for seed := range uint64(50) {
		m := NewMemFS()
		m.MkdirAll("/d")
		writeFile(t, m, "/d/tmp", "v1", true)
		m.Rename("/d/tmp", "/d/final")
		m.SyncDir("/d")
		writeFile(t, m, "/d/tmp", "v2", true)
		m.Rename("/d/tmp", "/d/final")
		m.Crash(rng(seed))
		got, ok := content(t, m, "/d/final")
		if !ok || (got != "v1" && got != "v2") {
			t.Fatalf("seed %d: final is %q (exists %v)", seed, got, ok)
		}
		undone = undone || got == "v1"
	}
	if !undone {
		t.Fatal("no crash undid an unsynced rename")
	}
}

// TestMemFSCrashIsDeterministic: the same calls and seed give the same
// disk.
func TestMemFSCrashIsDeterministic(t *testing.T) {
	run := func() map[string]string {
		m := NewMemFS()
		m.MkdirAll("/d")
		for _, n := range []string{"/d/a", "/d/b", "/d/c"} {
			f := writeFile(t, m, n, "synced part ", true)
			f.Write([]byte("unsynced part of " + n))
		}
		m.Crash(rng(42))
		out := map[string]string{}
		for n := range m.Files() {
			out[n], _ = content(t, m, n)
		}
		return out
	}
	if a, b := run(), run(); !maps.Equal(a, b) {
		t.Fatalf("two runs differ:\n%q\n%q", a, b)
	}
}

// TestMemFSHandlesDieWithCrash: a handle from before a crash fails.
func TestMemFSHandlesDieWithCrash(t *testing.T) {
	m := NewMemFS()
	m.MkdirAll("/d")
	f := writeFile(t, m, "/d/a", "x", true)
	m.Crash(rng(1))
	if _, err := f.Write([]byte("y")); !errors.Is(err, errStaleHandle) {
		t.Fatalf("write through a stale handle: %v", err)
	}
}

// TestMemFSFaults: FlipByte changes durable data, RemoveFile and Wipe lose
// files, FailWrites fails writes until cleared.
func TestMemFSFaults(t *testing.T) {
	m := NewMemFS()
	m.MkdirAll("/d")
	writeFile(t, m, "/d/a", "abc", true).Close()
	writeFile(t, m, "/d/b", "def", true).Close()
	m.SyncDir("/d")
	if got := m.Files(); got["/d/a"] != 3 || len(got) != 2 {
		t.Fatalf("Files: %v", got)
	}
	m.FlipByte("/d/a", 1)
	m.Crash(rng(0))
	if got, _ := content(t, m, "/d/a"); got != "a\x9dc" {
		t.Fatalf("after FlipByte and a crash: %q", got)
	}
	m.RemoveFile("/d/b")
	if _, ok := content(t, m, "/d/b"); ok {
		t.Fatal("RemoveFile left the file")
	}
	boom := errors.New("boom")
	m.FailWrites(boom)
	if _, err := m.Create("/d/c"); !errors.Is(err, boom) {
		t.Fatalf("Create on a failing disk: %v", err)
	}
	m.FailWrites(nil)
	if _, err := m.Create("/d/c"); err != nil {
		t.Fatal(err)
	}
	m.Wipe()
	if _, err := m.ReadDir("/d"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadDir after Wipe: %v", err)
	}
}
