package kv_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/vsrgo/vsr/statemachine/kv"
)

// The benchmarks share one store of benchKeys keys, because filling it through
// Apply takes seconds and every benchmark would otherwise pay for it at each
// of its b.N rounds. The benchmarks that write only overwrite existing keys
// with values of the same size, so the store's shape, and with it what the
// other benchmarks measure, stays the same whatever order they run in.
const (
	benchKeys     = 1 << 20
	benchValueLen = 100
	// benchOps is how many distinct random ops a benchmark cycles through: a
	// power of two, so that picking the next one is a mask, and large enough
	// that the ops reach keys all over the store rather than a cached few.
	benchOps = 1 << 16
)

var (
	benchOnce  sync.Once
	benchStore *kv.Store
)

// benchKey is the 16-byte key of the i-th key in the benchmark store.
func benchKey(i int) string {
	return fmt.Sprintf("key-%012d", i)
}

// benchValue is a 100-byte value that differs between keys and generations,
// so that an overwrite really changes the stored value.
func benchValue(i, generation int) []byte {
	v := make([]byte, benchValueLen)
	for j := range v {
		v[j] = byte(i + j + generation)
	}
	return v
}

// sharedBenchStore returns the 1M-key store, filled once, in a random order so
// that neither implementation sees the sorted insertions it may be best at.
func sharedBenchStore(b *testing.B) *kv.Store {
	b.Helper()
	benchOnce.Do(func() {
		s := kv.NewStore()
		for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(benchKeys) {
			s.Apply(kv.PutOp(benchKey(i), benchValue(i, 0)))
		}
		benchStore = s
	})
	if benchStore.Len() != benchKeys {
		b.Fatalf("benchmark store has %d keys, want %d", benchStore.Len(), benchKeys)
	}
	return benchStore
}

// randomOps encodes benchOps ops, each made by op from a random existing key
// index, so that encoding is not part of what a benchmark measures.
func randomOps(seed uint64, op func(i, n int) []byte) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed))
	ops := make([][]byte, benchOps)
	for n := range ops {
		ops[n] = op(r.IntN(benchKeys), n)
	}
	return ops
}

func BenchmarkApplyPut(b *testing.B) {
	s := sharedBenchStore(b)
	ops := randomOps(3, func(i, n int) []byte { return kv.PutOp(benchKey(i), benchValue(i, n+1)) })
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		s.Apply(ops[n&(benchOps-1)])
	}
}

func BenchmarkApplyGet(b *testing.B) {
	s := sharedBenchStore(b)
	ops := randomOps(4, func(i, _ int) []byte { return kv.GetOp(benchKey(i)) })
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		s.Apply(ops[n&(benchOps-1)])
	}
}

// BenchmarkSnapshot1M is what a checkpoint costs the replica's goroutine when
// the state machine is not a Checkpointer.
func BenchmarkSnapshot1M(b *testing.B) {
	s := sharedBenchStore(b)
	snap, err := s.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(snap)))
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if _, err := s.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore1M restores the 1M-key snapshot into an empty store.
func BenchmarkRestore1M(b *testing.B) {
	snap, err := sharedBenchStore(b).Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(snap)))
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if err := kv.NewStore().Restore(snap); err != nil {
			b.Fatal(err)
		}
	}
}
