package elixirkv_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/examples/elixirkv"
)

// apply runs op on s and decodes its result, which must decode whatever op
// was: Apply's output is always a Result.
func apply(t *testing.T, s *elixirkv.Store, op []byte) elixirkv.Result {
	t.Helper()
	res, err := elixirkv.DecodeResult(s.Apply(op))
	require.NoError(t, err)
	return res
}

// snapshot returns s's snapshot, which must not fail.
func snapshot(t *testing.T, s *elixirkv.Store) []byte {
	t.Helper()
	b, err := s.Snapshot()
	require.NoError(t, err)
	return b
}

// The tests below mirror what Vsr.ListKv does in the Elixir tests: read,
// write, delete and cas, with the results Elixir returns written beside.

func TestReadWriteDelete(t *testing.T) {
	s := elixirkv.NewStore()

	// {:read, "k"} on an empty store is {:ok, nil}.
	require.Equal(t, elixirkv.Result{Status: elixirkv.StatusOK}, apply(t, s, elixirkv.ReadOp("k")))

	// {:write, "k", "v"} is :ok, and a read then sees {:ok, "v"}.
	require.Equal(t, elixirkv.StatusOK, apply(t, s, elixirkv.WriteOp("k", []byte("v"))).Status)
	require.Equal(t, elixirkv.Result{Status: elixirkv.StatusOK, Found: true, Value: []byte("v")},
		apply(t, s, elixirkv.ReadOp("k")))

	// An empty value is a present key, unlike Elixir's nil.
	apply(t, s, elixirkv.WriteOp("empty", nil))
	res := apply(t, s, elixirkv.ReadOp("empty"))
	require.True(t, res.Found)
	require.Empty(t, res.Value)

	// {:delete, "k"} is :ok whether or not the key is there.
	require.Equal(t, elixirkv.StatusOK, apply(t, s, elixirkv.DeleteOp("k")).Status)
	require.Equal(t, elixirkv.StatusOK, apply(t, s, elixirkv.DeleteOp("k")).Status)
	require.False(t, apply(t, s, elixirkv.ReadOp("k")).Found)
}

func TestCompareAndSwap(t *testing.T) {
	s := elixirkv.NewStore()

	// {:cas, "k", nil, "a"} on an absent key swaps: CASAbsentOp.
	require.Equal(t, elixirkv.StatusOK, apply(t, s, elixirkv.CASAbsentOp("k", []byte("a"))).Status)
	// The same again fails, the key being present now.
	require.Equal(t, elixirkv.StatusCASFailed, apply(t, s, elixirkv.CASAbsentOp("k", []byte("b"))).Status)

	// {:cas, "k", "a", "b"} swaps; {:cas, "k", "a", "c"} then fails with
	// {:error, :cas_failed} and changes nothing.
	require.Equal(t, elixirkv.StatusOK, apply(t, s, elixirkv.CASOp("k", []byte("a"), []byte("b"))).Status)
	require.Equal(t, elixirkv.StatusCASFailed, apply(t, s, elixirkv.CASOp("k", []byte("a"), []byte("c"))).Status)
	v, _ := s.Get("k")
	require.Equal(t, "b", string(v))

	// A present-value CAS never matches an absent key, even with an empty
	// expected value: Go keeps "absent" and "empty" apart.
	require.Equal(t, elixirkv.StatusCASFailed, apply(t, s, elixirkv.CASOp("absent", nil, []byte("x"))).Status)
	_, found := s.Get("absent")
	require.False(t, found)
}

func TestReadOnly(t *testing.T) {
	s := elixirkv.NewStore()
	require.True(t, s.ReadOnly(elixirkv.ReadOp("k")))
	for _, op := range [][]byte{
		elixirkv.WriteOp("k", nil), elixirkv.DeleteOp("k"), elixirkv.CASOp("k", nil, nil),
		elixirkv.CASAbsentOp("k", nil), nil, {1}, append(elixirkv.ReadOp("k"), 0),
	} {
		require.False(t, s.ReadOnly(op), "op %x", op)
	}

	// A read served through Apply, as a linearizable or stale read is,
	// leaves the state exactly as it was.
	apply(t, s, elixirkv.WriteOp("k", []byte("v")))
	before := snapshot(t, s)
	apply(t, s, elixirkv.ReadOp("k"))
	apply(t, s, elixirkv.ReadOp("missing"))
	require.Equal(t, before, snapshot(t, s))
}

