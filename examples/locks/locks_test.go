package locks_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/examples/locks"
)

// apply runs op on s and decodes its result, which must decode whatever op
// was: Apply's output is always a Result.
func apply(t *testing.T, s *locks.Service, op []byte) locks.Result {
	t.Helper()
	res, err := locks.DecodeResult(s.Apply(op))
	require.NoError(t, err)
	return res
}

// snapshot returns s's snapshot, which must not fail.
func snapshot(t *testing.T, s *locks.Service) []byte {
	t.Helper()
	b, err := s.Snapshot()
	require.NoError(t, err)
	return b
}

func TestAcquireReleaseAndTokens(t *testing.T) {
	s := locks.NewService()

	// The first grant gets token 1; a second lock gets token 2.
	a := apply(t, s, locks.AcquireOp("db", "alice", 0, 100))
	require.Equal(t, locks.Result{Status: locks.StatusOK, Token: 1, Owner: "alice"}, a)
	require.Equal(t, uint64(2), apply(t, s, locks.AcquireOp("queue", "alice", 0, 100)).Token)

	// Another owner is refused and told who holds the lock.
	require.Equal(t, locks.Result{Status: locks.StatusBusy, Token: 1, Owner: "alice"},
		apply(t, s, locks.AcquireOp("db", "bob", 0, 100)))

	// The holder acquiring again renews: same token.
	require.Equal(t, a, apply(t, s, locks.AcquireOp("db", "alice", 0, 100)))

	// A release with a wrong token frees nothing; with the right one it
	// frees the lock, and the next grant gets a token above every earlier
	// one, not the released one again.
	require.Equal(t, locks.StatusStale, apply(t, s, locks.ReleaseOp("db", 2)).Status)
	require.Equal(t, locks.StatusOK, apply(t, s, locks.ReleaseOp("db", 1)).Status)
	require.Equal(t, locks.StatusStale, apply(t, s, locks.ReleaseOp("db", 1)).Status, "released twice")
	b := apply(t, s, locks.AcquireOp("db", "bob", 0, 100))
	require.Equal(t, locks.Result{Status: locks.StatusOK, Token: 3, Owner: "bob"}, b)
}

func TestLeasesAndFencing(t *testing.T) {
	s := locks.NewService()
	a := apply(t, s, locks.AcquireOp("db", "alice", 50, 1000))
	require.Equal(t, locks.Result{Status: locks.StatusOK, Token: 1, Owner: "alice", Expires: 1050}, a)

	// Within the lease: alice's token checks out, bob is refused.
	require.Equal(t, a, apply(t, s, locks.CheckOp("db", 1, 1049)))
	require.Equal(t, locks.StatusBusy, apply(t, s, locks.AcquireOp("db", "bob", 50, 1049)).Status)

	// A Check with a later time sees the lease as ended, but does not move
	// the service's clock: it is read-only.
	require.Equal(t, locks.Result{Status: locks.StatusStale}, apply(t, s, locks.CheckOp("db", 1, 1050)))
	require.Equal(t, locks.StatusBusy, apply(t, s, locks.AcquireOp("db", "bob", 50, 1049)).Status)

	// Once an Acquire carries a time past the lease, bob gets the lock with
	// a higher token, and alice's token is stale from then on, whatever
	// time her check claims.
	b := apply(t, s, locks.AcquireOp("db", "bob", 50, 1060))
	require.Equal(t, locks.Result{Status: locks.StatusOK, Token: 2, Owner: "bob", Expires: 1110}, b)
	require.Equal(t, locks.Result{Status: locks.StatusStale, Token: 2, Owner: "bob", Expires: 1110},
		apply(t, s, locks.CheckOp("db", 1, 0)))
	require.Equal(t, locks.StatusStale, apply(t, s, locks.ReleaseOp("db", 1)).Status)

	// The clock never goes backwards: an Acquire with an earlier time does
	// not revive a lease that has ended.
	require.Equal(t, locks.StatusOK, apply(t, s, locks.AcquireOp("tmp", "carol", 10, 1060)).Status)
	require.Equal(t, locks.StatusOK, apply(t, s, locks.AcquireOp("x", "dave", 0, 2000)).Status)
	require.Equal(t, uint64(5), apply(t, s, locks.AcquireOp("tmp", "erin", 10, 5)).Token)

	// A renewal with a new lease keeps the token and moves the end.
	require.Equal(t, locks.Result{Status: locks.StatusOK, Token: 5, Owner: "erin", Expires: 2100},
		apply(t, s, locks.AcquireOp("tmp", "erin", 100, 2000)))

	// A lease that would end past the largest time saturates.
	require.Equal(t, uint64(math.MaxUint64),
		apply(t, s, locks.AcquireOp("far", "fay", math.MaxUint64, 2000)).Expires)
}

