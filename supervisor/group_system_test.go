package supervisor_test

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// Groups inside an actor system the test made and owns
// (GroupConfig.System): the group lives beside the test's own actors, a
// group's Stop leaves the system running, groups with different names run
// side by side, and a name already taken fails without harm.

// newOwnSystem makes an actor system for the test, shut down when the test
// ends (after the groups in it have stopped: cleanups run last first).
func newOwnSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	system, _ := actors.NewActorSystem(nil)
	t.Cleanup(func() {
		if !system.IsStopped() { // Shutdown twice panics
			system.Shutdown()
		}
	})
	return system
}

// startIn starts a 3-replica kv group named name in system; it is stopped
// when the test ends.
func startIn(t *testing.T, system *actor.ActorSystem, name string) *supervisor.Group {
	t.Helper()
	return startGroup(t, 3, func(c *supervisor.GroupConfig) { c.System, c.Name = system, name })
}

// echo spawns an actor of the test's own in system, which answers every
// string with itself; answers reports whether it does, within a bound.
func echo(system *actor.ActorSystem) *actor.PID {
	return system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if s, ok := ctx.Message().(string); ok {
			ctx.Respond(s)
		}
	}))
}

func answers(system *actor.ActorSystem, pid *actor.PID) bool {
	res, err := system.Root.RequestFuture(pid, "ping", 5*time.Second).Result()
	return err == nil && res == "ping"
}

// requireServes writes key=value through a new client of g and reads it
// back with a linearizable read.
func requireServes(t *testing.T, g *supervisor.Group, key, value string) {
	t.Helper()
	c := newClient(t, g, 1)
	put(t, c, key, value)
	got, found := read(t, c, key)
	require.True(t, found, "%s was written", key)
	require.Equal(t, value, got)
}

// TestGroupStartsInsideAnActorSystemTheTestCreated: with GroupConfig.System
// the group's replicas are actors of the test's system, the group serves,
// and Stop stops the replicas and the group (its methods return ErrStopped)
// but neither the system nor the test's own actor in it; the group's name
// is free again afterwards.
func TestGroupStartsInsideAnActorSystemTheTestCreated(t *testing.T) {
	system := newOwnSystem(t)
	mine := echo(system)
	g := startIn(t, system, "orders")
	require.Same(t, system, g.System(), "the group runs in the test's system")

	requireServes(t, g, "greeting", "hello")
	peers := g.Peers()
	require.Len(t, peers, 3)
	for i, pid := range peers {
		require.Equal(t, system.Address(), pid.Address, "replica %d", i)
		require.Equal(t, supervisor.ReplicaID("orders-supervisor", i), pid.Id)
		_, found := system.ProcessRegistry.Get(pid)
		require.True(t, found, "replica %d is an actor of the test's system", i)
	}

	g.Stop()
	require.False(t, system.IsStopped(), "Stop shut down a system the group does not own")
	require.True(t, answers(system, mine), "the test's actor from before the group still answers")
	require.True(t, answers(system, echo(system)), "the system still spawns actors that answer")
	for i, pid := range peers {
		_, found := system.ProcessRegistry.Get(pid)
		require.False(t, found, "replica %d outlived Stop", i)
	}

	_, err := g.NewClient(1)
	require.ErrorIs(t, err, supervisor.ErrStopped, "NewClient")
	require.ErrorIs(t, g.Kill(0), supervisor.ErrStopped, "Kill")
	require.ErrorIs(t, g.Restart(0), supervisor.ErrStopped, "Restart")
	require.ErrorIs(t, g.Crash(0), supervisor.ErrStopped, "Crash")
	require.ErrorIs(t, g.SetDeaf(0, true), supervisor.ErrStopped, "SetDeaf")
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	require.ErrorIs(t, g.Reconfigure(ctx, []int{0, 1, 3}), supervisor.ErrStopped, "Reconfigure")
	_, err = g.Replace(ctx, 0)
	require.ErrorIs(t, err, supervisor.ErrStopped, "Replace")
	for _, s := range status(g) {
		require.True(t, s.Down, "replica %d answered after Stop", s.Replica)
	}
	g.Stop() // a second Stop is harmless
	require.False(t, system.IsStopped())

	// Stop released the group's names: a group of the same name starts in
	// the same system.
	again := startIn(t, system, "orders")
	requireServes(t, again, "greeting", "again")
}

// TestTwoGroupsRunSideBySideInOneActorSystem: groups with different names
// share a system, each with its own replicas and state, and stopping one
// leaves the other serving.
func TestTwoGroupsRunSideBySideInOneActorSystem(t *testing.T) {
	system := newOwnSystem(t)
	orders, stock := startIn(t, system, "orders"), startIn(t, system, "stock")
	requireServes(t, orders, "k", "orders")
	requireServes(t, stock, "k", "stock")
	c := newClient(t, orders, 1)
	got, _ := read(t, c, "k")
	require.Equal(t, "orders", got, "a write to one group reached the other")
	for i := range 3 {
		require.NotEqual(t, orders.Peers()[i].Id, stock.Peers()[i].Id)
	}

	orders.Stop()
	requireServes(t, stock, "after", "orders stopped")
	require.ErrorIs(t, orders.Kill(0), supervisor.ErrStopped)
	require.NoError(t, stock.Crash(0), "the other group's methods still work")
	waitConverged(t, stock, allReplicas(3), 2)
}

// TestGroupWithATakenNameFailsAndLeavesTheFirstAlone: a second group with
// a name already in use in the system fails with an error that names the
// problem, and neither the system nor the first group notices.
func TestGroupWithATakenNameFailsAndLeavesTheFirstAlone(t *testing.T) {
	system := newOwnSystem(t)
	first := startIn(t, system, "orders")
	requireServes(t, first, "k", "v1")
	before := first.Peers()

	dup, err := supervisor.StartGroup(supervisor.GroupConfig{System: system, Name: "orders",
		ClusterID: testClusterID, Replicas: 3, NewStateMachine: kv.New})
	require.Nil(t, dup)
	require.ErrorIs(t, err, actor.ErrNameExists)
	require.ErrorContains(t, err, `"orders"`)
	require.ErrorContains(t, err, "GroupConfig.Name")
	require.False(t, system.IsStopped(), "a failed StartGroup shut the test's system down")

	require.Equal(t, before, first.Peers())
	for _, s := range status(first) {
		require.False(t, s.Down, "replica %d of the first group", s.Replica)
		require.Equal(t, vsr.StatusNormal, s.Status, "replica %d of the first group", s.Replica)
	}
	requireServes(t, first, "k", "v2")
	require.NoError(t, first.Crash(1), "the first group's supervisor still runs")
	waitConverged(t, first, allReplicas(3), 2)
}

// A group cannot start in a system its owner has shut down, and a group
// whose system is shut down under it reports ErrStopped.
func TestGroupInAStoppedActorSystem(t *testing.T) {
	system := newOwnSystem(t)
	g := startIn(t, system, "orders")
	system.Shutdown()
	_, err := g.NewClient(1)
	require.ErrorIs(t, err, supervisor.ErrStopped)
	peers := g.Peers()
	g.Stop()
	for i, pid := range peers {
		_, found := system.ProcessRegistry.Get(pid)
		require.False(t, found, "replica %d outlived Stop: Proto.Actor's Shutdown stops no actor", i)
	}

	_, err = supervisor.StartGroup(supervisor.GroupConfig{System: system, ClusterID: testClusterID,
		Replicas: 3, NewStateMachine: kv.New})
	require.ErrorIs(t, err, supervisor.ErrStopped)
}
