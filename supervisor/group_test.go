package supervisor_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// These tests run real replica groups on a real actor system. They never
// assert on how long something took: they poll for the state they expect
// with generous deadlines, because the machine they run on is small and
// shared. Failure detection runs on the default timing (a backup suspects a
// silent primary after 300-450 ms).

const (
	// waitFor bounds every poll for a condition that must become true.
	waitFor = 10 * time.Second
	// pollEvery is how often a condition is polled.
	pollEvery = 20 * time.Millisecond
	// opTimeout bounds one client call that is expected to succeed.
	opTimeout = 10 * time.Second
	// testClusterID is the cluster ID of every group started here.
	testClusterID = 0x7e57
)

// startGroup starts an n-replica kv group that is stopped when the test ends.
func startGroup(t testing.TB, n int, configure ...func(*supervisor.GroupConfig)) *supervisor.Group {
	t.Helper()
	cfg := supervisor.GroupConfig{ClusterID: testClusterID, Replicas: n, NewStateMachine: kv.New}
	for _, f := range configure {
		f(&cfg)
	}
	g, err := supervisor.StartGroup(cfg)
	require.NoError(t, err)
	t.Cleanup(g.Stop)
	return g
}

// newClient makes a client of g that is closed when the test ends.
func newClient(t testing.TB, g *supervisor.Group, sessions int) *actors.Client {
	t.Helper()
	c, err := g.NewClient(sessions)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// decode decodes a kv result and requires that the store accepted the op.
func decode(t testing.TB, b []byte) *kv.Result {
	t.Helper()
	r, err := kv.DecodeResult(b)
	require.NoError(t, err)
	require.Empty(t, r.GetError(), "the store rejected the operation")
	return r
}

// execute runs op through the log and returns its decoded result.
func execute(t testing.TB, c *actors.Client, op []byte) *kv.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := c.Execute(ctx, op)
	require.NoError(t, err)
	return decode(t, b)
}

// put sets key to value through the log.
func put(t testing.TB, c *actors.Client, key, value string) *kv.Result {
	t.Helper()
	return execute(t, c, kv.PutOp(key, []byte(value)))
}

// read reads key with a linearizable read.
func read(t testing.TB, c *actors.Client, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := c.Read(ctx, kv.GetOp(key))
	require.NoError(t, err)
	r := decode(t, b)
	return string(r.GetValue()), r.GetFound()
}

// readStale reads key from whichever replica answers first.
func readStale(t testing.TB, c *actors.Client, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := c.ReadStale(ctx, kv.GetOp(key))
	require.NoError(t, err)
	r := decode(t, b)
	return string(r.GetValue()), r.GetFound()
}

// status polls every replica.
func status(g *supervisor.Group) []supervisor.ReplicaStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return g.Status(ctx)
}

// currentPrimary returns the replica that is normal and primary in the
// highest view, and that view; ok is false if there is none.
func currentPrimary(g *supervisor.Group) (index int, view uint64, ok bool) {
	index = -1
	for _, s := range status(g) {
		if !s.Down && s.Status == vsr.StatusNormal && s.Primary == s.Replica && (index < 0 || s.View > view) {
			index, view = s.Replica, s.View
		}
	}
	return index, view, index >= 0
}

// waitPrimary waits for a primary in a view above minView (use -1 for any)
// that is not in excluded, and returns it and its view.
func waitPrimary(t testing.TB, g *supervisor.Group, minView int64, excluded ...int) (int, uint64) {
	t.Helper()
	var index int
	var view uint64
	require.Eventually(t, func() bool {
		i, v, ok := currentPrimary(g)
		if !ok || int64(v) <= minView || slices.Contains(excluded, i) {
			return false
		}
		index, view = i, v
		return true
	}, waitFor, pollEvery, "no new primary above view %d outside %v", minView, excluded)
	return index, view
}

// waitConverged waits until every replica in up is normal in the same view
// with the same commit number, op number and state digest, and the commit
// number is at least minCommit. It returns the statuses it last saw.
func waitConverged(t testing.TB, g *supervisor.Group, up []int, minCommit uint64) []supervisor.ReplicaStatus {
	t.Helper()
	var last []supervisor.ReplicaStatus
	ok := assert.Eventually(t, func() bool {
		last = status(g)
		return converged(last, up, minCommit)
	}, waitFor, pollEvery)
	if !ok {
		t.Fatalf("replicas %v did not converge at commit >= %d; last status:\n%s", up, minCommit, describe(last))
	}
	return last
}

