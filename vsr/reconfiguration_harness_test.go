package vsr

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// group is a test network whose replicas are named, as members of a
// configuration are, so that it can route messages across reconfigurations:
// an envelope goes to the replica its Member names, whatever epoch the
// sender and the receiver are in.
type group struct {
	t        *testing.T
	nodes    map[string]*gnode
	order    []string // every node ever started, in start order
	inflight []gpacket
	replies  []*messages.Reply
	// committed[op] is the first entry any replica committed at op.
	committed map[uint64]*messages.Entry
	// down nodes neither send nor receive.
	down map[string]bool
	// cut[from][to] drops messages from one node to another.
	cut  map[string]map[string]bool
	seed uint64
	// sessions and epochs hold what clients learned from replies.
	sessions map[uint64]uint64
	epoch    uint64
	members  []string
	// opts change the configuration of every node started.
	opts []func(*Config)
}

type gnode struct {
	r     *Replica
	store *kv.Store
	disk  *testDisk
	// cfg is the configuration the node was started with, as an operator
	// would start it again.
	cfg Config
}

type gpacket struct {
	from, to string
	msg      proto.Message
}

const gClient = 1

// newGroup starts a group whose first configuration is members, each normal
// in view 0 of epoch 0.
func newGroup(t *testing.T, members ...string) *group {
	t.Helper()
	return newGroupWith(t, nil, members...)
}

// newGroupWith is newGroup with opts applied to every node's configuration.
func newGroupWith(t *testing.T, opts []func(*Config), members ...string) *group {
	t.Helper()
	g := &group{t: t, opts: opts, nodes: map[string]*gnode{}, committed: map[uint64]*messages.Entry{},
		down: map[string]bool{}, cut: map[string]map[string]bool{}, seed: 1, sessions: map[uint64]uint64{},
		members: members}
	for i, name := range members {
		g.start(name, members, i, false)
	}
	return g
}

func (g *group) start(name string, members []string, index int, joining bool) {
	g.t.Helper()
	g.seed++
	store := kv.NewStore()
	cfg := Config{ClusterID: testCluster, ReplicaCount: len(members), ReplicaIndex: index,
		Members: members, StateMachine: store, Seed: g.seed, Joining: joining, JitterTicks: -1, Reconfigurable: true}
	for _, o := range g.opts {
		o(&cfg)
	}
	r, err := New(cfg)
	require.NoError(g.t, err)
	g.nodes[name] = &gnode{r: r, store: store, disk: &testDisk{}, cfg: cfg}
	g.order = append(g.order, name)
}

// restart restarts name from what it made durable, with the configuration
// it was first started with.
func (g *group) restart(name string) {
	g.t.Helper()
	n := g.nodes[name]
	g.seed++
	cfg := n.cfg
	cfg.Seed, cfg.StateMachine = g.seed, kv.NewStore()
	r, out, err := Restart(cfg, n.disk.state())
	require.NoError(g.t, err)
	n.r, n.store = r, cfg.StateMachine.(*kv.Store)
	g.take(name, out)
}

// join starts name, a node with no state, to join the group as a member of
// the configuration members.
func (g *group) join(name string, members ...string) {
	g.t.Helper()
	g.start(name, members, slices.Index(members, name), true)
}

func (g *group) r(name string) *Replica { return g.nodes[name].r }

// take records what a node emitted: messages go in flight, replies are
// kept, committed entries must agree with every other replica's, and every
// replica's invariants must hold.
func (g *group) take(from string, out Output) {
	g.t.Helper()
	g.nodes[from].disk.apply(g.t, out)
	for _, env := range out.Messages {
		require.NotEmpty(g.t, env.Member, "%s sent a %T to no one", from, env.Msg)
		require.NotEqual(g.t, from, env.Member, "%s sent a message to itself", from)
		g.inflight = append(g.inflight, gpacket{from: from, to: env.Member, msg: env.Msg})
	}
	for _, rep := range out.Replies {
		g.replies = append(g.replies, rep.Reply)
		if rep.Reply.Session != 0 {
			g.sessions[rep.Reply.ClientId] = rep.Reply.Session
		}
		if rep.Reply.Epoch > g.epoch && rep.Reply.Members != nil {
			g.epoch, g.members = rep.Reply.Epoch, rep.Reply.Members
		}
	}
	for _, e := range out.Committed {
		if prev, ok := g.committed[e.OpNumber]; ok {
			require.True(g.t, proto.Equal(prev, e), "%s committed %v at op %d, another committed %v",
				from, e, e.OpNumber, prev)
		} else {
			g.committed[e.OpNumber] = e
		}
	}
	for _, name := range g.order {
		require.NoError(g.t, g.r(name).CheckInvariants(), "replica %s", name)
	}
	if job := out.Checkpoint; job != nil {
		res := job.Run()
		g.nodes[from].disk.saveCheckpoint(res)
		g.take(from, g.r(from).CheckpointDone(res))
	}
}

