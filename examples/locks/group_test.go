package locks_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/examples/internal/grouptest"
	"github.com/vsrgo/vsr/examples/locks"
)

// The group test runs the lock service in a real group of three replicas on
// a real actor system. It never sleeps and never asserts on how long
// something took: it polls with generous deadlines. Its outcome does not
// depend on timing: one client issues every op in turn, and the times the
// ops carry are fixed numbers, so each result is fixed by the ops before it.

// lease is the lease of the contested lock, in the test's client time.
const lease = 100

// call runs op with one of the client's calls and decodes the result.
func call(t *testing.T, do func(context.Context, []byte) ([]byte, error), op []byte) locks.Result {
	t.Helper()
	return grouptest.Call(t, do, op, locks.DecodeResult)
}

// tokens checks that every fencing token the test is handed is above every
// earlier one, across failovers.
type tokens struct{ last uint64 }

// grant requires that res is a grant with a token above every earlier one.
func (k *tokens) grant(t *testing.T, res locks.Result) uint64 {
	t.Helper()
	require.Equal(t, locks.StatusOK, res.Status)
	require.Greater(t, res.Token, k.last, "a fencing token went backwards")
	k.last = res.Token
	return res.Token
}

// TestFencingAcrossFailover kills the primary twice. Across both failovers
// the lock table survives, a holder's token stays valid until its lease
// ends, the next grant's token is higher than every earlier one, and the
// old holder's token is refused.
func TestFencingAcrossFailover(t *testing.T) {
	g := grouptest.StartGroup(t, 0x10c5, locks.New)
	c, err := g.NewClient(1)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	var seen tokens

	// Alice takes the contested lock with a lease; then enough grants and
	// releases of other locks to pass two checkpoints.
	alice := seen.grant(t, call(t, c.Execute, locks.AcquireOp("db", "alice", lease, 1000)))
	for i := range grouptest.CheckpointInterval {
		name := fmt.Sprintf("job%02d", i)
		tok := seen.grant(t, call(t, c.Execute, locks.AcquireOp(name, "worker", 0, 1000)))
		require.Equal(t, locks.StatusOK, call(t, c.Execute, locks.ReleaseOp(name, tok)).Status)
	}
	// A malformed op is answered with an error result, not a crash.
	require.Equal(t, locks.StatusMalformed, call(t, c.Execute, []byte{0xff}).Status)

	// First failover: kill the primary (Group.Kill on Group.Primary).
	first := grouptest.WaitPrimary(t, g, -1)
	require.NoError(t, g.Kill(first))
	grouptest.WaitPrimary(t, g, first)

	// The lock table survived: alice still holds the lock within her lease,
	// and bob is refused.
	require.Equal(t, locks.StatusOK, call(t, c.Read, locks.CheckOp("db", alice, 1050)).Status)
	busy := call(t, c.Execute, locks.AcquireOp("db", "bob", lease, 1050))
	require.Equal(t, locks.Result{Status: locks.StatusBusy, Token: alice, Owner: "alice", Expires: 1000 + lease}, busy)

	// Alice's lease ends; bob gets the lock with a higher token, and
	// alice's token is stale from now on, for the check and for release.
	bob := seen.grant(t, call(t, c.Execute, locks.AcquireOp("db", "bob", lease, 1200)))
	require.Equal(t, locks.StatusStale, call(t, c.Read, locks.CheckOp("db", alice, 1200)).Status)
	require.Equal(t, locks.StatusStale, call(t, c.Execute, locks.ReleaseOp("db", alice)).Status)
	require.Equal(t, locks.StatusOK, call(t, c.Read, locks.CheckOp("db", bob, 1200)).Status)

	// More grants, so that the survivors checkpoint again and trim their
	// logs; then the killed replica comes back empty (no disk) and runs VR
	// recovery, which can only bring it up to date through a checkpoint.
	for i := range grouptest.CheckpointInterval {
		seen.grant(t, call(t, c.Execute, locks.AcquireOp(fmt.Sprintf("batch%02d", i), "worker", 0, 1200)))
	}
	grouptest.WaitTrimmed(t, g, first)
	require.NoError(t, g.Restart(first))
	seen.grant(t, call(t, c.Execute, locks.AcquireOp("after-restart", "worker", 0, 1200)))
	sts := grouptest.WaitConverged(t, g)
	require.Positive(t, sts[first].CheckpointsInstalled, "the restarted replica did not catch up through a checkpoint")

	// The equal digests show that the state Restore rebuilt is byte for
	// byte the others', down to the last token issued. Second failover:
	// kill whichever replica is primary now. Unless that is the restored
	// replica, the two that remain include it, and a wrong last token would
	// make the next grant repeat one.
	second := grouptest.WaitPrimary(t, g, -1)
	require.NoError(t, g.Kill(second))
	grouptest.WaitPrimary(t, g, second)
	require.Equal(t, locks.StatusOK, call(t, c.Read, locks.CheckOp("db", bob, 1250)).Status)
	require.Equal(t, locks.StatusStale, call(t, c.Read, locks.CheckOp("db", alice, 1250)).Status)
	carol := seen.grant(t, call(t, c.Execute, locks.AcquireOp("db", "carol", lease, 1400)))
	require.Equal(t, locks.StatusStale, call(t, c.Read, locks.CheckOp("db", bob, 1400)).Status)
	require.Equal(t, locks.StatusOK, call(t, c.Execute, locks.ReleaseOp("db", carol)).Status)
	require.Equal(t, locks.Result{Status: locks.StatusStale}, call(t, c.Read, locks.CheckOp("db", carol, 1400)))
}
