package main

import (
	"bytes"
	"encoding/json"
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
	header, rows, _ := parseStatusTable(t, out)
	require.NotContains(t, header, "STATE", out)
	require.Len(t, rows, 3, out)
	require.Equal(t, 1, strings.Count(strings.Join(column(rows, "ROLE"), " "), primaryMark), out)

	out = status("-digest")
	require.Equal(t, int64(3), snaps.Load(), "status -digest takes one snapshot per replica:\n%s", out)
	_, rows, _ = parseStatusTable(t, out)
	for _, state := range column(rows, "STATE") {
		require.Regexp(t, "^[0-9a-f]{12}$", state, out)
	}

	// The JSON form asks the same replicas, without a digest unless -digest.
	out = status("-json")
	require.Equal(t, int64(3), snaps.Load(), "status -json took a snapshot:\n%s", out)
	var doc struct {
		Replicas []struct {
			Reachable bool
			Digest    *string
		}
		Primary *int
		Members []string
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	require.Len(t, doc.Replicas, 3, out)
	for _, r := range doc.Replicas {
		require.True(t, r.Reachable, out)
		require.Nil(t, r.Digest, out)
	}
	require.NotNil(t, doc.Primary, out)
	require.Equal(t, addrs, doc.Members, out)
}
