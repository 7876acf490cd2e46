package vsr

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// This file is a tiny in-test network for scenario tests: n replicas, a queue
// of messages in flight, and a test that decides what is delivered, dropped
// or cut off. It checks every replica's invariants, that replicas agree on
// every committed op, and that no message or reply any replica emits is
// larger than its MaxMessageBytes, after every step. Checkpoint jobs are run
// at once, or held until the test runs them (holdCheckpoints).

// packet is a message in flight between replicas (to >= 0) or from a replica
// to a client (reply != nil).
type packet struct {
	from, to int
	msg      proto.Message
}

type network struct {
	t        *testing.T
	replicas []*Replica
	stores   []*kv.Store
	inflight []packet
	replies  []*messages.Reply
	// cut[a][b] drops every message from a to b.
	cut [][]bool
	// committed[op] is the first entry seen committed at op, by anyone.
	committed map[uint64]*messages.Entry
	seed      uint64
	// opts change every replica's config, including restarted ones.
	opts []func(*Config)
	// holdCheckpoints keeps the checkpoint jobs replicas emit in jobs
	// instead of running them at once; runCheckpoints runs them.
	holdCheckpoints bool
	jobs            []heldJob
	// largest is the largest message any replica emitted, by type name.
	largest map[string]int
	// filter, if set, sees every packet deliver and deliverIf are about to
	// deliver: it may change p.msg (a copy, never the sender's), and the
	// packet is lost if it returns false.
	filter func(p *packet) bool
	// watch, if set, runs after every packet delivered.
	watch func(p packet)
	// sessions holds the session each client's registration opened, from
	// the replies: step puts it on the client's later requests.
	sessions map[uint64]uint64
	// disks[i] is what replica i made durable, from its outputs.
	disks []*testDisk
	// clientEpoch is the epoch step stamps on requests that carry none.
	clientEpoch uint64
}

type heldJob struct {
	replica int
	r       *Replica
	job     *CheckpointJob
}

const testCluster = 7

var testClient = &messages.ClientAddress{Address: "test", Id: "client"}

// newNetwork makes n replicas, each configured by opts after the harness's
// own settings.
func newNetwork(t *testing.T, n int, opts ...func(*Config)) *network {
	t.Helper()
	nw := &network{t: t, cut: make([][]bool, n), committed: map[uint64]*messages.Entry{}, seed: 1, opts: opts,
		largest: map[string]int{}, sessions: map[uint64]uint64{}}
	for i := 0; i < n; i++ {
		nw.cut[i] = make([]bool, n)
		nw.disks = append(nw.disks, &testDisk{})
		store := kv.NewStore()
		r, err := New(nw.config(n, i, store, false))
		require.NoError(t, err)
		nw.replicas = append(nw.replicas, r)
		nw.stores = append(nw.stores, store)
	}
	return nw
}

func (nw *network) config(n, i int, sm statemachine.StateMachine, recovering bool) Config {
	nw.seed++
	cfg := Config{ClusterID: testCluster, ReplicaCount: n, ReplicaIndex: i, StateMachine: sm,
		Seed: nw.seed, Recovering: recovering, JitterTicks: -1}
	for _, o := range nw.opts {
		o(&cfg)
	}
	return cfg
}

// take records an output: messages go in flight, replies are kept,
// committed entries are checked against everyone else's, every message is
// checked against the sender's MaxMessageBytes, and a checkpoint job is run
// (or held).
func (nw *network) take(from int, out Output) {
	nw.t.Helper()
	nw.disks[from].apply(nw.t, out)
	nw.disks[from].requireHolds(nw.t, nw.replicas[from])
	limit := nw.replicas[from].cfg.MaxMessageBytes
	for _, env := range out.Messages {
		require.NotEqual(nw.t, from, env.To, "replica %d sent a message to itself", from)
		size := proto.Size(env.Msg)
		require.LessOrEqual(nw.t, size, limit, "replica %d sent a %T of %d bytes, over MaxMessageBytes",
			from, env.Msg, size)
		name := fmt.Sprintf("%T", env.Msg)
		nw.largest[name] = max(nw.largest[name], size)
		nw.inflight = append(nw.inflight, packet{from: from, to: env.To, msg: env.Msg})
	}
	for _, rep := range out.Replies {
		require.LessOrEqual(nw.t, proto.Size(rep.Reply), limit, "replica %d sent a reply over MaxMessageBytes", from)
		nw.replies = append(nw.replies, rep.Reply)
		if rep.Reply.Session != 0 {
			nw.sessions[rep.Reply.ClientId] = rep.Reply.Session
		}
	}
	for _, e := range out.Committed {
		if prev, ok := nw.committed[e.OpNumber]; ok {
			require.True(nw.t, proto.Equal(prev, e), "replica %d committed %v at op %d, another committed %v",
				from, e, e.OpNumber, prev)
		} else {
			nw.committed[e.OpNumber] = e
		}
	}
	for i, r := range nw.replicas {
		require.NoError(nw.t, r.CheckInvariants(), "replica %d", i)
	}
	if job := out.Checkpoint; job != nil {
		if nw.holdCheckpoints {
			nw.jobs = append(nw.jobs, heldJob{replica: from, r: nw.replicas[from], job: job})
		} else {
			res := job.Run()
			nw.disks[from].saveCheckpoint(res)
			nw.take(from, nw.replicas[from].CheckpointDone(res))
		}
	}
}