func (g *group) step(name string, m proto.Message) {
	g.t.Helper()
	g.take(name, g.r(name).Step(m))
}

// deliver delivers messages until none is in flight.
func (g *group) deliver() {
	g.t.Helper()
	for n := 0; len(g.inflight) > 0; n++ {
		require.Less(g.t, n, 1_000_000, "messages never stop")
		p := g.inflight[0]
		g.inflight = g.inflight[1:]
		if g.down[p.from] || g.down[p.to] || g.cut[p.from][p.to] || g.nodes[p.to] == nil {
			continue
		}
		g.step(p.to, p.msg)
	}
}

// run ticks every node that is up, delivering after each tick.
func (g *group) run(ticks int) {
	g.t.Helper()
	for k := 0; k < ticks; k++ {
		for _, name := range g.order {
			if !g.down[name] {
				g.take(name, g.r(name).Tick())
			}
		}
		g.deliver()
	}
}

func (g *group) setCut(from, to string, cut bool) {
	if g.cut[from] == nil {
		g.cut[from] = map[string]bool{}
	}
	g.cut[from][to] = cut
}

// primary is the node that is normal and primary in the latest (epoch,
// view), or "".
func (g *group) primary() string {
	best := ""
	for _, name := range g.order {
		r := g.r(name)
		if g.down[name] || !r.IsPrimary() {
			continue
		}
		if b := g.nodes[best]; b == nil || r.Epoch() > b.r.Epoch() ||
			(r.Epoch() == b.r.Epoch() && r.View() > b.r.View()) {
			best = name
		}
	}
	return best
}

// request sends client gClient's request to the primary the client would
// pick (the group's primary) stamped with the epoch the client knows.
func (g *group) request(number uint64, m *messages.Request) *messages.Reply {
	g.t.Helper()
	m.ClusterId, m.ClientId, m.RequestNumber, m.ReplyTo = testCluster, gClient, number, testClient
	m.Epoch = g.epoch
	if !m.Register {
		m.Session = g.sessions[gClient]
	}
	to := g.primary()
	require.NotEmpty(g.t, to, "no primary")
	g.step(to, m)
	g.deliver()
	return g.replyFor(number)
}

func (g *group) replyFor(number uint64) *messages.Reply {
	var found *messages.Reply
	for _, rep := range g.replies {
		if rep.ClientId == gClient && rep.RequestNumber == number {
			found = rep
		}
	}
	return found
}

func (g *group) register() {
	g.t.Helper()
	rep := g.request(1, &messages.Request{Register: true})
	require.NotNil(g.t, rep)
	require.Equal(g.t, messages.ReplyError_REPLY_ERROR_NONE, rep.Error)
}

func (g *group) put(number uint64, key, value string) *messages.Reply {
	g.t.Helper()
	return g.request(number, &messages.Request{Operation: kv.PutOp(key, []byte(value))})
}

func (g *group) reconfigure(number uint64, members ...string) *messages.Reply {
	g.t.Helper()
	return g.request(number, &messages.Request{Reconfigure: &messages.Reconfiguration{Members: members}})
}

// value is key's value at node name, or "<absent>".
func (g *group) value(name, key string) string {
	v, ok := g.nodes[name].store.Get(key)
	if !ok {
		return "<absent>"
	}
	return string(v)
}

// requireEpoch checks that every named node is normal in epoch e with the
// configuration members, at the same commit number with the same state.
func (g *group) requireEpoch(e uint64, members ...string) {
	g.t.Helper()
	first := g.nodes[members[0]]
	want, err := first.store.Snapshot()
	require.NoError(g.t, err)
	for i, name := range members {
		r := g.r(name)
		require.Equal(g.t, StatusNormal, r.Status(), "%s", name)
		require.Equal(g.t, e, r.Epoch(), "%s's epoch", name)
		require.Equal(g.t, members, r.Members(), "%s's configuration", name)
		require.Equal(g.t, i, r.Index(), "%s's index", name)
		require.Equal(g.t, first.r.CommitNumber(), r.CommitNumber(), "%s's commit number", name)
		got, err := g.nodes[name].store.Snapshot()
		require.NoError(g.t, err)
		require.Equal(g.t, want, got, "%s's state", name)
	}
}

func (p gpacket) String() string { return fmt.Sprintf("%s->%s %T", p.from, p.to, p.msg) }
