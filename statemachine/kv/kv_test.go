package kv_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// apply runs op on s and decodes its result, failing the test if the result
// does not decode.
func apply(t *testing.T, s statemachine.StateMachine, op []byte) *kv.Result {
	t.Helper()
	r, err := kv.DecodeResult(s.Apply(op))
	require.NoError(t, err)
	return r
}

// snapshot takes a snapshot of s, failing the test on error.
func snapshot(t *testing.T, s statemachine.StateMachine) []byte {
	t.Helper()
	b, err := s.Snapshot()
	require.NoError(t, err)
	return b
}

// fill puts the given keys in order, each with the value "v-"+key.
func fill(t *testing.T, s statemachine.StateMachine, keys ...string) {
	t.Helper()
	for _, k := range keys {
		apply(t, s, kv.PutOp(k, []byte("v-"+k)))
	}
}

func TestNewSatisfiesFactoryAndStartsEmpty(t *testing.T) {
	var factory statemachine.Factory = kv.New
	s := factory()
	assert.Zero(t, kv.NewStore().Len())
	r := apply(t, s, kv.GetOp("k"))
	assert.False(t, r.GetFound())
}

func TestPutThenGetReturnsValue(t *testing.T) {
	s := kv.NewStore()
	r := apply(t, s, kv.PutOp("k", []byte("v")))
	assert.False(t, r.GetFound(), "first put finds no previous value")
	assert.Empty(t, r.GetError())

	r = apply(t, s, kv.GetOp("k"))
	assert.True(t, r.GetFound())
	assert.Equal(t, []byte("v"), r.GetValue())
}

func TestPutOverwritesAndReportsPreviousPresence(t *testing.T) {
	s := kv.NewStore()
	fill(t, s, "k")
	r := apply(t, s, kv.PutOp("k", []byte("new")))
	assert.True(t, r.GetFound())

	v, ok := s.Get("k")
	assert.True(t, ok)
	assert.Equal(t, []byte("new"), v)
	assert.Equal(t, 1, s.Len())
}

func TestPutEmptyValueIsPresentNotAbsent(t *testing.T) {
	s := kv.NewStore()
	apply(t, s, kv.PutOp("k", nil))
	r := apply(t, s, kv.GetOp("k"))
	assert.True(t, r.GetFound())
	assert.Empty(t, r.GetValue())
}

func TestKeysNeedNotBeValidUTF8(t *testing.T) {
	s := kv.NewStore()
	key := string([]byte{0xff, 0xfe, 0x00})
	apply(t, s, kv.PutOp(key, []byte("v")))
	r := apply(t, s, kv.GetOp(key))
	assert.Empty(t, r.GetError())
	assert.True(t, r.GetFound())
	assert.Equal(t, []byte("v"), r.GetValue())
}

func TestGetMissingKeyIsNotFound(t *testing.T) {
	r := apply(t, kv.NewStore(), kv.GetOp("missing"))
	assert.False(t, r.GetFound())
	assert.Empty(t, r.GetValue())
	assert.Empty(t, r.GetError())
}

func TestGetDoesNotChangeState(t *testing.T) {
	s := kv.NewStore()
	fill(t, s, "a", "b")
	before := snapshot(t, s)
	apply(t, s, kv.GetOp("a"))
	apply(t, s, kv.GetOp("missing"))
	assert.Equal(t, before, snapshot(t, s))
}

func TestDeleteRemovesKeyAndReportsPresence(t *testing.T) {
	s := kv.NewStore()
	fill(t, s, "k")
	r := apply(t, s, kv.DeleteOp("k"))
	assert.True(t, r.GetFound())
	_, ok := s.Get("k")
	assert.False(t, ok)
	assert.Zero(t, s.Len())
}

func TestDeleteMissingKeyIsNotAnError(t *testing.T) {
	r := apply(t, kv.NewStore(), kv.DeleteOp("missing"))
	assert.False(t, r.GetFound())
	assert.Empty(t, r.GetError())
}

func TestCASSwapsWhenValueMatches(t *testing.T) {
	s := kv.NewStore()
	apply(t, s, kv.PutOp("k", []byte("old")))
	r := apply(t, s, kv.CASOp("k", []byte("old"), []byte("new")))
	assert.True(t, r.GetSwapped())
	assert.True(t, r.GetFound())
	v, _ := s.Get("k")
	assert.Equal(t, []byte("new"), v)
}

