package kv_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// model is what a store should hold, kept beside it by the tests, so that
// they can check the store's behaviour and encode the snapshot it should give
// without trusting the code under test.
type model map[string][]byte

// encode is the snapshot of m as the format defines it: every pair, sorted by
// key, in a deterministically encoded kv.Snapshot. It is written out here,
// independently of Store, so that a change of format fails the tests.
func (m model) encode(t *testing.T) []byte {
	t.Helper()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	snap := &kv.Snapshot{}
	for _, k := range keys {
		snap.Pairs = append(snap.Pairs, &kv.Pair{Key: []byte(k), Value: m[k]})
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(snap)
	require.NoError(t, err)
	return b
}

// clone returns a copy of m that later changes to m do not reach.
func (m model) clone() model {
	c := make(model, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// churn applies n random writes to s and m alike: puts of new keys,
// overwrites, deletes of present and absent keys, and compare-and-swaps. The
// keys come from a space of twice keySpace keys so that roughly half the puts
// insert and half the deletes remove, which splits, merges and rebalances the
// tree's nodes rather than only rewriting its leaves.
func churn(t *testing.T, r *rand.Rand, s *kv.Store, m model, keySpace, n int) {
	t.Helper()
	for i := range n {
		key := fmt.Sprintf("key-%06d", r.IntN(2*keySpace))
		value := []byte(fmt.Sprintf("w%d-%d", i, r.Uint32()))
		switch r.IntN(4) {
		case 0, 1:
			s.Apply(kv.PutOp(key, value))
			m[key] = value
		case 2:
			s.Apply(kv.DeleteOp(key))
			delete(m, key)
		default:
			if _, ok := m[key]; !ok {
				s.Apply(kv.PutIfAbsentOp(key, value))
				m[key] = value
				continue
			}
			s.Apply(kv.CASOp(key, m[key], value))
			m[key] = value
		}
	}
}

// filled returns a store of n keys and its model.
func filled(t *testing.T, n int) (*kv.Store, model) {
	t.Helper()
	s, m := kv.NewStore(), model{}
	for i := range n {
		key := fmt.Sprintf("key-%06d", 2*i)
		value := []byte("v-" + key)
		s.Apply(kv.PutOp(key, value))
		m[key] = value
	}
	return s, m
}

func TestStoreIsACheckpointer(t *testing.T) {
	var sm statemachine.StateMachine = kv.NewStore()
	_, ok := sm.(statemachine.Checkpointer)
	assert.True(t, ok, "without Checkpointer the replica snapshots on its own goroutine and stalls")
}

func TestSnapshotAndCheckpointKeepTheSnapshotFormat(t *testing.T) {
	s, m := kv.NewStore(), model{}
	r := rand.New(rand.NewPCG(7, 7))
	churn(t, r, s, m, 500, 2000)
	for _, k := range []string{"", string([]byte{0xff, 0x00}), "empty"} {
		s.Apply(kv.PutOp(k, nil)) // An empty key and empty values are legal.
		m[k] = nil
	}
	want := m.encode(t)
	got, err := s.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, want, got, "Snapshot")
	got, err = s.Checkpoint()()
	require.NoError(t, err)
	assert.Equal(t, want, got, "Checkpoint")
}

// TestCheckpointReturnsStateAtCallDespiteLaterApplies is the promise that
// makes Checkpoint useful: the replica names the checkpoint by the op it was
// taken at, so its bytes must not include anything applied after the call.
func TestCheckpointReturnsStateAtCallDespiteLaterApplies(t *testing.T) {
	// One leaf, two levels and three levels of the tree.
	for _, n := range []int{0, 10, 1000, 5000} {
		t.Run(fmt.Sprint(n, " keys"), func(t *testing.T) {
			s, m := filled(t, n)
			atCall := snapshot(t, s)
			encode := s.Checkpoint()

			churn(t, rand.New(rand.NewPCG(uint64(n), 1)), s, m, n+1, 3*n+10)
			require.NotEqual(t, atCall, snapshot(t, s), "the churn must change the state")

			got, err := encode()
			require.NoError(t, err)
			assert.Equal(t, atCall, got)

			// The live store went on behaving as a map should.
			assert.Equal(t, m.encode(t), snapshot(t, s))
			assert.Equal(t, len(m), s.Len())
		})
	}
}

func TestCheckpointIsUnaffectedByLaterRestore(t *testing.T) {
	s, _ := filled(t, 1000)
	atCall := snapshot(t, s)
	encode := s.Checkpoint()

	other, _ := filled(t, 3)
	require.NoError(t, s.Restore(snapshot(t, other)))
	fill(t, s, "after-restore")

	got, err := encode()
	require.NoError(t, err)
	assert.Equal(t, atCall, got)
}

// TestCheckpointsTakenInTurnEachKeepTheirOwnState covers a checkpoint taken
// while an earlier one is still unencoded, because the copy-on-write tree
// then has three versions sharing nodes.
func TestCheckpointsTakenInTurnEachKeepTheirOwnState(t *testing.T) {
	s, m := filled(t, 5000)
	r := rand.New(rand.NewPCG(3, 3))
	var want [][]byte
	var encodes []func() ([]byte, error)
	for range 4 {
		want = append(want, m.clone().encode(t))
		encodes = append(encodes, s.Checkpoint())
		churn(t, r, s, m, 5000, 3000)
	}
	for _, i := range []int{2, 0, 3, 1} { // Not the order they were taken in.
		got, err := encodes[i]()
		require.NoError(t, err)
		assert.Equal(t, want[i], got, "checkpoint %d", i)
	}
	assert.Equal(t, m.encode(t), snapshot(t, s))
}

// TestCheckpointEncodesOnAnotherGoroutineWhileApplyRuns is the concurrency
// the interface allows. Under -race it fails if the encoding reads anything
// that Apply writes; without -race it still checks the bytes. Each round
// applies until the encoder has finished, so that the two overlap for the
// whole encoding whatever the scheduler does.
func TestCheckpointEncodesOnAnotherGoroutineWhileApplyRuns(t *testing.T) {
	const keys, rounds, minOps = 10000, 5, 200
	s, m := filled(t, keys)
	r := rand.New(rand.NewPCG(5, 5))
	for round := range rounds {
		want := snapshot(t, s)
		encode := s.Checkpoint()
		type encoded struct {
			b   []byte
			err error
		}
		done := make(chan encoded, 1)
		go func() {
			b, err := encode()
			done <- encoded{b, err}
		}()

		var got encoded
		for applied, finished := 0, false; !finished || applied < minOps; applied++ {
			churn(t, r, s, m, keys, 1)
			s.Apply(kv.GetOp(fmt.Sprintf("key-%06d", r.IntN(2*keys))))
			if !finished {
				select {
				case got = <-done:
					finished = true
				default:
				}
			}
		}
		require.NoError(t, got.err, "round %d", round)
		assert.Equal(t, want, got.b, "round %d", round)
	}
	assert.Equal(t, m.encode(t), snapshot(t, s))
}

// sinkEncode keeps what a benchmark's Checkpoint returned alive, so that the
// compiler cannot drop the capture as unused and the benchmark measures it.
var sinkEncode func() ([]byte, error)

// BenchmarkCheckpointCapture is what a checkpoint costs the replica's
// goroutine when the state machine is a Checkpointer: it must not grow with
// the state.
func BenchmarkCheckpointCapture(b *testing.B) {
	s := sharedBenchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		sinkEncode = s.Checkpoint()
	}
}

// BenchmarkCheckpointEncode is the work Checkpoint moves off the replica's
// goroutine. It should cost what Snapshot1M does.
func BenchmarkCheckpointEncode(b *testing.B) {
	s := sharedBenchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if _, err := s.Checkpoint()(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyPutAfterCheckpoint is the price Apply pays for cheap
// captures: the first write under each tree node after a checkpoint copies
// that node. With a checkpoint before every put each put copies its whole
// path. 16384 is vsr's default checkpoint interval: a 1M-key tree has some
// 25000 leaves, so even then most random puts still copy their leaf.
func BenchmarkApplyPutAfterCheckpoint(b *testing.B) {
	for _, every := range []int{1, 100, 16384} {
		b.Run(fmt.Sprint("every=", every), func(b *testing.B) {
			s := sharedBenchStore(b)
			ops := randomOps(6, func(i, n int) []byte { return kv.PutOp(benchKey(i), benchValue(i, n+2)) })
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				if n%every == 0 {
					sinkEncode = s.Checkpoint()
				}
				s.Apply(ops[n&(benchOps-1)])
			}
		})
	}
}
