// Package grouptest holds what the examples' group tests share: a real group
// of three replicas on a real actor system, and the polls that wait for it.
// The tests never sleep and never assert on how long something took: they
// poll with generous deadlines, because the machine may be small and shared.
package grouptest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

const (
	// WaitFor bounds every poll for a condition that must become true.
	WaitFor = 10 * time.Second
	// PollEvery is how often a condition is polled.
	PollEvery = 20 * time.Millisecond
	// OpTimeout bounds one client call; it spans a view change.
	OpTimeout = 10 * time.Second
	// CheckpointInterval is small so that the group takes checkpoints within
	// a few dozen ops, and a replica that restarts must fetch one and call
	// Restore, not only replay the log.
	CheckpointInterval = 16
)

// StartGroup starts three replicas of newMachine, keeping no log below their
// latest checkpoint (TrailingOps below zero), so that a restarted replica
// can only catch up through a checkpoint. The group stops when the test
// ends.
func StartGroup(t *testing.T, clusterID uint64, newMachine statemachine.Factory) *supervisor.Group {
	t.Helper()
	g, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID:       clusterID,
		Replicas:        3,
		NewStateMachine: newMachine,
		Timing:          vsr.Config{CheckpointInterval: CheckpointInterval, TrailingOps: -1},
	})
	require.NoError(t, err)
	t.Cleanup(g.Stop)
	return g
}

// Call runs op with one of a client's calls (Execute, Read or ReadStale)
// and decodes its result with decode.
func Call[R any](t *testing.T, do func(context.Context, []byte) ([]byte, error), op []byte,
	decode func([]byte) (R, error)) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
	defer cancel()
	b, err := do(ctx, op)
	require.NoError(t, err)
	res, err := decode(b)
	require.NoError(t, err)
	return res
}

// Statuses asks every replica for its status, with a digest of its state
// when digest is set.
func Statuses(g *supervisor.Group, digest bool) []supervisor.ReplicaStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if digest {
		return g.Status(ctx)
	}
	return g.StatusWithoutDigest(ctx)
}

// WaitPrimary waits for a primary other than excluded and returns it.
func WaitPrimary(t *testing.T, g *supervisor.Group, excluded int) int {
	t.Helper()
	p := -1
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p = g.Primary(ctx)
		return p >= 0 && p != excluded
	}, WaitFor, PollEvery, "no primary other than %d", excluded)
	return p
}

// WaitTrimmed waits until every replica but down has trimmed its log below
// a checkpoint, so that down, restarted empty, can only catch up by
// installing a checkpoint with Restore.
func WaitTrimmed(t *testing.T, g *supervisor.Group, down int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for i, s := range Statuses(g, false) {
			if i != down && (s.Down || s.LogBase == 0) {
				return false
			}
		}
		return true
	}, WaitFor, PollEvery, "the survivors never trimmed their logs below a checkpoint")
}

// WaitConverged waits until every replica is normal in one view, has
// executed its whole log, and holds the same state (the digest of its
// Snapshot), and returns their statuses.
func WaitConverged(t *testing.T, g *supervisor.Group) []supervisor.ReplicaStatus {
	t.Helper()
	var last []supervisor.ReplicaStatus
	require.Eventually(t, func() bool {
		last = Statuses(g, true)
		first := last[0]
		for _, s := range last {
			if s.Down || s.Status != vsr.StatusNormal || s.View != first.View ||
				s.CommitNumber != first.CommitNumber || s.OpNumber != s.CommitNumber || s.Digest != first.Digest {
				return false
			}
		}
		return true
	}, WaitFor, PollEvery, "replicas did not converge")
	return last
}