// runCheckpoints runs the held checkpoint jobs and hands each result to the
// replica that asked for it (a replica restarted since gets nothing).
func (nw *network) runCheckpoints() {
	nw.t.Helper()
	jobs := nw.jobs
	nw.jobs = nil
	for _, j := range jobs {
		if nw.replicas[j.replica] == j.r {
			res := j.job.Run()
			nw.disks[j.replica].saveCheckpoint(res)
			nw.take(j.replica, j.r.CheckpointDone(res))
		}
	}
}

// step hands m to replica i as if it came from the network. A client request
// without a session gets the one its client's registration opened, as the
// client core would put it on.
func (nw *network) step(i int, m proto.Message) {
	nw.t.Helper()
	if req, ok := m.(*messages.Request); ok && !req.Register && req.Session == 0 && nw.sessions[req.ClientId] != 0 {
		req = proto.Clone(req).(*messages.Request)
		req.Session = nw.sessions[req.ClientId]
		m = req
	}
	if req, ok := m.(*messages.Request); ok && req.Epoch == 0 && nw.clientEpoch != 0 {
		req = proto.Clone(req).(*messages.Request)
		req.Epoch = nw.clientEpoch
		m = req
	}
	nw.take(i, nw.replicas[i].Step(m))
}

// tick advances every replica's clock once; a replica in skip does not tick.
func (nw *network) tick(skip ...int) {
	nw.t.Helper()
	for i, r := range nw.replicas {
		if !contains(skip, i) {
			nw.take(i, r.Tick())
		}
	}
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// deliver delivers every message in flight, including those sent in reply,
// until none is left; messages across a cut are dropped. It returns how many
// it delivered.
func (nw *network) deliver() int {
	nw.t.Helper()
	count := 0
	for len(nw.inflight) > 0 {
		p := nw.inflight[0]
		nw.inflight = nw.inflight[1:]
		if nw.cut[p.from][p.to] || !nw.pass(&p) {
			continue
		}
		nw.step(p.to, p.msg)
		if nw.watch != nil {
			nw.watch(p)
		}
		count++
		require.Less(nw.t, count, 100000, "messages never stop")
	}
	return count
}

// deliverIf delivers the messages in flight for which keep is true, once, and
// drops the rest.
func (nw *network) deliverIf(keep func(p packet) bool) {
	nw.t.Helper()
	batch := nw.inflight
	nw.inflight = nil
	for _, p := range batch {
		if keep(p) && !nw.cut[p.from][p.to] && nw.pass(&p) {
			nw.step(p.to, p.msg)
			if nw.watch != nil {
				nw.watch(p)
			}
		}
	}
}

// pass runs the filter, if any, on p.
func (nw *network) pass(p *packet) bool { return nw.filter == nil || nw.filter(p) }

// dropAll discards every message in flight.
func (nw *network) dropAll() { nw.inflight = nil }

// isolate cuts replica i off from everyone, both ways.
func (nw *network) isolate(i int) {
	for j := range nw.replicas {
		if j != i {
			nw.cut[i][j], nw.cut[j][i] = true, true
		}
	}
}

// heal removes every cut.
func (nw *network) heal() {
	for i := range nw.cut {
		for j := range nw.cut[i] {
			nw.cut[i][j] = false
		}
	}
}

// run ticks and delivers for the given number of ticks.
func (nw *network) run(ticks int, skip ...int) {
	nw.t.Helper()
	for k := 0; k < ticks; k++ {
		nw.tick(skip...)
		nw.deliver()
	}
}

// restart replaces replica i with a new, empty one that runs recovery.
func (nw *network) restart(i int) {
	nw.t.Helper()
	store := kv.NewStore()
	r, err := New(nw.config(len(nw.replicas), i, store, true))
	require.NoError(nw.t, err)
	nw.disks[i] = &testDisk{} // it lost its disk too
	nw.replicas[i] = r
	nw.stores[i] = store
}

// request builds a client request.
func request(client, number uint64, op []byte) *messages.Request {
	return &messages.Request{ClusterId: testCluster, ClientId: client, RequestNumber: number,
		Operation: op, ReplyTo: testClient}
}

// regNumber is the request number of a client's registration in the
// scenario tests: its writes are numbered from regNumber+1.
const regNumber = 1

// registration builds a client's registration request.
func registration(client, number uint64) *messages.Request {
	return &messages.Request{ClusterId: testCluster, ClientId: client, RequestNumber: number,
		ReplyTo: testClient, Register: true}
}

// register opens the session of each client: its registration (request
// regNumber) goes to replica i, everything is delivered, and the primary
// must have answered it without error. A write from a client without a
// session is refused, so every test that writes registers its clients first.
func (nw *network) register(i int, clients ...uint64) {
	nw.t.Helper()
	for _, c := range clients {
		nw.step(i, registration(c, regNumber))
		nw.deliver()
		rep := nw.replyFor(c, regNumber)
		require.NotNil(nw.t, rep, "client %d: registration not answered", c)
		require.Equal(nw.t, messages.ReplyError_REPLY_ERROR_NONE, rep.Error, "client %d", c)
	}
}

// put submits a put to replica i and delivers everything.
func (nw *network) put(i int, client, number uint64, key, value string) {
	nw.t.Helper()
	nw.step(i, request(client, number, kv.PutOp(key, []byte(value))))
	nw.deliver()
}

// primary returns the index of the one replica that is normal and primary in
// the highest view, failing the test if there is none.
func (nw *network) primary() int {
	nw.t.Helper()
	best := -1
	for i, r := range nw.replicas {
		if r.IsPrimary() && (best < 0 || r.View() > nw.replicas[best].View()) {
			best = i
		}
	}
	require.GreaterOrEqual(nw.t, best, 0, "no primary")
	return best
}

// replyFor returns the last reply to (client, number), or nil.
func (nw *network) replyFor(client, number uint64) *messages.Reply {
	var found *messages.Reply
	for _, r := range nw.replies {
		if r.ClientId == client && r.RequestNumber == number {
			found = r
		}
	}
	return found
}

// repliesFor counts the replies to (client, number).
func (nw *network) repliesFor(client, number uint64) int {
	count := 0
	for _, r := range nw.replies {
		if r.ClientId == client && r.RequestNumber == number {
			count++
		}
	}
	return count
}

// requireConverged checks that the given replicas are normal in one view with
// the same commit number and byte-identical state.
func (nw *network) requireConverged(which ...int) {
	nw.t.Helper()
	if len(which) == 0 {
		for i := range nw.replicas {
			which = append(which, i)
		}
	}
	first := nw.replicas[which[0]]
	want, err := nw.stores[which[0]].Snapshot()
	require.NoError(nw.t, err)
	for _, i := range which {
		r := nw.replicas[i]
		require.Equal(nw.t, StatusNormal, r.Status(), "replica %d", i)
		require.Equal(nw.t, first.View(), r.View(), "replica %d view", i)
		require.Equal(nw.t, first.CommitNumber(), r.CommitNumber(), "replica %d commit", i)
		got, err := nw.stores[i].Snapshot()
		require.NoError(nw.t, err)
		require.True(nw.t, bytes.Equal(want, got), "replica %d state differs", i)
	}
}

// value reads key from replica i's state machine.
func (nw *network) value(i int, key string) string {
	v, ok := nw.stores[i].Get(key)
	if !ok {
		return "<absent>"
	}
	return string(v)
}

func (p packet) String() string { return fmt.Sprintf("%d->%d %T", p.from, p.to, p.msg) }

// isType reports whether p carries a message of the same type as m.
func isType(p packet, m proto.Message) bool {
	return p.msg.ProtoReflect().Descriptor() == m.ProtoReflect().Descriptor()
}

// do runs f on replica i, as a test's way to call a handler or a transition
// directly, and collects what it produced.
func (nw *network) do(i int, f func(r *Replica)) {
	nw.t.Helper()
	r := nw.replicas[i]
	f(r)
	r.flush()
	nw.take(i, r.takeOutput())
}

// writeOps has client 1 (registered) write until replica 0 has committed op
// last, each write delivered and then told to the backups by a heartbeat.
func (nw *network) writeOps(last uint64) {
	nw.t.Helper()
	for k := 0; nw.replicas[nw.primary()].CommitNumber() < last; k++ {
		require.Less(nw.t, k, 10000, "the group stopped committing")
		p := nw.primary()
		nw.put(p, 1, nw.nextRequest(1), fmt.Sprintf("k%d", k%8), fmt.Sprintf("v%d", k))
	}
	nw.run(DefaultHeartbeatTicks)
}

// nextRequest is the next request number of client c: one past the largest
// any reply to c has carried.
func (nw *network) nextRequest(c uint64) uint64 {
	var n uint64
	for _, r := range nw.replies {
		if r.ClientId == c {
			n = max(n, r.RequestNumber)
		}
	}
	return n + 1
}
