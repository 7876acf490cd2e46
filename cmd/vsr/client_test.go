package main

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/cluster"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// countingStore counts its snapshots: a status digest is one.
type countingStore struct {
	statemachine.StateMachine
	n *atomic.Int64
}

func (s countingStore) Snapshot() ([]byte, error) {
	s.n.Add(1)
	return s.StateMachine.Snapshot()
}

// `vsr client status` asks the replicas without the digest, which would
// cost each a snapshot of its whole state machine; `-digest` asks for it.
func TestClientStatusCommandTakesNoSnapshotUnlessAsked(t *testing.T) {
	var snaps atomic.Int64
	var addrs []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addrs = append(addrs, l.Addr().String())
		require.NoError(t, l.Close())
	}
	cfg := cluster.Config{ClusterID: 1, Replicas: addrs}
	dir := t.TempDir()
	for i := range addrs {
		n, err := cluster.StartNode(cluster.NodeConfig{Config: cfg, Index: i, DataDir: filepath.Join(dir, fmt.Sprint(i)),
			NewStateMachine: func() statemachine.StateMachine { return countingStore{StateMachine: kv.New(), n: &snaps} }})
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Stop() })
	}
	status := func(extra ...string) string {
		var stdout, stderr bytes.Buffer
		args := append([]string{"client", "-replicas", strings.Join(addrs, ",")}, extra...)
		code := run(append(args, "status"), &stdout, &stderr)
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		return stdout.String()
	}
	out := status()
	require.Zero(t, snaps.Load(), "status without -digest took a snapshot:\n%s", out)
	require.NotContains(t, out, "state ")
	require.Contains(t, out, "primary")

	out = status("-digest")
	require.Equal(t, int64(3), snaps.Load(), "status -digest takes one snapshot per replica:\n%s", out)
	require.Equal(t, 3, strings.Count(out, "state "), out)
}
