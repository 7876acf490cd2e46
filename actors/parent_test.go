package actors_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// Replicas under the user's own parent actor (doc.go, "Replicas under your
// own parent"): no package supervisor, no Group. The test's parent spawns
// the replicas as its children and supervises them with a strategy of its
// own, and the replicas find each other through a Resolve that maps member
// names to the children's PIDs.

// parentName is the test parent's actor name: a child named name is
// parentName/name.
const parentName = "app"

// failures records what the test parent's decider was asked to decide.
type failures struct {
	mu      sync.Mutex
	reasons []any
}

// restart is the parent's decider: it records the failure and restarts the
// child, the one directive a replica may be given for a panic.
func (f *failures) restart(reason any) actor.Directive {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reasons = append(f.reasons, reason)
	return actor.RestartDirective
}

func (f *failures) all() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reasons)
}

// replicaParent is a user's actor that hosts replicas as its children. The
// props are made once, outside the parent: a Props counts the instances it
// makes, and only the first one of a replica may start as new.
type replicaParent struct {
	members []string
	props   []*actor.Props
}

// whichChildren asks a replicaParent for its children.
type whichChildren struct{}

func (p *replicaParent) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		for i, name := range p.members {
			if _, err := ctx.SpawnNamed(p.props[i], name); err != nil {
				panic(fmt.Sprintf("cannot spawn replica %s: %v", name, err))
			}
		}
	case *whichChildren:
		ctx.Respond(ctx.Children())
	}
}

// parentGroup is three replicas under the test's parent.
type parentGroup struct {
	t        *testing.T
	system   *actor.ActorSystem
	members  []string
	parent   *actor.PID
	events   *events
	failures *failures
}

// startUnderParent spawns the test's parent, which spawns three kv replicas
// named a, b and c as its children, under a one-for-one strategy whose
// decider is the test's.
func startUnderParent(t *testing.T) *parentGroup {
	t.Helper()
	g := &parentGroup{t: t, system: newSystem(t), members: []string{"a", "b", "c"}, events: &events{}, failures: &failures{}}
	var props []*actor.Props
	for i := range g.members {
		props = append(props, actors.NewReplicaProps(actors.ReplicaConfig{
			Core: vsr.Config{ClusterID: clusterID, ReplicaCount: len(g.members), ReplicaIndex: i,
				Members: g.members},
			NewStateMachine: kv.New,
			Resolve:         g.resolve,
			OnEvent:         g.events.add,
		}))
	}
	strategy := actor.NewOneForOneStrategy(10, time.Minute, g.failures.restart)
	parent, err := g.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &replicaParent{members: g.members, props: props}
	}, actor.WithSupervisor(strategy)), parentName)
	require.NoError(t, err)
	g.parent = parent
	t.Cleanup(func() { _ = g.system.Root.StopFuture(parent).Wait() })
	// The parent spawns its children when it handles Started, after
	// SpawnNamed has returned; it answers a question only after that. A
	// client call that found no replica actor at all would end with
	// ErrNoSuchGroup.
	require.Len(t, g.children(), len(g.members))
	return g
}

// resolve is the replicas' and the client's Resolve: the child named name
// of the parent. It is computed, not looked up, so it holds before the
// children exist and across their restarts (a restarted child keeps its
// PID).
func (g *parentGroup) resolve(name string) *actor.PID {
	return g.system.NewLocalPID(parentName + "/" + name)
}

func (g *parentGroup) status(name string, withDigest bool) (actors.ReplicaStatus, bool) {
	res, err := g.system.Root.RequestFuture(g.resolve(name), &actors.StatusQuery{WithDigest: withDigest},
		2*time.Second).Result()
	s, ok := res.(actors.ReplicaStatus)
	return s, ok && err == nil
}

// primary waits for a replica that is normal and primary, and returns its
// index.
func (g *parentGroup) primary() int {
	g.t.Helper()
	p := -1
	require.Eventually(g.t, func() bool {
		for i, name := range g.members {
			if s, ok := g.status(name, false); ok && s.Status == vsr.StatusNormal && s.Primary == i {
				p = i
				return true
			}
		}
		return false
	}, waitFor, pollEvery, "no primary")
	return p
}

