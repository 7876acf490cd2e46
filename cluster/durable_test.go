package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests run `vsr node` processes with their default durable storage.

// startGroupProcs starts n node processes on fresh loopback addresses, each
// with its data directory under dir, and a client of the group.
func startGroupProcs(t *testing.T, n int, dir string) (string, []*nodeProc, *Client) {
	t.Helper()
	addrs := freeAddrs(t, n)
	replicas := strings.Join(addrs, ",")
	procs := make([]*nodeProc, n)
	for i := range procs {
		procs[i] = startNodeProc(t, nil, replicas, i, filepath.Join(dir, fmt.Sprint(i)))
	}
	c, err := NewClient(Config{ClusterID: 1, Replicas: addrs}, ClientOptions{Sessions: 6})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	waitFor(t, "a primary", 15*time.Second, func() bool { return primaryOf(c.StatusWithoutDigest(time.Second)) >= 0 })
	return replicas, procs, c
}

// Three node processes serve a concurrent workload; all three are killed
// with SIGKILL at once, a power cut of the whole group, and started again on
// their data directories: they come back from disk and serve again. Twice.
// Every acknowledged write must still be there: the history, across both
// restarts, must be linearizable (a lost write would show as a read that
// no order explains), and the replicas must converge.
func TestProcessesSurviveKill9OfTheWholeGroupTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	replicas, procs, c := startGroupProcs(t, 3, dir)
	w, stop := startWorkload(t, c)
	for round := 1; round <= 2; round++ {
		w.await(t, fmt.Sprintf("writes before group crash %d", round), 200)
		for _, p := range procs {
			p.kill9()
		}
		killed := time.Now()
		for i := range procs {
			procs[i] = startNodeProc(t, nil, replicas, i, filepath.Join(dir, fmt.Sprint(i)))
		}
		w.await(t, fmt.Sprintf("operations after group crash %d", round), 100)
		t.Logf("group crash %d: 100 operations done %s after the kill", round, time.Since(killed).Round(time.Millisecond))
		for i, p := range procs {
			require.Contains(t, p.out.String(), "restarted from disk", "node %d came back from its disk", i)
		}
	}
	stop()
	waitFor(t, "the replicas to converge", 20*time.Second, func() bool { return converged(c) })
	w.check(t)
}

// A node whose log had one record corrupted while it was down finds the
// damage at start, keeps what it can trust, recovers the rest from its
// peers, and converges with them; the history stays linearizable.
func TestProcessWithACorruptedRecordRepairsFromItsPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	replicas, procs, c := startGroupProcs(t, 3, dir)
	w, stop := startWorkload(t, c)
	w.await(t, "writes", 300)
	victim := (primaryOf(c.StatusWithoutDigest(time.Second)) + 1) % 3
	procs[victim].kill9()
	segment := newestSegment(t, filepath.Join(dir, fmt.Sprint(victim)))
	corruptMiddle(t, segment)
	w.await(t, "operations while it is down", 100)

	procs[victim] = startNodeProc(t, nil, replicas, victim, filepath.Join(dir, fmt.Sprint(victim)))
	waitFor(t, "the damaged node to recover", 20*time.Second, func() bool {
		s := c.StatusWithoutDigest(time.Second)[victim]
		return s != nil && s.Status == "normal"
	})
	require.Contains(t, procs[victim].out.String(), "cannot trust all of it", "the node found the damage")
	w.await(t, "operations after it recovered", 100)
	stop()
	waitFor(t, "the replicas to converge", 20*time.Second, func() bool { return converged(c) })
	w.check(t)
	damaged, err := filepath.Glob(filepath.Join(dir, fmt.Sprint(victim), "*.damaged"))
	require.NoError(t, err)
	require.NotEmpty(t, damaged, "the damaged segment is kept aside for the operator")
}

// newestSegment returns the path of the newest WAL segment in dir.
func newestSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	slices.Sort(segs)
	return segs[len(segs)-1]
}

// corruptMiddle flips one byte in the middle of the file, as bit rot would.
func corruptMiddle(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(b), 1024, "a segment with records in it")
	b[len(b)/2] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// A data directory of another replica, or of another cluster, is refused
// at start with an error that says whose it is, and is left untouched.
func TestStartNodeRefusesADataDirectoryOfAnotherReplica(t *testing.T) {
	cfg, nodes := startNodes(t, 3, nil, nil)
	require.NoError(t, nodes[0].Stop())
	dir := nodes[0].cfg.DataDir
	before := snapshotDir(t, dir)
	for _, bad := range []NodeConfig{
		{Config: cfg, Index: 1, DataDir: dir},
		{Config: Config{ClusterID: 2, Replicas: cfg.Replicas}, Index: 0, DataDir: dir},
	} {
		bad.NewStateMachine = nodes[0].cfg.NewStateMachine
		_, err := StartNode(bad)
		require.Error(t, err)
		require.Contains(t, err.Error(), "belongs to", "the error says whose directory it is")
		require.Equal(t, before, snapshotDir(t, dir), "the directory is left untouched")
	}
}

// snapshotDir maps every file name in dir to its content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = string(b)
	}
	return files
}