func converged(sts []supervisor.ReplicaStatus, up []int, minCommit uint64) bool {
	first := sts[up[0]]
	if first.CommitNumber < minCommit {
		return false
	}
	for _, i := range up {
		s := sts[i]
		if s.Down || s.Status != vsr.StatusNormal || s.View != first.View ||
			s.CommitNumber != first.CommitNumber || s.OpNumber != s.CommitNumber || s.Digest != first.Digest {
			return false
		}
	}
	return true
}

func describe(sts []supervisor.ReplicaStatus) string {
	var b strings.Builder
	for _, s := range sts {
		fmt.Fprintf(&b, "  replica %d: down=%v status=%v view=%d op=%d commit=%d digest=%x\n",
			s.Replica, s.Down, s.Status, s.View, s.OpNumber, s.CommitNumber, s.Digest[:6])
	}
	return b.String()
}

func allReplicas(n int) []int {
	up := make([]int, n)
	for i := range up {
		up[i] = i
	}
	return up
}

func without(all []int, gone ...int) []int {
	return slices.DeleteFunc(slices.Clone(all), func(i int) bool { return slices.Contains(gone, i) })
}

// requireValues reads every key with a linearizable read and requires its
// last acknowledged value.
func requireValues(t testing.TB, c *actors.Client, want map[string]string) {
	t.Helper()
	for key, value := range want {
		got, found := read(t, c, key)
		require.True(t, found, "acknowledged key %q is gone", key)
		require.Equal(t, value, got, "key %q lost its last acknowledged value", key)
	}
}

// 1. Writes and reads through the client; replicas converge.

func TestWritesAndReadsConverge(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			g := startGroup(t, n)
			c := newClient(t, g, 1)

			want := map[string]string{}
			for i := range 20 {
				key := fmt.Sprintf("key-%d", i)
				r := put(t, c, key, key+"-v1")
				require.False(t, r.GetFound(), "a new key cannot have been present")
				want[key] = key + "-v1"
			}
			for i := range 10 {
				key := fmt.Sprintf("key-%d", i)
				r := put(t, c, key, key+"-v2")
				require.True(t, r.GetFound(), "an overwritten key must have been present")
				want[key] = key + "-v2"
			}
			writes := uint64(31) // and the client's registration

			// Linearizable reads see every acknowledged write at once.
			requireValues(t, c, want)
			_, found := read(t, c, "never-written")
			require.False(t, found)

			// A read through the log also sees them (and is itself an op).
			r := execute(t, c, kv.GetOp("key-3"))
			require.True(t, r.GetFound())
			require.Equal(t, "key-3-v2", string(r.GetValue()))
			writes++

			sts := waitConverged(t, g, allReplicas(n), writes)
			require.Equal(t, writes, sts[0].CommitNumber, "reads must not go through the log, writes must")

			// Once every replica has executed everything, a stale read from
			// any of them returns the latest value.
			for key, value := range want {
				got, found := readStale(t, c, key)
				require.True(t, found, key)
				require.Equal(t, value, got, key)
			}
			_, found = readStale(t, c, "never-written")
			require.False(t, found)
		})
	}
}

// 2. Killing the primary: a new primary in a higher view, no acknowledged
// write lost, writes keep being served.

func TestKillPrimaryKeepsAcknowledgedWrites(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			g := startGroup(t, n)
			c := newClient(t, g, 1)
			f := (n - 1) / 2

			want := map[string]string{}
			writes := uint64(0)
			write := func(key, value string) {
				put(t, c, key, value)
				want[key] = value
				writes++
			}
			for i := range 10 {
				write(fmt.Sprintf("k%d", i), fmt.Sprintf("before-%d", i))
			}

			// Kill the primary f times in a row: the group tolerates f
			// failures, so it must keep serving after each.
			var killed []int
			for round := range f {
				p, view := waitPrimary(t, g, -1, killed...)
				require.NoError(t, g.Kill(p))
				killed = append(killed, p)

				np, nview := waitPrimary(t, g, int64(view), killed...)
				require.NotEqual(t, p, np)
				require.Greater(t, nview, view)

				requireValues(t, c, want)
				for i := range 5 {
					write(fmt.Sprintf("k%d", i), fmt.Sprintf("after-kill-%d-%d", round, i))
					write(fmt.Sprintf("new-%d-%d", round, i), "x")
				}
				requireValues(t, c, want)
				waitConverged(t, g, without(allReplicas(n), killed...), writes)
			}

			// The killed replicas come back through recovery and catch up.
			for _, p := range killed {
				require.NoError(t, g.Restart(p))
			}
			write("after-restart", "y")
			waitConverged(t, g, allReplicas(n), writes)
			requireValues(t, c, want)
		})
	}
}