// children asks the parent for its children, and returns their PIDs as
// strings (a PID caches its process, so PIDs compare by their fields).
func (g *parentGroup) children() []string {
	g.t.Helper()
	res, err := g.system.Root.RequestFuture(g.parent, &whichChildren{}, 2*time.Second).Result()
	require.NoError(g.t, err)
	var out []string
	for _, pid := range res.([]*actor.PID) {
		out = append(out, pid.String())
	}
	return out
}

// crash makes replica i panic and waits until the instance that replaces
// it has come back through recovery: its first event says Restarted while
// it recovers, and a later one says it is normal again.
func (g *parentGroup) crash(i int) {
	g.t.Helper()
	g.events.mu.Lock()
	from := len(g.events.all)
	g.events.mu.Unlock()
	failed := len(g.failures.all())
	g.system.Root.Send(g.resolve(g.members[i]), &actors.Crash{})

	require.Eventually(g.t, func() bool { return len(g.failures.all()) == failed+1 }, waitFor, pollEvery,
		"the test parent's decider never saw the panic")
	require.Contains(g.t, fmt.Sprint(g.failures.all()[failed]), "crashed on purpose")
	var first actors.Event
	require.Eventually(g.t, func() bool {
		g.events.mu.Lock()
		defer g.events.mu.Unlock()
		restarted := slices.IndexFunc(g.events.all[from:], func(e actors.Event) bool {
			return e.Replica == i && e.Restarted
		})
		if restarted < 0 {
			return false
		}
		first = g.events.all[from+restarted]
		return slices.ContainsFunc(g.events.all[from+restarted+1:], func(e actors.Event) bool {
			return e.Replica == i && e.Status == vsr.StatusNormal
		})
	}, waitFor, pollEvery, "replica %d did not come back normal through recovery", i)
	require.Equal(g.t, vsr.StatusRecovering, first.Status, "the new instance must recover: %+v", first)
}

// converged waits until every replica is normal with at least minCommit
// ops committed, the same commit number and the same state.
func (g *parentGroup) converged(minCommit uint64) {
	g.t.Helper()
	var last []actors.ReplicaStatus
	require.Eventually(g.t, func() bool {
		last = last[:0]
		for _, name := range g.members {
			s, ok := g.status(name, true)
			if !ok || s.Status != vsr.StatusNormal || s.CommitNumber < minCommit {
				return false
			}
			last = append(last, s)
		}
		for _, s := range last[1:] {
			if s.CommitNumber != last[0].CommitNumber || s.Digest != last[0].Digest {
				return false
			}
		}
		return true
	}, waitFor, pollEvery, "the replicas did not converge")
}

// TestReplicaUnderTheTestsOwnParentRecoversAfterPanic: replicas that are
// children of the test's own actor serve a client; a backup, then the
// primary, panics, the test's own strategy restarts it (its decider sees
// the panic), and the new instance comes back through VR recovery, at the
// same PID and still the parent's child, with the same state as the others.
// The group keeps serving meanwhile.
func TestReplicaUnderTheTestsOwnParentRecoversAfterPanic(t *testing.T) {
	g := startUnderParent(t)
	c, err := actors.NewClient(g.system, actors.ClientConfig{ClusterID: clusterID, Members: g.members,
		Resolve: g.resolve})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	for k := range 10 {
		execute(t, c, kv.PutOp(fmt.Sprintf("k%d", k), fmt.Appendf(nil, "v%d", k)))
	}
	before := g.children()
	require.Len(t, before, len(g.members))
	for _, name := range g.members {
		require.Contains(t, before, g.resolve(name).String(), "each replica is the parent's child")
	}

	primary := g.primary()
	backup := (primary + 1) % len(g.members)
	g.crash(backup)
	for k := 10; k < 20; k++ {
		execute(t, c, kv.PutOp(fmt.Sprintf("k%d", k), fmt.Appendf(nil, "v%d", k)))
	}
	g.converged(20)

	g.crash(primary)
	for k := 20; k < 30; k++ {
		execute(t, c, kv.PutOp(fmt.Sprintf("k%d", k), fmt.Appendf(nil, "v%d", k)))
	}
	g.converged(30)

	require.Len(t, g.failures.all(), 2, "the test's strategy handled both panics, and nothing else failed")
	require.ElementsMatch(t, before, g.children(), "the restarted replicas are the same children")
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for k := range 30 {
		b, err := c.Read(ctx, kv.GetOp(fmt.Sprintf("k%d", k)))
		require.NoError(t, err)
		r, err := kv.DecodeResult(b)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("v%d", k), string(r.GetValue()))
	}
}