func TestCASFailsOnMismatchAndReturnsCurrentValue(t *testing.T) {
	s := kv.NewStore()
	apply(t, s, kv.PutOp("k", []byte("actual")))
	r := apply(t, s, kv.CASOp("k", []byte("stale"), []byte("new")))
	assert.False(t, r.GetSwapped())
	assert.True(t, r.GetFound())
	assert.Equal(t, []byte("actual"), r.GetValue())
	v, _ := s.Get("k")
	assert.Equal(t, []byte("actual"), v)
}

func TestCASWithExpectedValueFailsOnAbsentKey(t *testing.T) {
	s := kv.NewStore()
	for _, expected := range [][]byte{nil, {}, []byte("x")} {
		r := apply(t, s, kv.CASOp("k", expected, []byte("new")))
		assert.False(t, r.GetSwapped(), "expected %q must not match an absent key", expected)
		assert.False(t, r.GetFound())
	}
	assert.Zero(t, s.Len())
}

func TestCASWithEmptyExpectedMatchesEmptyValue(t *testing.T) {
	s := kv.NewStore()
	apply(t, s, kv.PutOp("k", nil))
	r := apply(t, s, kv.CASOp("k", nil, []byte("new")))
	assert.True(t, r.GetSwapped())
}

func TestPutIfAbsentSwapsOnlyWhenKeyAbsent(t *testing.T) {
	s := kv.NewStore()
	r := apply(t, s, kv.PutIfAbsentOp("k", []byte("first")))
	assert.True(t, r.GetSwapped())
	assert.False(t, r.GetFound())

	r = apply(t, s, kv.PutIfAbsentOp("k", []byte("second")))
	assert.False(t, r.GetSwapped())
	assert.True(t, r.GetFound())
	assert.Equal(t, []byte("first"), r.GetValue())
	v, _ := s.Get("k")
	assert.Equal(t, []byte("first"), v)
}

func TestPutIfAbsentFailsOnKeyWithEmptyValue(t *testing.T) {
	s := kv.NewStore()
	apply(t, s, kv.PutOp("k", nil))
	r := apply(t, s, kv.PutIfAbsentOp("k", []byte("new")))
	assert.False(t, r.GetSwapped())
}

func TestCASWithoutConditionIsRejected(t *testing.T) {
	for name, cas := range map[string]*kv.CompareAndSwap{
		"no condition":        {Key: []byte("k"), Value: []byte("v")},
		"expect_absent=false": {Key: []byte("k"), Condition: &kv.CompareAndSwap_ExpectAbsent{}, Value: []byte("v")},
	} {
		t.Run(name, func(t *testing.T) {
			s := kv.NewStore()
			op, err := proto.Marshal(&kv.Operation{Kind: &kv.Operation_CompareAndSwap{CompareAndSwap: cas}})
			require.NoError(t, err)
			r := apply(t, s, op)
			assert.Equal(t, kv.ErrTextNoCondition, r.GetError())
			assert.False(t, r.GetSwapped())
			assert.Zero(t, s.Len())
		})
	}
}

func TestUndecodableOpReturnsErrorResultWithoutPanic(t *testing.T) {
	for name, op := range map[string][]byte{
		"truncated varint": {0xff, 0xff, 0xff},
		"truncated field":  {0x0a, 0x10, 0x01},
		"bad wire type":    {0x0f},
	} {
		t.Run(name, func(t *testing.T) {
			s := kv.NewStore()
			var out []byte
			require.NotPanics(t, func() { out = s.Apply(op) })
			r, err := kv.DecodeResult(out)
			require.NoError(t, err)
			assert.Equal(t, kv.ErrTextUndecodable, r.GetError())
			assert.Zero(t, s.Len())
		})
	}
}

func TestUndecodableOpResultIsDeterministic(t *testing.T) {
	op := []byte{0xff, 0xff, 0xff}
	assert.Equal(t, kv.NewStore().Apply(op), kv.NewStore().Apply(op))
}

func TestOpWithNoKindReturnsErrorResult(t *testing.T) {
	for name, op := range map[string][]byte{"nil": nil, "empty": {}} {
		t.Run(name, func(t *testing.T) {
			r := apply(t, kv.NewStore(), op)
			assert.Equal(t, kv.ErrTextNoKind, r.GetError())
		})
	}
}