func TestReadOnly(t *testing.T) {
	s := locks.NewService()
	require.True(t, s.ReadOnly(locks.CheckOp("db", 1, 0)))
	for _, op := range [][]byte{
		locks.AcquireOp("db", "a", 0, 0), locks.ReleaseOp("db", 1), locks.CheckOp("", 1, 0),
		nil, {3}, append(locks.CheckOp("db", 1, 0), 0),
	} {
		require.False(t, s.ReadOnly(op), "op %x", op)
	}

	// A Check served through Apply, as a read is, changes nothing.
	apply(t, s, locks.AcquireOp("db", "alice", 10, 100))
	before := snapshot(t, s)
	apply(t, s, locks.CheckOp("db", 1, 500))
	apply(t, s, locks.CheckOp("other", 7, 500))
	require.Equal(t, before, snapshot(t, s))
}

// TestMalformedOps feeds Apply every truncation and single-byte corruption
// of each kind of op, ops with empty names and owners, and bytes no encoder
// makes. None may panic, and a malformed op changes nothing.
func TestMalformedOps(t *testing.T) {
	valid := [][]byte{locks.AcquireOp("db", "alice", 10, 100), locks.ReleaseOp("db", 1), locks.CheckOp("db", 1, 100)}
	for _, op := range valid {
		for n := range len(op) {
			s := locks.NewService()
			before := snapshot(t, s)
			require.Equal(t, locks.StatusMalformed, apply(t, s, op[:n]).Status, "truncated %x", op[:n])
			require.Equal(t, before, snapshot(t, s))
		}
		require.Equal(t, locks.StatusMalformed, apply(t, locks.NewService(), append(op, 0)).Status)
		for i := range op {
			for _, flip := range []byte{0x01, 0x80, 0xff} {
				bad := append([]byte{}, op...)
				bad[i] ^= flip
				apply(t, locks.NewService(), bad) // must not panic; any Result is fine
			}
		}
	}
	for _, op := range [][]byte{
		locks.AcquireOp("", "alice", 0, 0), locks.AcquireOp("db", "", 0, 0), locks.ReleaseOp("", 1),
		{0}, {4}, {0xff}, {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	} {
		s := locks.NewService()
		require.Equal(t, locks.StatusMalformed, apply(t, s, op).Status, "op %x", op)
		require.Equal(t, uint64(1), apply(t, s, locks.AcquireOp("db", "a", 0, 0)).Token, "a malformed op issued a token")
	}
}

func TestSnapshotRestore(t *testing.T) {
	// Go randomizes the order of every range over a map, so repeated
	// snapshots of one service, and the snapshot of a copy whose map was
	// filled in another order, differ unless Snapshot sorts.
	a := locks.NewService()
	for i := range 40 {
		apply(t, a, locks.AcquireOp(fmt.Sprintf("lock%02d", i), "o", 0, 7))
	}
	snap := snapshot(t, a)
	for range 5 {
		require.Equal(t, snap, snapshot(t, a), "Snapshot depends on map order")
	}

	// Restore gives back the same state: the same snapshot, the same
	// answers, and tokens that go on from where they were.
	b := locks.NewService()
	apply(t, b, locks.AcquireOp("unrelated", "x", 0, 1))
	require.NoError(t, b.Restore(snap))
	require.Equal(t, snap, snapshot(t, b))
	require.Equal(t, locks.StatusOK, apply(t, b, locks.CheckOp("lock07", 8, 0)).Status)
	require.Equal(t, locks.StatusStale, apply(t, b, locks.CheckOp("unrelated", 1, 0)).Status)
	require.Equal(t, uint64(41), apply(t, b, locks.AcquireOp("new", "o", 0, 7)).Token)

	// The clock is part of the state: a restored service does not revive
	// a lease that ended before the snapshot.
	c := locks.NewService()
	apply(t, c, locks.AcquireOp("db", "alice", 10, 100))
	apply(t, c, locks.AcquireOp("other", "bob", 0, 200))
	d := locks.NewService()
	require.NoError(t, d.Restore(snapshot(t, c)))
	require.Equal(t, uint64(3), apply(t, d, locks.AcquireOp("db", "carol", 10, 0)).Token)
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	s := locks.NewService()
	apply(t, s, locks.AcquireOp("a", "x", 0, 1))
	apply(t, s, locks.AcquireOp("b", "y", 5, 1))
	good := snapshot(t, s)

	target := locks.NewService()
	apply(t, target, locks.AcquireOp("kept", "z", 0, 1))
	kept := snapshot(t, target)

	bad := [][]byte{nil, {0}, {2}, append(append([]byte{}, good...), 0)}
	for n := 1; n < len(good); n++ {
		bad = append(bad, good[:n])
	}
	// version, now, lastToken, count, then (name, owner, token, expires):
	bad = append(bad,
		[]byte{1, 0, 2, 2, 1, 'b', 1, 'x', 1, 0, 1, 'a', 1, 'y', 2, 0}, // names out of order
		[]byte{1, 0, 2, 1, 1, 'a', 0, 1, 0},                            // no owner
		[]byte{1, 0, 2, 1, 1, 'a', 1, 'x', 0, 0},                       // token zero
		[]byte{1, 0, 2, 1, 1, 'a', 1, 'x', 3, 0},                       // token never issued
		[]byte{1, 0, 2, 2, 1, 'a', 1, 'x', 1, 0, 1, 'b', 1, 'y', 1, 0}, // token issued twice
	)
	for _, b := range bad {
		require.ErrorIs(t, target.Restore(b), locks.ErrBadSnapshot, "snapshot %x", b)
		require.Equal(t, kept, snapshot(t, target), "a failed Restore changed the service")
	}
	// The well-formed versions of those fixtures do restore.
	require.NoError(t, target.Restore([]byte{1, 0, 2, 2, 1, 'a', 1, 'x', 1, 0, 1, 'b', 1, 'y', 2, 0}))
}

func TestDecodeResultRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {0}, {4, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0, 5, 'x', 0}} {
		_, err := locks.DecodeResult(b)
		require.ErrorIs(t, err, locks.ErrBadResult, "result %x", b)
	}
}

// FuzzApply runs its seed corpus with go test, and any input with -fuzz: no
// op may panic, the result must decode, and no op may issue a token that is
// not above every earlier one.
func FuzzApply(f *testing.F) {
	f.Add(locks.AcquireOp("db", "alice", 10, 100))
	f.Add(locks.ReleaseOp("db", 1))
	f.Add(locks.CheckOp("db", 1, 100))
	f.Fuzz(func(t *testing.T, op []byte) {
		s := locks.NewService()
		s.Apply(locks.AcquireOp("db", "alice", 10, 100))
		_, err := locks.DecodeResult(s.Apply(op))
		require.NoError(t, err)
		next, err := locks.DecodeResult(s.Apply(locks.AcquireOp("fresh", "bob", 0, 0)))
		require.NoError(t, err)
		require.Greater(t, next.Token, uint64(1))
	})
}
