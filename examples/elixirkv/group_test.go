package elixirkv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/examples/elixirkv"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// The group test runs the store in a real group of three replicas on a real
// actor system. It never sleeps and never asserts on how long something took:
// it polls for the state it expects with generous deadlines, because the
// machine may be small and shared. Its outcome does not depend on timing: one
// client issues every op in turn, so each op's result is fixed by the ops
// before it.

const (
	// waitFor bounds every poll for a condition that must become true.
	waitFor = 10 * time.Second
	// pollEvery is how often a condition is polled.
	pollEvery = 20 * time.Millisecond
	// opTimeout bounds one client call; it spans a view change.
	opTimeout = 10 * time.Second
	// checkpointInterval is small so that the group takes checkpoints within
	// a few dozen ops, and a replica that restarts must fetch one and call
	// Restore, not only replay the log.
	checkpointInterval = 16
)

// startGroup starts three replicas of the store, keeping no log below their
// latest checkpoint (TrailingOps below zero), so that a restarted replica can
// only catch up through a checkpoint.
func startGroup(t *testing.T) *supervisor.Group {
	t.Helper()
	g, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID:       0xe1,
		Replicas:        3,
		NewStateMachine: elixirkv.New,
		Timing:          vsr.Config{CheckpointInterval: checkpointInterval, TrailingOps: -1},
	})
	require.NoError(t, err)
	t.Cleanup(g.Stop)
	return g
}

// call runs op with one of the client's calls (Execute, Read or ReadStale)
// and decodes the result.
func call(t *testing.T, do func(context.Context, []byte) ([]byte, error), op []byte) elixirkv.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := do(ctx, op)
	require.NoError(t, err)
	res, err := elixirkv.DecodeResult(b)
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

// waitPrimary waits for a primary that is not one of excluded and returns it.
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

// TestGroupSurvivesPrimaryFailure writes through the primary, kills it, and
// checks that the new primary serves every acknowledged write; then brings
// the old primary back, which catches up by installing a checkpoint
// (Restore), and checks that all three replicas hold byte-identical state.
func TestGroupSurvivesPrimaryFailure(t *testing.T) {
	g := startGroup(t)
	c, err := g.NewClient(1)
	require.NoError(t, err)
	t.Cleanup(c.Close)

	// Enough writes to pass two checkpoints, and the ops of the Elixir
	// tests: write, cas, delete.
	for i := range 2 * checkpointInterval {
		require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.WriteOp(fmt.Sprintf("k%02d", i), []byte("v1"))).Status)
	}
	require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.CASOp("k00", []byte("v1"), []byte("v2"))).Status)
	require.Equal(t, elixirkv.StatusCASFailed, call(t, c.Execute, elixirkv.CASOp("k00", []byte("v1"), []byte("v3"))).Status)
	require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.DeleteOp("k01")).Status)
	// A malformed op is committed like any other and answered with an
	// error result on every replica; it changes nothing.
	require.Equal(t, elixirkv.StatusMalformed, call(t, c.Execute, []byte{0xff}).Status)
	// Sent as a read it is refused before it reaches the state machine,
	// because ReadOnly says no.
	{
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := c.Read(ctx, []byte{0xff})
		cancel()
		require.ErrorIs(t, err, actors.ErrRejected)
		require.ErrorIs(t, err, vsr.ErrNotReadOnly)
	}

	// Kill the primary: Group.Kill on Group.Primary.
	old := waitPrimary(t, g, -1)
	require.NoError(t, g.Kill(old))
	waitPrimary(t, g, old)

	// Every acknowledged write survived the failover, and the new primary
	// goes on taking writes. A linearizable read sees all of them.
	require.Equal(t, elixirkv.Result{Status: elixirkv.StatusOK, Found: true, Value: []byte("v2")},
		call(t, c.Read, elixirkv.ReadOp("k00")))
	require.False(t, call(t, c.Read, elixirkv.ReadOp("k01")).Found)
	for i := 2; i < 2*checkpointInterval; i++ {
		require.Equal(t, elixirkv.Result{Status: elixirkv.StatusOK, Found: true, Value: []byte("v1")},
			call(t, c.Read, elixirkv.ReadOp(fmt.Sprintf("k%02d", i))), "key k%02d", i)
	}
	for i := range checkpointInterval {
		require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.WriteOp(fmt.Sprintf("after%02d", i), []byte("v"))).Status)
	}

	// Wait until the two survivors have trimmed their logs below a
	// checkpoint, so that the old primary, which restarts empty (the group
	// keeps no disk) and runs VR recovery, can only catch up by installing a
	// checkpoint with Restore.
	require.Eventually(t, func() bool {
		for i, s := range statuses(g, false) {
			if i != old && (s.Down || s.LogBase == 0) {
				return false
			}
		}
		return true
	}, waitFor, pollEvery, "the survivors never trimmed their logs below a checkpoint")
	require.NoError(t, g.Restart(old))

	// One more write that all three execute, then the three must agree byte
	// for byte: the digest covers the snapshot of each replica's store.
	require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.WriteOp("last", []byte("v"))).Status)
	sts := waitConverged(t, g)
	require.Positive(t, sts[old].CheckpointsInstalled, "the restarted replica did not catch up through a checkpoint")

	// Now that every replica holds everything, a stale read from any of
	// them gives the same answer as the linearizable one.
	require.Equal(t, []byte("v2"), call(t, c.ReadStale, elixirkv.ReadOp("k00")).Value)
}
