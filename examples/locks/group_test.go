package locks_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/examples/locks"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// The group test runs the lock service in a real group of three replicas on
// a real actor system. It never sleeps and never asserts on how long
// something took: it polls with generous deadlines. Its outcome does not
// depend on timing: one client issues every op in turn, and the times the
// ops carry are fixed numbers, so each result is fixed by the ops before it.

const (
	waitFor   = 10 * time.Second
	pollEvery = 20 * time.Millisecond
	// opTimeout bounds one client call; it spans a view change.
	opTimeout = 10 * time.Second
	// checkpointInterval is small so that checkpoints come within a few
	// dozen ops, and a replica that restarts catches up through one.
	checkpointInterval = 16
	// lease is the lease of the contested lock, in the test's client time.
	lease = 100
)

// startGroup starts three replicas of the service, keeping no log below
// their latest checkpoint, so that a restarted replica can only catch up
// by Restore.
func startGroup(t *testing.T) *supervisor.Group {
	t.Helper()
	g, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID:       0x10c5,
		Replicas:        3,
		NewStateMachine: locks.New,
		Timing:          vsr.Config{CheckpointInterval: checkpointInterval, TrailingOps: -1},
	})
	require.NoError(t, err)
	t.Cleanup(g.Stop)
	return g
}

// call runs op with one of the client's calls (Execute, Read or ReadStale)
// and decodes the result.
func call(t *testing.T, do func(context.Context, []byte) ([]byte, error), op []byte) locks.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := do(ctx, op)
	require.NoError(t, err)
	res, err := locks.DecodeResult(b)
	require.NoError(t, err)
	return res
}

// statuses asks every replica for its status, with a digest of its state
// when digest is set.
func statuses(g *supervisor.Group, digest bool) []supervisor.ReplicaStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if digest {
		return g.Status(ctx)
	}
	return g.StatusWithoutDigest(ctx)
}

// waitPrimary waits for a primary that is not excluded and returns it.
func waitPrimary(t *testing.T, g *supervisor.Group, excluded int) int {
	t.Helper()
	p := -1
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p = g.Primary(ctx)
		return p >= 0 && p != excluded
	}, waitFor, pollEvery, "no primary other than %d", excluded)
	return p
}

// waitConverged waits until every replica is normal in one view, has
// executed its whole log, and holds the same state (the digest of its
// Snapshot), and returns their statuses.
func waitConverged(t *testing.T, g *supervisor.Group) []supervisor.ReplicaStatus {
	t.Helper()
	var last []supervisor.ReplicaStatus
	require.Eventually(t, func() bool {
		last = statuses(g, true)
		first := last[0]
		for _, s := range last {
			if s.Down || s.Status != vsr.StatusNormal || s.View != first.View ||
				s.CommitNumber != first.CommitNumber || s.OpNumber != s.CommitNumber || s.Digest != first.Digest {
				return false
			}
		}
		return true
	}, waitFor, pollEvery, "replicas did not converge")
	return last
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
	g := startGroup(t)
	c, err := g.NewClient(1)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	var seen tokens

	// Alice takes the contested lock with a lease; then enough grants and
	// releases of other locks to pass two checkpoints.
	alice := seen.grant(t, call(t, c.Execute, locks.AcquireOp("db", "alice", lease, 1000)))
	for i := range checkpointInterval {
		name := fmt.Sprintf("job%02d", i)
		tok := seen.grant(t, call(t, c.Execute, locks.AcquireOp(name, "worker", 0, 1000)))
		require.Equal(t, locks.StatusOK, call(t, c.Execute, locks.ReleaseOp(name, tok)).Status)
	}
	// A malformed op is answered with an error result, not a crash.
	require.Equal(t, locks.StatusMalformed, call(t, c.Execute, []byte{0xff}).Status)

	// First failover: kill the primary (Group.Kill on Group.Primary).
	first := waitPrimary(t, g, -1)
	require.NoError(t, g.Kill(first))
	waitPrimary(t, g, first)

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
	for i := range checkpointInterval {
		seen.grant(t, call(t, c.Execute, locks.AcquireOp(fmt.Sprintf("batch%02d", i), "worker", 0, 1200)))
	}
	require.Eventually(t, func() bool {
		for i, s := range statuses(g, false) {
			if i != first && (s.Down || s.LogBase == 0) {
				return false
			}
		}
		return true
	}, waitFor, pollEvery, "the survivors never trimmed their logs below a checkpoint")
	require.NoError(t, g.Restart(first))
	seen.grant(t, call(t, c.Execute, locks.AcquireOp("after-restart", "worker", 0, 1200)))
	sts := waitConverged(t, g)
	require.Positive(t, sts[first].CheckpointsInstalled, "the restarted replica did not catch up through a checkpoint")

	// The equal digests show that the state Restore rebuilt is byte for
	// byte the others', down to the last token issued. Second failover:
	// kill whichever replica is primary now. Unless that is the restored
	// replica, the two that remain include it, and a wrong last token would
	// make the next grant repeat one.
	second := waitPrimary(t, g, -1)
	require.NoError(t, g.Kill(second))
	waitPrimary(t, g, second)
	require.Equal(t, locks.StatusOK, call(t, c.Read, locks.CheckOp("db", bob, 1250)).Status)
	require.Equal(t, locks.StatusStale, call(t, c.Read, locks.CheckOp("db", alice, 1250)).Status)
	carol := seen.grant(t, call(t, c.Execute, locks.AcquireOp("db", "carol", lease, 1400)))
	require.Equal(t, locks.StatusStale, call(t, c.Read, locks.CheckOp("db", bob, 1400)).Status)
	require.Equal(t, locks.StatusOK, call(t, c.Execute, locks.ReleaseOp("db", carol)).Status)
	require.Equal(t, locks.Result{Status: locks.StatusStale}, call(t, c.Read, locks.CheckOp("db", carol, 1400)))
}
