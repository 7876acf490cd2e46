package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// startNodes starts a group of n nodes in this process (one actor system
// and one remote each, on loopback).
func startNodes(t *testing.T, n int, tls *TLSFiles, certFor func(i int) *TLSFiles) (Config, []*Node) {
	t.Helper()
	cfg := Config{ClusterID: 1, Replicas: freeAddrs(t, n), TLS: tls}
	dir := t.TempDir()
	var nodes []*Node
	for i := 0; i < n; i++ {
		c := cfg
		if certFor != nil {
			c.TLS = certFor(i)
		}
		node, err := StartNode(NodeConfig{Config: c, Index: i, DataDir: filepath.Join(dir, fmt.Sprint(i)), NewStateMachine: kv.New})
		require.NoError(t, err)
		t.Cleanup(func() { _ = node.Stop() })
		nodes = append(nodes, node)
	}
	return cfg, nodes
}

// intrude sends messages to replica 0 from an actor system with remoting
// that is not a member of the group: each message once from the intruder's
// own address, and, when forge is set, once more with a forged sender that
// names replica 1.
func intrude(t *testing.T, cfg Config, tls *TLSFiles, forge bool, msgs ...*messages.StartViewChange) {
	t.Helper()
	system, _ := actors.NewActorSystem(nil)
	r, err := startRemote(system, "127.0.0.1:0", "", tls, 0)
	require.NoError(t, err)
	t.Cleanup(func() { r.Shutdown(false); system.Shutdown() }) // alive until the test has looked
	target := cfg.PeerPIDs()[0]
	for _, m := range msgs {
		system.Root.Request(target, m)
		if forge {
			system.Root.RequestWithCustomSender(target, m, cfg.PeerPIDs()[1])
		}
	}
}

// stays checks that cond holds throughout the given time: the way to see
// that something does not arrive.
func stays(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		require.True(t, cond(), what)
	}
}

func statusOf(t *testing.T, c *Client, i int) *actors.StatusReply {
	t.Helper()
	var s *actors.StatusReply
	waitFor(t, fmt.Sprintf("replica %d's status", i), 10*time.Second, func() bool {
		s = c.StatusWithoutDigest(time.Second)[i]
		return s != nil
	})
	return s
}