func TestReadOnlyIsTrueForGetOnly(t *testing.T) {
	s := kv.NewStore()
	cases := map[string]struct {
		op       []byte
		readOnly bool
	}{
		"get":           {kv.GetOp("k"), true},
		"put":           {kv.PutOp("k", []byte("v")), false},
		"delete":        {kv.DeleteOp("k"), false},
		"cas":           {kv.CASOp("k", []byte("a"), []byte("b")), false},
		"put if absent": {kv.PutIfAbsentOp("k", []byte("v")), false},
		"undecodable":   {[]byte{0xff, 0xff, 0xff}, false},
		"no kind":       {nil, false},
	}
	for name, c := range cases {
		assert.Equal(t, c.readOnly, s.ReadOnly(c.op), name)
	}
}

func TestSnapshotRestoreRoundTripPreservesStateAndBytes(t *testing.T) {
	src := kv.NewStore()
	fill(t, src, "b", "a", "c")
	apply(t, src, kv.PutOp("empty", nil))
	apply(t, src, kv.DeleteOp("c"))
	snap := snapshot(t, src)

	dst := kv.NewStore()
	fill(t, dst, "stale") // Restore must replace, not merge.
	require.NoError(t, dst.Restore(snap))

	assert.Equal(t, snap, snapshot(t, dst))
	assert.Equal(t, src.Len(), dst.Len())
	for _, k := range []string{"a", "b", "empty"} {
		want, wantOK := src.Get(k)
		got, gotOK := dst.Get(k)
		assert.Equal(t, wantOK, gotOK, k)
		assert.Equal(t, want, got, k)
	}
	_, ok := dst.Get("stale")
	assert.False(t, ok)
}

func TestRestoreOfEmptySnapshotEmptiesStore(t *testing.T) {
	s := kv.NewStore()
	fill(t, s, "a")
	require.NoError(t, s.Restore(snapshot(t, kv.NewStore())))
	assert.Zero(t, s.Len())
}

func TestSnapshotBytesIndependentOfInsertionOrder(t *testing.T) {
	a := kv.NewStore()
	fill(t, a, "x", "y", "z", "w")

	b := kv.NewStore()
	fill(t, b, "w", "q", "z", "y", "x")
	apply(t, b, kv.DeleteOp("q"))

	assert.Equal(t, snapshot(t, a), snapshot(t, b))
}

func TestRestoreOfGarbageFailsAndLeavesStoreUsable(t *testing.T) {
	s := kv.NewStore()
	fill(t, s, "a", "b")
	before := snapshot(t, s)

	err := s.Restore([]byte{0xff, 0xff, 0xff})
	require.ErrorIs(t, err, kv.ErrBadSnapshot)

	assert.Equal(t, before, snapshot(t, s), "failed restore must not change state")
	apply(t, s, kv.PutOp("c", []byte("v")))
	r := apply(t, s, kv.GetOp("c"))
	assert.True(t, r.GetFound())
	assert.Equal(t, 3, s.Len())
}

func TestRestoreRejectsUnsortedOrDuplicateKeys(t *testing.T) {
	for name, pairs := range map[string][]*kv.Pair{
		"unsorted":  {{Key: []byte("b")}, {Key: []byte("a")}},
		"duplicate": {{Key: []byte("a")}, {Key: []byte("a")}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := proto.Marshal(&kv.Snapshot{Pairs: pairs})
			require.NoError(t, err)
			s := kv.NewStore()
			fill(t, s, "keep")
			require.ErrorIs(t, s.Restore(b), kv.ErrBadSnapshot)
			_, ok := s.Get("keep")
			assert.True(t, ok)
		})
	}
}

func TestGetAccessorReturnsACopy(t *testing.T) {
	s := kv.NewStore()
	apply(t, s, kv.PutOp("k", []byte("v")))
	v, _ := s.Get("k")
	v[0] = 'X'
	again, _ := s.Get("k")
	assert.Equal(t, []byte("v"), again)
}

func TestDecodeResultRejectsGarbage(t *testing.T) {
	_, err := kv.DecodeResult([]byte{0xff, 0xff, 0xff})
	assert.Error(t, err)
}