// TestMalformedOps feeds Apply every truncation and every single-byte
// corruption of each kind of op, and some bytes no encoder makes. None may
// panic or change the state, and each gets a Result: StatusMalformed, or, for
// a corruption that still decodes, whatever that op does.
func TestMalformedOps(t *testing.T) {
	valid := [][]byte{
		elixirkv.ReadOp("key"), elixirkv.WriteOp("key", []byte("value")), elixirkv.DeleteOp("key"),
		elixirkv.CASOp("key", []byte("old"), []byte("new")), elixirkv.CASAbsentOp("key", []byte("new")),
	}
	for _, op := range valid {
		for n := range len(op) {
			s := elixirkv.NewStore()
			require.Equal(t, elixirkv.StatusMalformed, apply(t, s, op[:n]).Status, "truncated %x", op[:n])
			require.Equal(t, 0, s.Len())
		}
		require.Equal(t, elixirkv.StatusMalformed, apply(t, elixirkv.NewStore(), append(op, 0)).Status)
		for i := range op {
			for _, flip := range []byte{0x01, 0x80, 0xff} {
				bad := append([]byte{}, op...)
				bad[i] ^= flip
				apply(t, elixirkv.NewStore(), bad) // must not panic; any Result is fine
			}
		}
	}
	for _, op := range [][]byte{{0}, {6}, {0xff}, {2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}} {
		require.Equal(t, elixirkv.StatusMalformed, apply(t, elixirkv.NewStore(), op).Status, "op %x", op)
	}
}

func TestSnapshotRestore(t *testing.T) {
	// Two stores that reach the same pairs by different paths give the
	// same bytes: a snapshot depends on the state, not on its history.
	a, b := elixirkv.NewStore(), elixirkv.NewStore()
	for i := range 50 {
		apply(t, a, elixirkv.WriteOp(fmt.Sprintf("k%02d", i), []byte{byte(i)}))
	}
	for i := 49; i >= 0; i-- {
		apply(t, b, elixirkv.WriteOp(fmt.Sprintf("k%02d", i), []byte("scratch")))
		apply(t, b, elixirkv.WriteOp(fmt.Sprintf("k%02d", i), []byte{byte(i)}))
	}
	apply(t, b, elixirkv.WriteOp("gone", nil))
	apply(t, b, elixirkv.DeleteOp("gone"))
	snap := snapshot(t, a)
	require.Equal(t, snap, snapshot(t, b))

	// Restore into a store that held something else gives back the same
	// state, and the same snapshot.
	c := elixirkv.NewStore()
	apply(t, c, elixirkv.WriteOp("other", []byte("x")))
	require.NoError(t, c.Restore(snap))
	require.Equal(t, snap, snapshot(t, c))
	_, found := c.Get("other")
	require.False(t, found)
	require.Equal(t, 50, c.Len())

	// The empty store round-trips too.
	empty := snapshot(t, elixirkv.NewStore())
	require.NoError(t, c.Restore(empty))
	require.Equal(t, 0, c.Len())
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	s := elixirkv.NewStore()
	apply(t, s, elixirkv.WriteOp("a", []byte("1")))
	apply(t, s, elixirkv.WriteOp("b", []byte("2")))
	good := snapshot(t, s)

	target := elixirkv.NewStore()
	apply(t, target, elixirkv.WriteOp("kept", []byte("yes")))
	kept := snapshot(t, target)

	bad := [][]byte{nil, {0}, {2}, append(append([]byte{}, good...), 0)}
	for n := 1; n < len(good); n++ {
		bad = append(bad, good[:n])
	}
	// Keys out of order, and a repeated key, are not a snapshot Snapshot
	// could have taken.
	bad = append(bad, []byte{1, 2, 1, 'b', 0, 1, 'a', 0}, []byte{1, 2, 1, 'a', 0, 1, 'a', 0})
	for _, b := range bad {
		require.ErrorIs(t, target.Restore(b), elixirkv.ErrBadSnapshot, "snapshot %x", b)
		require.Equal(t, kept, snapshot(t, target), "a failed Restore changed the store")
	}
}

// TestCheckpointMatchesSnapshot checks the Checkpointer contract: the
// function Checkpoint returns encodes the state at the moment of the call,
// byte for byte as Snapshot did then, however the store changes before the
// function runs.
func TestCheckpointMatchesSnapshot(t *testing.T) {
	s := elixirkv.NewStore()
	for i := range 100 {
		apply(t, s, elixirkv.WriteOp(fmt.Sprintf("k%03d", i), []byte("v")))
	}
	want := snapshot(t, s)
	encode := s.Checkpoint()
	for i := range 100 {
		apply(t, s, elixirkv.WriteOp(fmt.Sprintf("k%03d", i), []byte("changed")))
		apply(t, s, elixirkv.DeleteOp(fmt.Sprintf("k%03d", i+50)))
	}
	require.NoError(t, s.Restore(snapshot(t, elixirkv.NewStore())))
	got, err := encode()
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestDecodeResultRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {3}, {0}, {0, 2, 0}, {0, 1, 5, 'x'}, {1, 0}} {
		_, err := elixirkv.DecodeResult(b)
		require.ErrorIs(t, err, elixirkv.ErrBadResult, "result %x", b)
	}
}

// FuzzApply runs its seed corpus with go test, and any input with -fuzz: no
// op may panic, and the result must always decode.
func FuzzApply(f *testing.F) {
	f.Add(elixirkv.WriteOp("k", []byte("v")))
	f.Add(elixirkv.CASOp("k", []byte("v"), []byte("w")))
	f.Add([]byte{4, 0xff})
	f.Fuzz(func(t *testing.T, op []byte) {
		s := elixirkv.NewStore()
		s.Apply(elixirkv.WriteOp("k", []byte("v")))
		_, err := elixirkv.DecodeResult(s.Apply(op))
		require.NoError(t, err)
	})
}