// Three nodes in one process serve writes and reads over remoting.
func TestNodesServeOverRemoting(t *testing.T) {
	cfg, _ := startNodes(t, 3, nil, nil)
	c, err := NewClient(cfg, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Execute(ctx, kv.PutOp("a", []byte("1")))
	require.NoError(t, err)
	res, err := c.Read(ctx, kv.GetOp("a"))
	require.NoError(t, err)
	r, err := kv.DecodeResult(res)
	require.NoError(t, err)
	require.Equal(t, "1", string(r.Value))
}

// A message that claims to come from replica 1 but comes from an address
// outside the configuration is dropped and counted; one that names another
// cluster is dropped and counted by the core, even with a sender that looks
// right. Neither moves the replica.
//
// The sender check is a guard against misconfiguration, not authentication:
// remoting carries the sender as plain data, so a process that can connect
// can forge it. Keeping such processes out is mutual TLS's job (below).
func TestMessagesFromOutsideTheConfigurationAreDroppedAndCounted(t *testing.T) {
	cfg, _ := startNodes(t, 3, nil, nil)
	c, err := NewClient(cfg, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	waitFor(t, "a primary", 10*time.Second, func() bool { return primaryOf(c.StatusWithoutDigest(time.Second)) == 0 })

	intrude(t, cfg, nil, false, &messages.StartViewChange{ClusterId: 1, View: 5, Replica: 1})
	intrude(t, cfg, nil, true, &messages.StartViewChange{ClusterId: 2, View: 6, Replica: 1})
	waitFor(t, "the intruders' messages to be counted", 10*time.Second, func() bool {
		s := statusOf(t, c, 0)
		return s.Foreign == 2 && s.WrongCluster == 1 // 2: from the intruder's own address; 1: forged, other cluster
	})
	require.Equal(t, uint64(0), statusOf(t, c, 0).View, "no intruder's message moved replica 0")
}

// With mutual TLS, a member with a certificate from the group's CA works,
// and a process without one, or with one from another CA, cannot deliver a
// message at all, even with a forged sender.
func TestMutualTLSKeepsOutNodesWithoutTheRightCertificate(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"127.0.0.1"}
	_, err := WriteCerts(dir, hosts, "node0", "node1", "node2", "client")
	require.NoError(t, err)
	files := func(name string) *TLSFiles {
		return &TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	}
	cfg, _ := startNodes(t, 3, files("node0"), func(i int) *TLSFiles { return files(fmt.Sprintf("node%d", i)) })
	clientCfg := cfg
	clientCfg.TLS = files("client")
	c, err := NewClient(clientCfg, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Execute(ctx, kv.PutOp("a", []byte("1")))
	require.NoError(t, err, "a member with the group's certificates is served")

	other := filepath.Join(t.TempDir(), "other")
	_, err = WriteCerts(other, hosts, "intruder")
	require.NoError(t, err)
	forged := &messages.StartViewChange{ClusterId: 1, View: 5, Replica: 1}
	intrude(t, cfg, nil, true, forged) // no TLS at all
	intrude(t, cfg, &TLSFiles{CA: filepath.Join(other, "ca.pem"), Cert: filepath.Join(other, "intruder.pem"),
		Key: filepath.Join(other, "intruder-key.pem")}, true, forged) // a certificate from another CA
	stays(t, "nothing from the intruders reaches the replica", 2*time.Second, func() bool {
		s := statusOf(t, c, 0)
		return s.View == 0 && s.Foreign+s.Dropped == 0
	})

	// A process holding a member's certificate does get through: the
	// certificate is the authentication. (Its message, sent from its own
	// address, is then counted as foreign.)
	intrude(t, cfg, files("client"), false, forged)
	waitFor(t, "the member-certified message to arrive", 10*time.Second, func() bool { return statusOf(t, c, 0).Foreign == 1 })
}

// In -memory mode, a node whose data directory says it joined before runs
// recovery on start; a new one starts the group. A directory of another
// cluster is refused.
func TestNodeMarkerDecidesBetweenNewGroupAndRecovery(t *testing.T) {
	dir := t.TempDir()
	joined, err := joinedBefore(dir, 1)
	require.NoError(t, err)
	require.False(t, joined)
	require.NoError(t, markJoined(dir, 1))
	joined, err = joinedBefore(dir, 1)
	require.NoError(t, err)
	require.True(t, joined)
	_, err = joinedBefore(dir, 2)
	require.ErrorIs(t, err, ErrConfig)
	require.NoError(t, os.Remove(filepath.Join(dir, markerFile)))
}

// Stop may be called more than once, one call after another or at the same
// time: the first does the work, none panics or hangs, and every call
// returns the first one's result. (t.Cleanup of startNodes calls it again.)
func TestNodeStopTwiceIsSafe(t *testing.T) {
	_, nodes := startNodes(t, 3, nil, nil)
	stopped := make(chan error, 4)
	go func() {
		stopped <- nodes[0].Stop()
		stopped <- nodes[0].Stop()
	}()
	go func() { stopped <- nodes[1].Stop() }()
	go func() { stopped <- nodes[1].Stop() }()
	for range 4 {
		select {
		case err := <-stopped:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("Stop did not return")
		}
	}
	require.NoError(t, nodes[1].Stop(), "a later call returns the first call's result")
}

func TestClientCloseTwiceIsSafe(t *testing.T) {
	c, err := NewClient(Config{ClusterID: 1, Replicas: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}}, ClientOptions{})
	require.NoError(t, err)
	c.Close()
	require.NotPanics(t, c.Close, "a second Close must do nothing")
}
