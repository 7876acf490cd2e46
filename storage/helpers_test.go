package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vsrgo/vsr/messages"
)

var testID = Identity{ClusterID: 7, ReplicaIndex: 1, ReplicaCount: 3}

const testDir = "/data/r1"

// ent returns an entry for op whose content depends on op and view, so
// that a log rewritten in another view differs.
func ent(op, view uint64) *messages.Entry {
	return &messages.Entry{OpNumber: op, View: view, ClientId: 9, RequestNumber: op,
		Operation: fmt.Appendf(nil, "op %d of view %d", op, view)}
}

// ents returns entries from..to of view.
func ents(from, to, view uint64) []*messages.Entry {
	var es []*messages.Entry
	for op := from; op <= to; op++ {
		es = append(es, ent(op, view))
	}
	return es
}

func hs(view, commit uint64) *HardState {
	return &HardState{View: view, LastNormalView: view, CommitNumber: commit}
}

// openMem opens and loads a FileStore on m.
func openMem(t testing.TB, m *MemFS, opts Options) (*FileStore, State) {
	t.Helper()
	s, err := Open(m, testDir, testID, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	st, err := s.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s, st
}

// reopen closes s and opens and loads the store again.
func reopen(t testing.TB, s *FileStore, opts Options) (*FileStore, State) {
	t.Helper()
	s.Close()
	s2, err := Open(s.fs, s.dir, testID, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	st, err := s2.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s2, st
}

func mustSave(t testing.TB, s Store, bs ...Batch) {
	t.Helper()
	if err := s.Save(bs); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// opsOf returns the op numbers of es and checks that each entry is the
// one ent made for its op in some view.
func opsOf(t testing.TB, es []*messages.Entry) []uint64 {
	t.Helper()
	var ops []uint64
	for _, e := range es {
		if want := ent(e.OpNumber, e.View); string(e.Operation) != string(want.Operation) {
			t.Fatalf("entry %d has operation %q, want %q", e.OpNumber, e.Operation, want.Operation)
		}
		ops = append(ops, e.OpNumber)
	}
	return ops
}

func span(from, to uint64) []uint64 {
	var ops []uint64
	for op := from; op <= to; op++ {
		ops = append(ops, op)
	}
	return ops
}

func wantOps(t testing.TB, st State, from, to uint64) {
	t.Helper()
	if got, want := opsOf(t, st.Entries), span(from, to); !slices.Equal(got, want) {
		t.Fatalf("entries %v, want ops %d..%d", got, from, to)
	}
}

func wantClean(t testing.TB, st State) {
	t.Helper()
	if st.Damage != nil {
		t.Fatalf("unexpected damage: %v", st.Damage)
	}
}

func wantDamage(t testing.TB, st State) {
	t.Helper()
	if st.Damage == nil {
		t.Fatal("damage not reported")
	}
	if !errors.Is(st.Damage, ErrDamaged) {
		t.Fatalf("damage %v does not wrap ErrDamaged", st.Damage)
	}
}

// segFiles returns the names of the WAL segments of m, sorted.
func segFiles(m *MemFS) []string {
	var names []string
	for n := range m.Files() {
		if _, ok := parseName(filepath.Base(n), segPrefix, segSuffix); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func ckptFiles(m *MemFS) []string {
	var names []string
	for n := range m.Files() {
		if _, ok := parseName(filepath.Base(n), ckptPrefix, ckptSuffix); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// frameOffsets returns the offsets of the frames of a segment file.
func frameOffsets(t testing.TB, m *MemFS, name string) []int {
	t.Helper()
	data, err := readWhole(m, name)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := 0; ; {
		_, next, st := readFrame(data, off)
		if st != frameOK {
			return offs
		}
		offs = append(offs, off)
		off = next
	}
}

func cp(op uint64, state string) Checkpoint {
	return Checkpoint{OpNumber: op, Head: fmt.Appendf(nil, "head %d", op), State: []byte(state)}
}

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }
