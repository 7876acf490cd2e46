package actors_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// Reconfiguration through the replica actor: routing by member name
// (ReplicaConfig.Resolve), the client following the group to a new
// configuration, a removed replica that stops once it has left, and an
// instance of a joined replica that comes back in the epoch it joined.

// named is a group whose replicas are reached by member name.
type named struct {
	t      *testing.T
	system *actor.ActorSystem
	events *events
}

func newNamed(t *testing.T) *named {
	return &named{t: t, system: newSystem(t), events: &events{}}
}

func (g *named) resolve(name string) *actor.PID { return g.system.NewLocalPID("member-" + name) }

// spawn starts member name of configuration members, joining it if join.
func (g *named) spawn(name string, members []string, join bool) {
	g.t.Helper()
	index := -1
	for j, m := range members {
		if m == name {
			index = j
		}
	}
	require.GreaterOrEqual(g.t, index, 0)
	props := actors.NewReplicaProps(actors.ReplicaConfig{
		Core: vsr.Config{ClusterID: clusterID, ReplicaCount: len(members), ReplicaIndex: index, Members: members,
			Reconfigurable: true, Joining: join},
		NewStateMachine: kv.New,
		Resolve:         g.resolve,
		OnEvent:         g.events.add,
	})
	_, err := g.system.Root.SpawnNamed(props, "member-"+name)
	require.NoError(g.t, err)
	g.t.Cleanup(func() { _ = g.system.Root.StopFuture(g.resolve(name)).Wait() })
}

func (g *named) client(members []string) *actors.Client {
	g.t.Helper()
	c, err := actors.NewClient(g.system, actors.ClientConfig{ClusterID: clusterID, Members: members, Resolve: g.resolve})
	require.NoError(g.t, err)
	g.t.Cleanup(c.Close)
	return c
}

func (g *named) status(name string) (actors.ReplicaStatus, bool) {
	res, err := g.system.Root.RequestFuture(g.resolve(name), &actors.StatusQuery{}, 2*time.Second).Result()
	s, ok := res.(actors.ReplicaStatus)
	return s, ok && err == nil
}

func reconfigure(t *testing.T, c *actors.Client, members []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	require.NoError(t, c.Reconfigure(ctx, members))
}

func get(t *testing.T, c *actors.Client, key string) string {
	t.Helper()
	return string(execute(t, c, kv.GetOp(key)).GetValue())
}

// TestReplacingAMemberThroughTheActors replaces one member of three with a
// new one: the client, which knows only the old members, keeps working and
// learns the new configuration; the joiner serves the state written before
// it joined; the removed member stops for good with a Left event.
func TestReplacingAMemberThroughTheActors(t *testing.T) {
	g := newNamed(t)
	old, next := []string{"a", "b", "c"}, []string{"a", "b", "d"}
	for _, name := range old {
		g.spawn(name, old, false)
	}
	c := g.client(old)
	for i := range 20 {
		execute(t, c, kv.PutOp(fmt.Sprint("k", i), []byte(fmt.Sprint("v", i))))
	}
	g.spawn("d", next, true)
	reconfigure(t, c, next)

	left := g.events.await(t, "c leaves", func(e actors.Event) bool { return e.Left })
	require.Equal(t, uint64(0), left.Epoch, "c leaves from the epoch that removed it")
	require.Eventually(t, func() bool { _, ok := g.status("c"); return !ok }, waitFor, pollEvery,
		"the removed member's actor stops")

	execute(t, c, kv.PutOp("after", []byte("change")))
	require.Equal(t, "v7", get(t, c, "k7"))
	require.Eventually(t, func() bool {
		s, ok := g.status("d")
		return ok && s.Status == vsr.StatusNormal && s.CommitNumber >= 22
	}, waitFor, pollEvery, "the joiner holds the state and takes part")

	// A client that starts from the new configuration reaches the group.
	c2 := g.client(next)
	require.Equal(t, "change", get(t, c2, "after"))
}

// TestAJoinedReplicaThatCrashesRecoversInItsNewEpoch: an instance that
// replaces a crashed replica which had joined in epoch 1 recovers there, as
// the member its new configuration names, not as the joiner its Config
// describes (it may have voted) nor in epoch 0.
func TestAJoinedReplicaThatCrashesRecoversInItsNewEpoch(t *testing.T) {
	g := newNamed(t)
	old, next := []string{"a", "b", "c"}, []string{"a", "b", "d"}
	for _, name := range old {
		g.spawn(name, old, false)
	}
	c := g.client(old)
	execute(t, c, kv.PutOp("k", []byte("v")))
	g.spawn("d", next, true)
	reconfigure(t, c, next)
	require.Eventually(t, func() bool {
		s, ok := g.status("d")
		return ok && s.Status == vsr.StatusNormal
	}, waitFor, pollEvery)

	g.system.Root.Send(g.resolve("d"), &actors.Crash{})
	g.events.await(t, "d restarts", func(e actors.Event) bool { return e.Restarted && e.Epoch == 1 })
	require.Eventually(t, func() bool {
		s, ok := g.status("d")
		return ok && s.Status == vsr.StatusNormal
	}, waitFor, pollEvery, "d recovers in epoch 1")
	execute(t, c, kv.PutOp("k2", []byte("v2")))
	require.Equal(t, "v", get(t, c, "k"))
}

// TestARefusedReconfigurationSaysWhy: a configuration the group refuses
// comes back as ErrRejected with the group's reason, and changes nothing.
func TestARefusedReconfigurationSaysWhy(t *testing.T) {
	g := newNamed(t)
	old := []string{"a", "b", "c"}
	for _, name := range old {
		g.spawn(name, old, false)
	}
	c := g.client(old)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err := c.Reconfigure(ctx, []string{"a", "x", "y"})
	require.ErrorIs(t, err, actors.ErrRejected)
	require.ErrorContains(t, err, "minority")
	err = c.Reconfigure(ctx, []string{"a", "b"})
	require.ErrorIs(t, err, actors.ErrRejected)
	s, ok := g.status("a")
	require.True(t, ok)
	require.Equal(t, uint64(0), s.Epoch)
}
