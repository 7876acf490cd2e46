package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// Named scenario regressions: scripted schedules on the simulated cluster,
// with a reliable network and the faults placed by hand.

// scripted is a cluster for a script: no random faults, clients that act
// only when told.
func scripted(t *testing.T, n int) *Cluster {
	t.Helper()
	c, err := newCluster(1, n, 2, 1, 400, Faults{MaxDelay: 1, PartitionTicks: 1, RestartTicks: 1}, 0)
	require.NoError(t, err)
	c.faulty = false
	for _, cl := range c.clients {
		cl.budget = false
	}
	return c
}

// run ticks the cluster, failing the test on any violation.
func (c *Cluster) run(t *testing.T, ticks int) {
	t.Helper()
	for k := 0; k < ticks; k++ {
		c.tick()
		require.NoError(t, c.violation, "trace:\n%s", c.traceTail(40))
	}
}

func (c *Cluster) traceTail(n int) string {
	lines := c.trace.lines()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

// do runs one operation of client k to completion and returns its outcome.
func (c *Cluster) do(t *testing.T, k int, in Input, mode messages.ReadMode) Output {
	t.Helper()
	cl := c.clients[k]
	cl.invoke(in, mode)
	for limit := 0; cl.op >= 0; limit++ {
		require.Less(t, limit, 3000, "operation %+v never finished; trace:\n%s", in, c.traceTail(40))
		c.run(t, 1)
	}
	return *cl.output
}

func (c *Cluster) put(t *testing.T, value string) {
	t.Helper()
	c.do(t, 0, Input{Kind: OpPut, Key: "x", Value: value}, messages.ReadMode_READ_MODE_LOG)
}

func (c *Cluster) get(t *testing.T) string {
	t.Helper()
	out := c.do(t, 1, Input{Kind: OpGet, Key: "x"}, messages.ReadMode_READ_MODE_LINEARIZABLE)
	return out.Value
}

// settle lets the group converge and checks the history.
func (c *Cluster) settle(t *testing.T) {
	t.Helper()
	c.Heal()
	for i := range c.paused {
		c.paused[i] = false
	}
	for k := 0; k < 500 && c.checkConverged() != nil; k++ {
		c.run(t, 1)
	}
	require.NoError(t, c.checkConverged())
	ok, _, _ := c.history.Check(10 * time.Second)
	require.True(t, ok, "history is not linearizable")
}

const longEnough = vsr.DefaultInactivityTicks + 2*vsr.DefaultViewChangeTicks + 2*vsr.DefaultJitterTicks

// In the spirit of Vanlightly's state-transfer trace (3 replicas, 3 values,
// 3 view changes): replica 2 sleeps through the change to view 1, wakes to
// hear view 1's primary with a stale commit number, and cannot reach that
// primary for the log when view 2 (its own) starts. It must bring its old
// log and last normal view honestly to view 2, so that view 2 keeps the
// value committed in view 1; the paper's rule (truncate to the commit
// number, take the new view) would leave it holding a log it does not have.
func TestScenarioStateTransferAcrossThreeViewChanges(t *testing.T) {
	c := scripted(t, 3)
	c.put(t, "v1")
	c.run(t, 10)

	c.Pause(2)
	c.Partition([]int{0}, []int{1}, []int{2})
	c.run(t, vsr.DefaultInactivityTicks+vsr.DefaultJitterTicks+5) // 1 starts view 1; 0 is still primary of view 0
	c.Partition([]int{0, 1}, []int{2})
	c.run(t, longEnough)
	require.True(t, c.Replica(1).IsPrimary(), "view change 1: replica 1 is primary")
	c.put(t, "v2")

	// Replica 2 wakes up hearing replica 1 but unable to answer it.
	c.Resume(2)
	c.Heal()
	c.net.cut(2, 1)
	c.net.cut(0, 2)
	c.net.cut(2, 0)
	for k := 0; k < 20 && c.Replica(2).View() < 1; k++ {
		c.run(t, 1)
	}
	require.Equal(t, uint64(1), c.Replica(2).View())
	require.Equal(t, vsr.StatusViewChange, c.Replica(2).Status(), "it holds no log of view 1 yet")
	require.Equal(t, uint64(0), c.Replica(2).LastNormalView())

	// View change 2: replica 1 stops; 0 and 2 form view 2.
	c.Pause(1)
	c.Heal()
	c.run(t, 3*longEnough)
	require.True(t, c.Replica(2).IsPrimary(), "view change 2: replica 2 is primary")
	require.Equal(t, "v2", c.get(t), "the value committed in view 1 survived")
	c.put(t, "v3")

	// View change 3: replica 2 stops; 0 and 1 form view 3.
	c.Resume(1)
	c.Pause(2)
	c.run(t, 3*longEnough)
	p := c.Primary()
	require.Equal(t, 0, p, "view change 3: replica 0 is primary")
	require.GreaterOrEqual(t, c.Replica(0).View(), uint64(3))
	require.Equal(t, "v3", c.get(t))
	c.settle(t)
}

// Our reading of the paper's section 8.2 case for two exchanges in the view
// change: a replica sends its DoViewChange only once f others have left the
// old view, so an op the old primary commits while the view change is
// already starting is in the log of some DoViewChange the new primary
// counts. Here replicas 3 and 4 of 5 lose the primary and start view 1
// while 0 still commits "v2" with the help of 1 and 2; view 1 must keep it.
// (3 and 4 probe first; 1 and 2 answer that they have lost the primary too,
// as they would after a moment's silence, and then hear it again.)
func TestScenarioOpCommittedDuringViewChangeSurvives(t *testing.T) {
	c := scripted(t, 5)
	c.put(t, "v1")
	c.net.cut(0, 3)
	c.net.cut(0, 4)
	c.run(t, vsr.DefaultInactivityTicks+vsr.DefaultJitterTicks+2)
	for _, to := range []int{3, 4} {
		for _, from := range []uint32{1, 2} {
			c.net.send(node(from), node(to), &messages.ViewChangeProbeOK{ClusterId: clusterID, View: 1, Replica: from}, false)
		}
	}
	c.run(t, 2)
	require.Equal(t, uint64(1), c.Replica(3).View(), "3 and 4 started the view change")
	c.Partition([]int{0, 1, 2}, []int{3, 4})
	c.put(t, "v2") // committed by 0, 1 and 2 in view 0
	c.Pause(0)
	c.Heal()
	c.run(t, 3*longEnough)
	p := c.Primary()
	require.NotEqual(t, 0, p)
	require.Equal(t, "v2", c.get(t))
	c.settle(t)
}

// The next primary crashes and is recovering when the view change to its
// view begins (the old primary is cut off). It must not take part before it
// has recovered; the group skips its view and carries on, and it recovers
// from the primary of the view the others reached.
func TestScenarioRecoveringReplicaIsTheNextPrimary(t *testing.T) {
	c := scripted(t, 5)
	c.put(t, "v1")
	c.Crash(1)
	require.NoError(t, c.Restart(1))
	c.Partition([]int{0}, []int{1, 2, 3, 4})
	c.run(t, 4*longEnough)
	p := c.Primary()
	require.Equal(t, 2, p, "view 1's primary is recovering: the group goes on to view 2")
	require.Equal(t, vsr.StatusNormal, c.Replica(1).Status(), "it recovered from view 2's primary")
	require.GreaterOrEqual(t, c.Replica(1).View(), uint64(2))
	require.Equal(t, "v1", c.get(t))
	c.put(t, "v2")
	c.settle(t)
}
