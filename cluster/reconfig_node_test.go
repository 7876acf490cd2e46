package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// How a node starts around reconfigurations: what its data directory's
// record (nodefile.go) makes of a restart, and the starts it refuses.

// memoryGroup starts three nodes without disks in this process.
func memoryGroup(t *testing.T, dir string) (Config, []*Node) {
	t.Helper()
	cfg := Config{ClusterID: 1, Replicas: freeAddrs(t, 3)}
	var nodes []*Node
	for i := range 3 {
		nodes = append(nodes, startMemoryNode(t, cfg, i, dir, false))
	}
	return cfg, nodes
}

func startMemoryNode(t *testing.T, cfg Config, i int, dir string, join bool) *Node {
	t.Helper()
	node, err := StartNode(NodeConfig{Config: cfg, Index: i, DataDir: filepath.Join(dir, cfg.Replicas[i]), Memory: true,
		Join: join, NewStateMachine: kv.New})
	require.NoError(t, err)
	t.Cleanup(func() { _ = node.Stop() })
	return node
}

func put(t *testing.T, c *Client, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Execute(ctx, kv.PutOp(key, []byte(value)))
	require.NoError(t, err)
}

// normalIn waits until every member of cfg reports normal status in epoch.
func normalIn(t *testing.T, c *Client, epoch uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("every member normal in epoch %d", epoch), 20*time.Second, func() bool {
		for _, s := range c.StatusWithoutDigest(time.Second) {
			if s == nil || s.Status != "normal" || s.Epoch != epoch {
				return false
			}
		}
		return true
	})
}

// TestAMemoryNodeThatJoinedRecoversInItsEpoch: a node without a disk that
// joined in epoch 1 and restarts recovers there, as the member epoch 1 names
// (its record says it took part), and not as a joiner again: it may have
// voted, and a joiner never asks for the votes it gave.
func TestAMemoryNodeThatJoinedRecoversInItsEpoch(t *testing.T) {
	dir := t.TempDir()
	cfg, nodes := memoryGroup(t, dir)
	c, err := NewClient(cfg, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	put(t, c, "before", "1")

	next := Config{ClusterID: 1, Replicas: []string{cfg.Replicas[0], cfg.Replicas[1], freeAddrs(t, 1)[0]}}
	joiner := startMemoryNode(t, next, 2, dir, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Reconfigure(ctx, next.Replicas))
	c2, err := NewClient(next, ClientOptions{})
	require.NoError(t, err)
	defer c2.Close()
	normalIn(t, c2, 1)
	_ = nodes[2].Stop() // removed: it has left, or would

	require.NoError(t, joiner.Stop())
	rec, err := readNodeRecord(filepath.Join(dir, next.Replicas[2]))
	require.NoError(t, err)
	require.True(t, rec.TookPart)
	require.Equal(t, uint64(1), rec.Epoch)

	events := make(chan actors.Event, 64)
	node, err := StartNode(NodeConfig{Config: next, Index: 2, DataDir: filepath.Join(dir, next.Replicas[2]), Memory: true,
		NewStateMachine: kv.New, OnEvent: func(e actors.Event) { events <- e }})
	require.NoError(t, err)
	defer node.Stop()
	var first actors.Event
	select {
	case first = <-events:
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the restarted node")
	}
	require.Equal(t, vsr.StatusRecovering, first.Status, "a joined node without a disk recovers: %+v", first)
	require.Equal(t, uint64(1), first.Epoch, "in the epoch it took part in")
	normalIn(t, c2, 1)
	put(t, c2, "after", "2")
}

// TestANodeRefusesStartsThatWouldMisplaceIt: a fresh node given the
// configuration of a later epoch without -join or -recover would found a new
// group beside the running one; a data directory of another member is not
// taken over; -join and -recover together are refused.
func TestANodeRefusesStartsThatWouldMisplaceIt(t *testing.T) {
	dir := t.TempDir()
	addrs := freeAddrs(t, 3)
	later := Config{ClusterID: 1, Replicas: addrs, Epoch: 2}
	_, err := StartNode(NodeConfig{Config: later, Index: 0, DataDir: filepath.Join(dir, "a"), NewStateMachine: kv.New})
	require.ErrorIs(t, err, ErrConfig)
	require.ErrorContains(t, err, "-join")

	_, err = StartNode(NodeConfig{Config: later, Index: 0, DataDir: filepath.Join(dir, "a"), Join: true, Recover: true,
		NewStateMachine: kv.New})
	require.ErrorIs(t, err, ErrConfig)

	first := Config{ClusterID: 1, Replicas: addrs}
	node, err := StartNode(NodeConfig{Config: first, Index: 0, DataDir: filepath.Join(dir, "b"), NewStateMachine: kv.New})
	require.NoError(t, err)
	require.NoError(t, node.Stop())
	_, err = StartNode(NodeConfig{Config: first, Index: 1, DataDir: filepath.Join(dir, "b"), NewStateMachine: kv.New})
	require.ErrorIs(t, err, ErrConfig)
	require.ErrorContains(t, err, "belongs to member "+addrs[0])
}
