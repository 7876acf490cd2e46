package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
)

// snapshotCounter makes key-value stores that count their snapshots: a
// status digest is a snapshot of the whole state machine, so the count
// tells which status queries paid for one.
type snapshotCounter struct{ n atomic.Int64 }

type countingStore struct {
	statemachine.StateMachine
	n *atomic.Int64
}

func (s countingStore) Snapshot() ([]byte, error) {
	s.n.Add(1)
	return s.StateMachine.Snapshot()
}

func (c *snapshotCounter) factory() statemachine.StateMachine {
	return countingStore{StateMachine: kv.New(), n: &c.n}
}

// The remote client's StatusWithoutDigest, and everything that polls with
// it, takes no snapshot; Status takes one on every replica it asks.
func TestRemoteStatusWithoutDigestTakesNoSnapshot(t *testing.T) {
	var snaps snapshotCounter
	cfg := Config{ClusterID: 1, Replicas: freeAddrs(t, 3)}
	dir := t.TempDir()
	for i := range cfg.Replicas {
		n, err := StartNode(NodeConfig{Config: cfg, Index: i, DataDir: filepath.Join(dir, fmt.Sprint(i)), NewStateMachine: snaps.factory})
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Stop() })
	}
	c, err := NewClient(cfg, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	waitFor(t, "a primary", 10*time.Second, func() bool { return primaryOf(c.StatusWithoutDigest(time.Second)) >= 0 })
	for range 10 {
		for j, s := range c.StatusWithoutDigest(time.Second) {
			require.NotNil(t, s, "replica %d", j)
		}
	}
	require.Zero(t, snaps.n.Load(), "a status without digest took a snapshot")

	st := c.Status(time.Second)
	require.Equal(t, int64(len(cfg.Replicas)), snaps.n.Load(), "one snapshot per replica for the digests")
	for j, s := range st {
		require.NotNil(t, s, "replica %d", j)
		require.Equal(t, st[0].Digest, s.Digest, "replica %d", j)
	}
}

// The same for a group in one process: Primary and StatusWithoutDigest take
// no snapshot, Status one per replica. (The test lives here because the
// supervisor's own tests are not this change's to edit.)
func TestGroupStatusWithoutDigestTakesNoSnapshot(t *testing.T) {
	var snaps snapshotCounter
	g, err := supervisor.StartGroup(supervisor.GroupConfig{ClusterID: 1, Replicas: 3, NewStateMachine: snaps.factory})
	require.NoError(t, err)
	defer g.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, "a primary", 10*time.Second, func() bool { return g.Primary(ctx) >= 0 })
	for range 10 {
		for _, s := range g.StatusWithoutDigest(ctx) {
			require.False(t, s.Down, "replica %d", s.Replica)
		}
	}
	require.Zero(t, snaps.n.Load(), "Primary or StatusWithoutDigest took a snapshot")
	st := g.Status(ctx)
	require.Equal(t, int64(3), snaps.n.Load(), "one snapshot per replica for the digests")
	require.NotEqual(t, [32]byte{}, st[0].Digest)
}
