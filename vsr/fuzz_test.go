package vsr

// Fuzzers for the core (go test -fuzz). Everything here is prefixed fz so that
// it cannot clash with the other test helpers of this package.
//
//   - FuzzDecode: arbitrary bytes are unmarshalled into every message type of
//     package messages; each message that decodes is stepped into replicas in
//     a range of states. No panic, and CheckInvariants holds.
//   - FuzzStep: the input is a program that drives a cluster of 3 or 5 (or 1)
//     replicas: ticks, client requests, delivery, loss, duplication and
//     misdirection of the replicas' own messages, restarts, SuspectDown
//     hints, and forged or corrupted messages with out-of-range and
//     inconsistent fields. No panic,
//     CheckInvariants holds on every replica after every command, and the
//     committed prefixes of replicas that never saw forged traffic agree.
//
// The corpus lives in testdata/fuzz/FuzzDecode and testdata/fuzz/FuzzStep and
// is replayed by plain `go test`. Set VSR_FUZZ_TRACE=1 to log every command
// of FuzzStep when replaying one input with -run 'FuzzStep/<file>' -v.
//
// Defects the fuzzers found, fixed in the core; their inputs stay in the corpus
// as regressions:
//
//   - Zero request number: an entry (Prepare, StartView, DoViewChange,
//     NewState, RecoveryResponse) or snapshot client-table row with request
//     number 0 was taken and executed, recording a session numbered 0 and
//     breaking CheckInvariants; entries and rows now need a non-zero client ID
//     and request number. FuzzDecode/ac3741b21ebda499 (an entry; a seed of
//     FuzzDecode has the snapshot row).
//   - View overflow: a replica adopted a forged view 2^64-1 and its election
//     timeout wrapped it to view 0 (the view went backwards); admit now drops
//     any view, op or commit number above 2^62 as DropMalformed.
//     FuzzStep/a608cd5a0bf3a76b.
//   - Short DoViewChange: a new primary adopted a chosen (forged) DoViewChange
//     whose log ended before its own commit number, leaving commit > op;
//     startView now drops such a DoViewChange. FuzzStep/d8721c12a21ae093
//     (which admit now stops earlier, on a commit number of 2^64-1; a seed of
//     FuzzStep reaches startView's check with numbers in range).
//   - NewState op overflow: a NewState with op number 2^64-1 and no entries
//     wrapped its first op to 0 and adoptNewState panicked slicing the log;
//     admit now drops it (op number above 2^62). FuzzStep/b526d35cc518ebae.

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// fzTrace turns on the command log of FuzzStep.
var fzTrace = os.Getenv("VSR_FUZZ_TRACE") != ""

// fzClusterID is the cluster ID of the fuzzed replicas.
const fzClusterID uint64 = 7

var fzAddr = &messages.ClientAddress{Address: "fuzz", Id: "client"}

// fzZeroNonceSeed is the seed whose first SplitMix64 draw is 0, so that a
// replica built with it and no jitter recovers with nonce 0: decoded messages
// that leave the nonce out match it.
const fzZeroNonceSeed uint64 = -0x9e3779b97f4a7c15 & math.MaxUint64

// fzStep steps m into r and fails the test, with the message and the
// replica's state, if the core panics or breaks an invariant.
func fzStep(t *testing.T, what string, r *Replica, m proto.Message) (out Output) {
	t.Helper()
	before := fzState(r)
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("%s: replica %d (%s) panicked on %s: %v\n%s", what, r.index, before, fzShow(m), p, debug.Stack())
			}
		}()
		out = r.Step(m)
	}()
	if err := r.CheckInvariants(); err != nil {
		t.Fatalf("%s: replica %d (%s) broke an invariant on %s: %v\nnow: %s", what, r.index, before, fzShow(m), err, fzState(r))
	}
	return out
}

func fzShow(m proto.Message) string {
	if m == nil {
		return "<nil>"
	}
	if !m.ProtoReflect().IsValid() {
		return fmt.Sprintf("(%T)(nil)", m)
	}
	return fmt.Sprintf("%T{%v}", m, m)
}

func fzState(r *Replica) string {
	return fmt.Sprintf("n=%d %s view=%d lnv=%d op=%d commit=%d syncing=%v primary=%v",
		r.n, r.status, r.viewNumber, r.lastNormalView, r.opNumber(), r.commitNumber, r.syncing, r.isPrimary())
}

// fzMessageTypes is every message type of package messages, in the order of
// the .proto file.
func fzMessageTypes() []protoreflect.MessageType {
	var types []protoreflect.MessageType
	mds := messages.File_vsr_proto.Messages()
	for k := 0; k < mds.Len(); k++ {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(mds.Get(k).FullName())
		if err != nil {
			panic(err)
		}
		types = append(types, mt)
	}
	return types
}

// ---------------------------------------------------------------------------
// FuzzDecode

// fzReplica is replica i of n with short, jitter-free timing.
func fzReplica(t *testing.T, cluster uint64, n, i int, seed uint64, recovering bool) *Replica {
	r, err := New(Config{ClusterID: cluster, ReplicaCount: n, ReplicaIndex: i, StateMachine: kv.NewStore(),
		Seed: seed, Recovering: recovering, HeartbeatTicks: 2, InactivityTicks: 10, ViewChangeTicks: 10,
		JitterTicks: -1, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fzEntry(op, view uint64) *messages.Entry {
	return &messages.Entry{OpNumber: op, View: view, ClientId: 100 + op, RequestNumber: 1,
		Operation: kv.PutOp(fmt.Sprintf("k%d", op), []byte(fmt.Sprintf("v%d", op))), ReplyTo: fzAddr}
}

func fzLog(first, last, view uint64) []*messages.Entry {
	var log []*messages.Entry
	for op := first; op <= last; op++ {
		log = append(log, fzEntry(op, view))
	}
	return log
}

// fzFixture is a replica in some state of interest, built from scratch.
type fzFixture struct {
	name  string
	build func(t *testing.T) *Replica
}

// fzFixtures are the states FuzzDecode steps every decoded message into. They
// use cluster ID 0, so that a decoded message with no cluster ID belongs to
// them, except one which uses fzClusterID.
var fzFixtures = []fzFixture{
	{"primary of view 0 with 2 committed, 2 uncommitted ops and a read in flight", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 0, 1, false)
		for op := uint64(1); op <= 4; op++ {
			fzStep(t, "fixture", r, &messages.Request{ClientId: 100 + op, RequestNumber: 1,
				Operation: kv.PutOp(fmt.Sprintf("k%d", op), []byte("v")), ReplyTo: fzAddr})
		}
		fzStep(t, "fixture", r, &messages.PrepareOK{View: 0, OpNumber: 2, Replica: 1})
		fzStep(t, "fixture", r, &messages.Request{ClientId: 99, RequestNumber: 1, Operation: kv.GetOp("k1"),
			ReplyTo: fzAddr, ReadMode: messages.ReadMode_READ_MODE_LINEARIZABLE})
		return r
	}},
	{"backup of view 0 with ops 1..4, commit 2", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 1, 2, false)
		fzStep(t, "fixture", r, &messages.Prepare{View: 0, Replica: 0, CommitNumber: 2, Entries: fzLog(1, 4, 0)})
		return r
	}},
	{"backup of view 0 in cluster 7 with ops 1..2, commit 1", func(t *testing.T) *Replica {
		r := fzReplica(t, fzClusterID, 3, 2, 3, false)
		fzStep(t, "fixture", r, &messages.Prepare{ClusterId: fzClusterID, View: 0, Replica: 0, CommitNumber: 1,
			Entries: fzLog(1, 2, 0)})
		return r
	}},
	{"replica 2 changing to view 1 after a timeout, ops 1..3, commit 1", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 2, 4, false)
		fzStep(t, "fixture", r, &messages.Prepare{View: 0, Replica: 0, CommitNumber: 1, Entries: fzLog(1, 3, 0)})
		for k := 0; r.status == StatusNormal; k++ {
			if k > 10*DefaultInactivityTicks {
				t.Fatal("fixture: a backup without a primary never started a view change")
			}
			r.Tick()
		}
		return r
	}},
	{"replica 1 syncing in view 2, ops 1..3, commit 1", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 1, 5, false)
		fzStep(t, "fixture", r, &messages.Prepare{View: 0, Replica: 0, CommitNumber: 1, Entries: fzLog(1, 3, 0)})
		fzStep(t, "fixture", r, &messages.Commit{View: 2, CommitNumber: 3, Replica: 2})
		return r
	}},
	{"replica 1 recovering with nonce 0, one response from a backup in", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 1, fzZeroNonceSeed, true)
		if r.recovery.nonce != 0 {
			t.Fatalf("fixture nonce %d, want 0", r.recovery.nonce)
		}
		r.Tick()
		fzStep(t, "fixture", r, &messages.RecoveryResponse{View: 0, Replica: 2})
		return r
	}},
	{"replica 0 primary of view 3 in view change, own DoViewChange in, ops 1..4, commit 2", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 0, 6, false)
		fzStep(t, "fixture", r, &messages.StartView{View: 1, Replica: 1, Log: fzLog(1, 4, 0), OpNumber: 4, CommitNumber: 2})
		fzStep(t, "fixture", r, &messages.StartViewChange{View: 3, Replica: 1})
		return r
	}},
	{"n=5: replica 1 new primary of view 1, ops 1..3, commit 1", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 5, 1, 7, false)
		for _, j := range []uint32{2, 3, 4} {
			fzStep(t, "fixture", r, &messages.DoViewChange{View: 1, Replica: j, Log: fzLog(1, 3, 0),
				OpNumber: 3, CommitNumber: 1})
		}
		return r
	}},
	{"n=1: a lone primary with one op", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 1, 0, 8, false)
		fzStep(t, "fixture", r, &messages.Request{ClientId: 1, RequestNumber: 1, Operation: kv.PutOp("a", []byte("b")),
			ReplyTo: fzAddr})
		return r
	}},
}

func fzMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecode(f *testing.F) {
	seeds := []proto.Message{
		&messages.Request{ClientId: 1, RequestNumber: 1, Operation: kv.PutOp("a", []byte("b")), ReplyTo: fzAddr},
		&messages.Request{ClientId: 1, RequestNumber: 2, Operation: kv.GetOp("a"), ReadMode: messages.ReadMode_READ_MODE_STALE},
		&messages.Prepare{View: 0, Replica: 0, CommitNumber: 4, Entries: fzLog(5, 6, 0)},
		&messages.Prepare{View: 1, Replica: 1, CommitNumber: 2, Entries: fzLog(1, 5, 1)},
		&messages.Prepare{ClusterId: fzClusterID, View: 0, Replica: 0, CommitNumber: 3, Entries: fzLog(3, 3, 0)},
		&messages.PrepareOK{View: 0, OpNumber: 4, Replica: 2},
		&messages.PrepareOK{View: 1, OpNumber: 3, Replica: 3},
		&messages.Commit{View: 0, CommitNumber: 4, Replica: 0},
		&messages.Commit{View: 2, CommitNumber: 1, Replica: 2},
		&messages.StartViewChange{View: 1, Replica: 0},
		&messages.StartViewChange{View: 3, Replica: 2},
		&messages.DoViewChange{View: 3, Replica: 2, LastNormalView: 1, Log: fzLog(1, 2, 0), OpNumber: 2, CommitNumber: 1},
		&messages.DoViewChange{View: 1, Replica: 0, LastNormalView: 0, Log: fzLog(1, 3, 0), OpNumber: 3, CommitNumber: 3},
		&messages.StartView{View: 1, Replica: 1, Log: fzLog(1, 3, 0), OpNumber: 3, CommitNumber: 3},
		&messages.StartView{View: 2, Replica: 2, Log: fzLog(1, 5, 0), OpNumber: 5, CommitNumber: 2},
		&messages.Recovery{Replica: 1, Nonce: 42},
		&messages.RecoveryResponse{View: 0, Replica: 0, FromPrimary: true, Log: fzLog(1, 2, 0), OpNumber: 2, CommitNumber: 1,
			Snapshot: &messages.Snapshot{CommitNumber: 1, ClientTable: []*messages.ClientSession{{ClientId: 101, RequestNumber: 1}}}},
		// A client-table row without a request number (a defect found by
		// FuzzDecode: the core now drops the response).
		&messages.RecoveryResponse{View: 0, Replica: 0, FromPrimary: true, Log: fzLog(1, 2, 0), OpNumber: 2, CommitNumber: 1,
			Snapshot: &messages.Snapshot{CommitNumber: 1, ClientTable: []*messages.ClientSession{{ClientId: 101, RequestNumber: 0}}}},
		&messages.GetState{View: 0, OpNumber: 1, Replica: 2},
		&messages.NewState{View: 2, Replica: 2, Entries: fzLog(2, 4, 0), OpNumber: 4, CommitNumber: 3},
		&messages.NewState{View: 1, Replica: 1, Entries: fzLog(4, 5, 0), OpNumber: 5, CommitNumber: 5},
		&messages.ConfirmView{View: 0, Round: 1, Replica: 0},
		&messages.ConfirmViewOK{View: 0, Round: 1, Replica: 1},
		&messages.ConfirmViewOK{View: 1, Round: 1, Replica: 2},
	}
	for _, m := range seeds {
		f.Add(fzMarshal(m))
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})

	types := fzMessageTypes()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mt := range types {
			m := mt.New().Interface()
			if err := proto.Unmarshal(data, m); err != nil {
				continue
			}
			if _, err := proto.Marshal(m); err != nil {
				t.Fatalf("%T decoded but does not encode again: %v", m, err)
			}
			if reply, ok := m.(*messages.Reply); ok {
				fzClientStep(t, reply)
			}
			for _, fx := range fzFixtures {
				r := fx.build(t)
				fzStep(t, fx.name, r, m)
				// A second copy, as a duplicate would arrive, and a tick.
				fzStep(t, fx.name+" (duplicate)", r, proto.Clone(m))
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("%s: Tick panicked after %s: %v\n%s", fx.name, fzShow(m), p, debug.Stack())
						}
					}()
					r.Tick()
				}()
				if err := r.CheckInvariants(); err != nil {
					t.Fatalf("%s: invariant broken by a Tick after %s: %v", fx.name, fzShow(m), err)
				}
			}
		}
	})
}

// fzClientStep hands a decoded reply to a client core that is waiting for
// the reply to its request, and checks that it stays sane.
func fzClientStep(t *testing.T, reply *messages.Reply) {
	id := max(reply.ClientId, 1)
	c, err := NewClient(ClientConfig{ClusterID: fzClusterID, ClientID: id, ReplicaCount: 3, ReplyTo: fzAddr,
		FirstRequestNumber: max(reply.RequestNumber, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(kv.GetOp("k"), messages.ReadMode_READ_MODE_LOG); err != nil {
		t.Fatal(err)
	}
	out := c.Step(reply)
	if p := c.Primary(); p < 0 || p >= 3 {
		t.Fatalf("client believes replica %d is primary after %s", p, fzShow(reply))
	}
	if out.Done != nil && out.Done.RequestNumber != max(reply.RequestNumber, 1) {
		t.Fatalf("client completed request %d with %s", out.Done.RequestNumber, fzShow(reply))
	}
	for _, env := range c.Tick().Messages {
		if env.To < 0 || env.To >= 3 {
			t.Fatalf("client sent to replica %d", env.To)
		}
	}
}

// TestFuzzFixtures checks that the fixtures of FuzzDecode are in the states
// their names promise, so that the fuzzer keeps exploring them.
func TestFuzzFixtures(t *testing.T) {
	want := []struct {
		status       Status
		view, op, k  uint64
		syncing, prm bool
	}{
		{StatusNormal, 0, 4, 2, false, true},
		{StatusNormal, 0, 4, 2, false, false},
		{StatusNormal, 0, 2, 1, false, false},
		{StatusViewChange, 1, 3, 1, false, false},
		{StatusViewChange, 2, 3, 1, true, false},
		{StatusRecovering, 0, 0, 0, false, false},
		{StatusViewChange, 3, 4, 2, false, false},
		{StatusNormal, 1, 3, 1, false, true},
		{StatusNormal, 0, 1, 1, false, true},
	}
	if len(want) != len(fzFixtures) {
		t.Fatalf("%d fixtures, %d expectations", len(fzFixtures), len(want))
	}
	for k, fx := range fzFixtures {
		r := fx.build(t)
		w := want[k]
		got := fzState(r)
		if r.status != w.status || r.viewNumber != w.view || r.opNumber() != w.op || r.commitNumber != w.k ||
			r.syncing != w.syncing || r.IsPrimary() != w.prm {
			t.Errorf("fixture %q: %s", fx.name, got)
		}
	}
	if r := fzFixtures[0].build(t); !r.primary.reads.inFlight {
		t.Errorf("fixture 0 has no read round in flight")
	}
	if r := fzFixtures[6].build(t); len(r.viewChange.doViewChanges) != 1 {
		t.Errorf("fixture 6 holds %d DoViewChanges, want its own", len(r.viewChange.doViewChanges))
	}
}

// ---------------------------------------------------------------------------
// FuzzStep

// Commands of a FuzzStep program: one byte, taken modulo fzNumCommands, then
// the bytes its arguments need. A program that runs out of bytes reads zeros.
const (
	fzDeliverHead = iota // deliver the oldest message in flight
	fzDeliverAt          // j: deliver message j (reordering)
	fzDropAt             // j: lose message j
	fzDuplicateAt        // j: deliver message j and keep it in flight
	fzDrain              // k: deliver up to k+1 messages, oldest first, with what they cause
	fzTickOne            // i: tick replica i
	fzTickAll            // k: tick every replica k%8+1 times
	fzRequest            // i, client, number, op: a client request to replica i
	fzRestart            // i: replica i restarts without its state and recovers
	fzForge              // i, kind, fields...: a forged message to replica i
	fzMutate             // j, field, value...: message j, corrupted, to its receiver
	fzMisdirect          // j, i: message j to replica i instead of its receiver
	fzIsolate            // i: lose every message in flight to or from replica i
	fzDrainExcept        // i, k: like fzDrain, but lose every message to or from replica i
	fzSuspect            // i, j: SuspectDown(j) at replica i, j possibly out of range
	fzDrain2             // same as fzDrain (more weight)
	fzNumCommands
)

// fzMaxCommands bounds the work of one input.
const fzMaxCommands = 600

// fzMaxInflight bounds the queue of messages in flight; beyond it new
// messages are lost.
const fzMaxInflight = 400

type fzPacket struct {
	from, to int
	msg      proto.Message
	// forged is set for a message that no correct replica produced: forged
	// or corrupted by the fuzzer, or sent by a replica that had believed
	// such a message.
	forged bool
}

type fzCluster struct {
	t        *testing.T
	n, f     int
	cfg      Config
	replicas []*Replica
	stores   []*kv.Store
	// tainted[i] is set once replica i has taken in forged traffic; its
	// commits are no longer checked against the others', and its messages
	// are forged.
	tainted []bool
	// restarted[i] is set once replica i has been restarted.
	restarted []bool
	inflight  []fzPacket
	// committed[op] is the entry committed at op by an untainted replica.
	committed map[uint64]*messages.Entry
	seed      uint64
	reqNumber map[uint64]uint64

	in  []byte
	pos int
	cmd int // commands run so far
}

func (c *fzCluster) exhausted() bool { return c.pos >= len(c.in) }

// byte returns the next input byte, or 0 past the end.
func (c *fzCluster) byte() byte {
	if c.pos >= len(c.in) {
		c.pos++
		return 0
	}
	b := c.in[c.pos]
	c.pos++
	return b
}

func (c *fzCluster) u64raw() uint64 {
	var b [8]byte
	for k := range b {
		b[k] = c.byte()
	}
	return binary.LittleEndian.Uint64(b[:])
}

func (c *fzCluster) logf(format string, args ...any) {
	if fzTrace {
		c.t.Logf("#%d "+format, append([]any{c.cmd}, args...)...)
	}
}

func newFzCluster(t *testing.T, in []byte) *fzCluster {
	c := &fzCluster{t: t, in: in, committed: map[uint64]*messages.Entry{}, reqNumber: map[uint64]uint64{}}
	hdr := c.byte()
	c.n = 3
	if hdr&1 != 0 {
		c.n = 5
	} else if hdr&0x30 == 0x30 {
		c.n = 1
	}
	c.f = (c.n - 1) / 2
	c.cfg = Config{ClusterID: fzClusterID, ReplicaCount: c.n, HeartbeatTicks: 2, InactivityTicks: 8,
		ViewChangeTicks: 8, JitterTicks: -1, MaxBatch: []int{64, 1, 2, 3}[hdr>>1&3]}
	if hdr&8 != 0 {
		c.cfg.JitterTicks = 3
	}
	for i := 0; i < c.n; i++ {
		c.replicas = append(c.replicas, nil)
		c.stores = append(c.stores, nil)
		c.tainted = append(c.tainted, false)
		c.restarted = append(c.restarted, false)
		c.start(i, false)
	}
	c.logf("n=%d maxBatch=%d jitter=%d", c.n, c.cfg.MaxBatch, c.cfg.JitterTicks)
	return c
}

// start (re)creates replica i with a fresh seed and an empty state machine.
func (c *fzCluster) start(i int, recovering bool) {
	c.seed++
	cfg := c.cfg
	cfg.ReplicaIndex, cfg.Seed, cfg.Recovering = i, c.seed, recovering
	cfg.StateMachine = kv.NewStore()
	r, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.replicas[i], c.stores[i], c.tainted[i] = r, cfg.StateMachine.(*kv.Store), false
}

func (c *fzCluster) run() {
	for !c.exhausted() && c.cmd < fzMaxCommands {
		c.command()
		c.check()
		c.cmd++
	}
}

func (c *fzCluster) index() int { return int(c.byte()) % c.n }

func (c *fzCluster) queued() int {
	if len(c.inflight) == 0 {
		return -1
	}
	return int(c.byte()) % len(c.inflight)
}

func (c *fzCluster) remove(j int) fzPacket {
	p := c.inflight[j]
	c.inflight = append(c.inflight[:j], c.inflight[j+1:]...)
	return p
}

func (c *fzCluster) command() {
	switch int(c.byte()) % fzNumCommands {
	case fzDeliverHead:
		if len(c.inflight) > 0 {
			c.deliver(c.remove(0), "deliver")
		}
	case fzDeliverAt:
		if j := c.queued(); j >= 0 {
			c.deliver(c.remove(j), "deliver out of order")
		}
	case fzDropAt:
		if j := c.queued(); j >= 0 {
			p := c.remove(j)
			c.logf("lose %d->%d %T", p.from, p.to, p.msg)
		}
	case fzDuplicateAt:
		if j := c.queued(); j >= 0 {
			c.deliver(c.inflight[j], "duplicate")
		}
	case fzDrain, fzDrain2:
		c.drain(int(c.byte())+1, -1)
	case fzTickOne:
		c.tick(c.index())
	case fzTickAll:
		for k := int(c.byte())%8 + 1; k > 0; k-- {
			for i := range c.replicas {
				c.tick(i)
			}
		}
	case fzRequest:
		c.request(c.index())
	case fzSuspect:
		i := c.index()
		j := int(int8(c.byte()))
		c.logf("replica %d suspects %d is down", i, j)
		r := c.replicas[i]
		var out Output
		func() {
			defer func() {
				if p := recover(); p != nil {
					c.t.Fatalf("command %d: replica %d (%s) panicked on SuspectDown(%d): %v\n%s", c.cmd, i, fzState(r), j, p, debug.Stack())
				}
			}()
			out = r.SuspectDown(j)
		}()
		// A hint never decides safety, so it does not taint.
		c.take(i, out)
	case fzRestart:
		c.restart(c.index())
	case fzForge:
		i := c.index()
		c.deliver(fzPacket{from: -1, to: i, msg: c.forge(c.replicas[i]), forged: true}, "forged")
	case fzMutate:
		if j := c.queued(); j >= 0 {
			p := c.remove(j)
			p.msg = proto.Clone(p.msg) // the original may share slices with its sender's state
			c.mutate(c.replicas[p.to], p.msg)
			p.forged = true
			c.deliver(p, "corrupted")
		}
	case fzMisdirect:
		if j := c.queued(); j >= 0 {
			p := c.remove(j)
			p.to = c.index()
			c.deliver(p, "misdirected")
		}
	case fzIsolate:
		i := c.index()
		c.logf("lose everything to and from %d", i)
		kept := c.inflight[:0]
		for _, p := range c.inflight {
			if p.from != i && p.to != i {
				kept = append(kept, p)
			}
		}
		c.inflight = kept
	case fzDrainExcept:
		i := c.index()
		c.drain(int(c.byte())+1, i)
	}
}

// drain delivers up to k messages in order, losing those to or from cut.
func (c *fzCluster) drain(k, cut int) {
	for ; k > 0 && len(c.inflight) > 0; k-- {
		p := c.remove(0)
		if p.from == cut || p.to == cut {
			continue
		}
		c.deliver(p, "deliver")
	}
}

// deliver steps p's message into its receiver, checking the output.
func (c *fzCluster) deliver(p fzPacket, how string) {
	i := p.to
	r := c.replicas[i]
	c.logf("%s %d->%d forged=%v %s [to %s]", how, p.from, i, p.forged, fzShow(p.msg), fzState(r))
	drops := r.Drops().Total()
	out := fzStep(c.t, fmt.Sprintf("command %d (%s)", c.cmd, how), r, p.msg)
	// A message the replica dropped as a whole (it counted a drop and did
	// nothing else) cannot have changed what it believes; anything else
	// forged taints it.
	if p.forged && !(r.Drops().Total() > drops && out.IsEmpty()) {
		c.tainted[i] = true
	}
	c.take(i, out)
}

func (c *fzCluster) tick(i int) {
	r := c.replicas[i]
	var out Output
	func() {
		defer func() {
			if p := recover(); p != nil {
				c.t.Fatalf("command %d: replica %d (%s) panicked on Tick: %v\n%s", c.cmd, i, fzState(r), p, debug.Stack())
			}
		}()
		out = r.Tick()
	}()
	c.take(i, out)
}

// take queues the messages of replica i's output and checks its commits.
func (c *fzCluster) take(i int, out Output) {
	for _, env := range out.Messages {
		if env.To < 0 || env.To >= c.n || env.To == i {
			c.t.Fatalf("command %d: replica %d (%s) sent %s to replica %d", c.cmd, i, fzState(c.replicas[i]), fzShow(env.Msg), env.To)
		}
		if env.Msg == nil || !env.Msg.ProtoReflect().IsValid() {
			c.t.Fatalf("command %d: replica %d sent a nil message", c.cmd, i)
		}
		if len(c.inflight) < fzMaxInflight {
			c.inflight = append(c.inflight, fzPacket{from: i, to: env.To, msg: env.Msg, forged: c.tainted[i]})
		}
	}
	if c.tainted[i] {
		return
	}
	for _, e := range out.Committed {
		c.agree(i, e, "committed")
	}
}

// agree checks e, committed by untainted replica i, against what every other
// untainted replica committed at its op number.
func (c *fzCluster) agree(i int, e *messages.Entry, how string) {
	if e == nil {
		c.t.Fatalf("command %d: replica %d %s a nil entry", c.cmd, i, how)
	}
	prev, ok := c.committed[e.OpNumber]
	if !ok {
		c.committed[e.OpNumber] = e
		return
	}
	if prev != e && !proto.Equal(prev, e) {
		c.t.Fatalf("command %d: replica %d (%s) %s {%v} at op %d, another replica committed {%v}",
			c.cmd, i, fzState(c.replicas[i]), how, e, e.OpNumber, prev)
	}
}

// check runs after every command: every replica's invariants, and the
// agreement of the committed prefixes of untainted replicas.
func (c *fzCluster) check() {
	for i, r := range c.replicas {
		if err := r.CheckInvariants(); err != nil {
			c.t.Fatalf("command %d: replica %d (%s): %v", c.cmd, i, fzState(r), err)
		}
		if c.tainted[i] {
			continue
		}
		for op := uint64(1); op <= r.commitNumber; op++ {
			c.agree(i, r.log[op-1], "holds as committed")
		}
		c.hint(i)
	}
}

// fzHints counts the states hint has seen; its only purpose is to give the
// branches of hint something to do.
var fzHints [16]int

// hint runs a branch for each interesting state of an untainted replica. Go's
// fuzzer is guided by coverage, and coverage alone cannot tell a state
// reached with correct traffic, where the agreement check applies, from one
// reached with forged traffic: these branches can, so inputs that reach
// them with correct traffic are kept and mutated further.
func (c *fzCluster) hint(i int) {
	r := c.replicas[i]
	switch {
	case r.commitNumber == 0:
	case r.viewNumber == 0:
		fzHints[0]++
	case r.status == StatusNormal && r.isPrimary():
		fzHints[1]++
		if r.opNumber() > r.commitNumber {
			fzHints[2]++ // a new primary with uncommitted entries
		}
	case r.status == StatusNormal:
		fzHints[3]++
		if r.viewNumber > 1 {
			fzHints[4]++
		}
	case r.syncing:
		fzHints[5]++
	default:
		fzHints[6]++ // changing views with committed ops
	}
	if c.restarted[i] {
		switch r.status {
		case StatusRecovering:
			fzHints[7]++
		case StatusNormal:
			fzHints[8]++
			if r.commitNumber > 0 {
				fzHints[9]++ // recovered, and has committed ops
			}
		default:
			fzHints[10]++
		}
	}
	if r.commitNumber >= 3 && r.viewNumber > 0 {
		fzHints[11]++
		if r.commitNumber >= 8 {
			fzHints[12]++
		}
	}
}

func (c *fzCluster) request(i int) {
	client := uint64(c.byte()%4) + 1
	var number uint64
	switch b := c.byte(); b % 4 {
	case 0, 1:
		c.reqNumber[client]++
		number = c.reqNumber[client]
	case 2:
		number = c.reqNumber[client] // a retry (or 0, before the first)
	default:
		number = uint64(b >> 2)
	}
	m := &messages.Request{ClusterId: fzClusterID, ClientId: client, RequestNumber: number, ReplyTo: fzAddr}
	switch b := c.byte(); b % 8 {
	case 0, 1, 2, 3:
		m.Operation = kv.PutOp(fmt.Sprintf("k%d", b>>3&3), []byte{b})
	case 4:
		m.Operation = kv.GetOp(fmt.Sprintf("k%d", b>>3&3))
		m.ReadMode = messages.ReadMode(b >> 5 % 4)
	case 5:
		m.Operation = kv.CASOp(fmt.Sprintf("k%d", b>>3&3), []byte{b >> 5}, []byte{b})
	case 6:
		m.Operation = []byte{b, 0xff} // does not decode: the state machine says so
	case 7:
		m.ReplyTo = nil
		m.Operation = kv.PutOp("k", nil)
	}
	// A client is not a replica: whatever it sends, however odd, is traffic
	// the replicas must handle correctly, so it does not taint them.
	c.deliver(fzPacket{from: -1, to: i, msg: m}, "request")
}

// restart restarts replica i, unless that would leave more than f replicas
// without their state at once (VR's failure assumption).
func (c *fzCluster) restart(i int) {
	down := 0
	for j, r := range c.replicas {
		if j != i && r.status == StatusRecovering {
			down++
		}
	}
	if down >= c.f {
		return
	}
	c.logf("restart %d", i)
	c.start(i, true)
	c.restarted[i] = true
}

// Field values for forged messages: mostly close to the receiver's state, so
// that they get past the first checks, sometimes far off.

func (c *fzCluster) small() uint64 { return uint64(c.byte() % 4) }

func (c *fzCluster) value(r *Replica) uint64 {
	b := c.byte()
	switch b % 16 {
	case 0:
		return 0
	case 1:
		return uint64(b >> 4)
	case 2, 3:
		return r.viewNumber
	case 4:
		return r.viewNumber + 1 + c.small()
	case 5:
		return r.opNumber()
	case 6:
		return r.opNumber() + 1 + c.small()
	case 7:
		return r.commitNumber
	case 8:
		return r.commitNumber + 1
	case 9:
		return math.MaxUint64
	case 10:
		return math.MaxUint64 - c.small()
	case 11:
		return c.u64raw()
	case 12:
		return r.lastNormalView
	case 13:
		return r.opNumber() - min(r.opNumber(), 1+c.small())
	case 14:
		return r.viewNumber - min(r.viewNumber, 1+c.small())
	}
	// b%16 == 15: around the largest number admit takes (2^62), or 2^32.
	switch b >> 4 {
	case 1, 2, 3:
		return 1<<62 - 2 + uint64(b>>4) // 2^62-1, 2^62, 2^62+1
	case 4:
		return 1 << 63
	default:
		return 1 << 32
	}
}

func (c *fzCluster) view(r *Replica) uint64 {
	switch b := c.byte(); b % 8 {
	case 0, 1, 2, 3:
		return r.viewNumber
	case 4, 5:
		return r.viewNumber + uint64(b%8) - 3 // the next, the one after
	case 6:
		return r.viewNumber - min(r.viewNumber, 1)
	}
	return c.value(r)
}

func (c *fzCluster) cluster() uint64 {
	switch c.byte() % 16 {
	case 0:
		return 0
	case 1:
		return fzClusterID + 1
	}
	return fzClusterID
}

// sender is a sender index for a message of view v to r.
func (c *fzCluster) sender(r *Replica, v uint64) uint32 {
	switch b := c.byte(); b % 8 {
	case 0, 1, 2:
		return uint32(v % uint64(c.n)) // the primary of v
	case 3, 4:
		return uint32(int(b>>3) % c.n)
	case 5:
		return uint32(r.index)
	case 6:
		return uint32(c.n + int(b>>3))
	default:
		return math.MaxUint32 - uint32(b>>3)
	}
}

// entries builds a batch of entries of view v, normally first, first+1, ...,
// with the ops of an existing log where it has them.
func (c *fzCluster) entries(r *Replica, v, first uint64) []*messages.Entry {
	var count int
	switch b := c.byte(); b % 8 {
	case 0:
		count = 0
	case 5:
		count = c.cfg.MaxBatch
	case 6:
		count = c.cfg.MaxBatch + 1
	case 7:
		count = 70 + int(c.byte()) // a huge batch
	default:
		count = int(b % 8)
	}
	switch c.byte() % 4 {
	case 1:
		first = c.value(r)
	case 2:
		first = 1
	case 3:
		first = r.commitNumber + 1
	}
	src := c.replicas[c.index()] // whose entries to copy, where it has them
	salt := c.byte()
	es := make([]*messages.Entry, count)
	for k := range es {
		op := first + uint64(k)
		if e := src.Entry(op); e != nil && salt%2 == 0 {
			es[k] = e
			continue
		}
		es[k] = &messages.Entry{OpNumber: op, View: v, ClientId: 1000 + uint64(salt), RequestNumber: uint64(k) + 1,
			Operation: kv.PutOp(fmt.Sprintf("f%d", salt), []byte{byte(op)}), ReplyTo: fzAddr}
	}
	c.corrupt(r, es)
	return es
}

// corrupt may damage one entry of es (replacing it, never changing an entry
// that a replica may hold).
func (c *fzCluster) corrupt(r *Replica, es []*messages.Entry) {
	b := c.byte()
	if len(es) == 0 || b%8 >= 5 {
		return
	}
	k := int(c.byte()) % len(es)
	if b%8 == 0 {
		es[k] = nil
		return
	}
	if es[k] == nil {
		return
	}
	e := proto.Clone(es[k]).(*messages.Entry)
	switch b % 8 {
	case 1:
		e.OpNumber = c.value(r)
	case 2:
		e.RequestNumber = 0
	case 3:
		e.ClientId = 0
	case 4:
		e.Operation = nil
		e.ReplyTo = nil
	}
	es[k] = e
}

// log builds a whole log: someone's real log, a made-up one, or nothing.
func (c *fzCluster) log(r *Replica, v uint64) []*messages.Entry {
	var log []*messages.Entry
	switch c.byte() % 4 {
	case 0:
		log = append(log, c.replicas[c.index()].log...)
	case 1:
		log = append(log, r.log...)
	case 2:
		return nil
	case 3:
		return c.entries(r, v, 1)
	}
	if b := c.byte(); b%4 == 0 && len(log) > 0 {
		log = log[:int(c.byte())%len(log)]
	}
	c.corrupt(r, log)
	return log
}

// opNumber is mostly the op number that goes with the entries, normally
// sometimes one at either end of the range or anything.
func (c *fzCluster) opNumber(r *Replica, normal uint64) uint64 {
	switch c.byte() % 8 {
	case 4:
		return c.value(r)
	case 5:
		return math.MaxUint64
	case 6:
		return normal - 1
	case 7:
		return normal + 1
	}
	return normal
}

// opAndCommit returns an op number and a commit number for log.
func (c *fzCluster) opAndCommit(r *Replica, log []*messages.Entry) (op, commit uint64) {
	op = c.opNumber(r, uint64(len(log)))
	switch b := c.byte(); b % 4 {
	case 0:
		commit = op
	case 1:
		commit = c.value(r)
	default:
		commit = uint64(b>>2) % (uint64(len(log)) + 1)
	}
	return op, commit
}

func (c *fzCluster) nonce(r *Replica) uint64 {
	if c.byte()%4 != 0 {
		return r.recovery.nonce
	}
	return c.value(r)
}

func (c *fzCluster) snapshot(r *Replica, commit uint64) *messages.Snapshot {
	b := c.byte()
	if b%4 == 0 {
		return nil
	}
	j := c.index()
	state, err := c.stores[j].Snapshot()
	if err != nil {
		c.t.Fatal(err)
	}
	s := &messages.Snapshot{CommitNumber: c.replicas[j].commitNumber, State: state, ClientTable: c.replicas[j].clientTable.rows()}
	switch b % 4 {
	case 2:
		s.State = []byte{b, 0xff, 0x01}
		s.CommitNumber = commit
	case 3:
		s.CommitNumber = c.value(r)
		s.ClientTable = append(s.ClientTable, &messages.ClientSession{ClientId: uint64(b), RequestNumber: c.value(r)})
	}
	return s
}

// forge makes up a message for r.
func (c *fzCluster) forge(r *Replica) proto.Message {
	kind := c.byte()
	switch kind % 16 {
	case 0:
		v := c.view(r)
		m := &messages.Prepare{ClusterId: c.cluster(), View: v, CommitNumber: c.value(r)}
		m.Replica = c.sender(r, v)
		m.Entries = c.entries(r, v, r.opNumber()+1)
		return m
	case 1:
		v := c.view(r)
		return &messages.PrepareOK{ClusterId: c.cluster(), View: v, OpNumber: c.value(r), Replica: c.sender(r, v+1)}
	case 2:
		v := c.view(r)
		return &messages.Commit{ClusterId: c.cluster(), View: v, CommitNumber: c.value(r), Replica: c.sender(r, v)}
	case 3:
		v := c.view(r)
		return &messages.StartViewChange{ClusterId: c.cluster(), View: v, Replica: c.sender(r, v+1)}
	case 4:
		v := c.view(r)
		m := &messages.DoViewChange{ClusterId: c.cluster(), View: v, Replica: c.sender(r, v+1)}
		m.LastNormalView = c.value(r)
		m.Log = c.log(r, v)
		m.OpNumber, m.CommitNumber = c.opAndCommit(r, m.Log)
		return m
	case 5:
		v := c.view(r)
		m := &messages.StartView{ClusterId: c.cluster(), View: v, Replica: c.sender(r, v)}
		m.Log = c.log(r, v)
		m.OpNumber, m.CommitNumber = c.opAndCommit(r, m.Log)
		return m
	case 6:
		return &messages.Recovery{ClusterId: c.cluster(), Replica: c.sender(r, 0), Nonce: c.value(r)}
	case 7:
		v := c.value(r)
		m := &messages.RecoveryResponse{ClusterId: c.cluster(), View: v, Nonce: c.nonce(r), Replica: c.sender(r, v)}
		if c.byte()%4 != 0 {
			m.FromPrimary = true
			m.Log = c.log(r, v)
			m.OpNumber, m.CommitNumber = c.opAndCommit(r, m.Log)
			m.Snapshot = c.snapshot(r, m.CommitNumber)
		}
		return m
	case 8:
		v := c.view(r)
		return &messages.GetState{ClusterId: c.cluster(), View: v, OpNumber: c.value(r), Replica: c.sender(r, v+1)}
	case 9:
		v := c.view(r)
		m := &messages.NewState{ClusterId: c.cluster(), View: v, Replica: c.sender(r, v)}
		m.Entries = c.entries(r, v, r.commitNumber+1)
		m.OpNumber = c.opNumber(r, uint64(len(m.Entries))+r.commitNumber)
		m.CommitNumber = min(m.OpNumber, c.value(r))
		return m
	case 10:
		v := c.view(r)
		return &messages.ConfirmView{ClusterId: c.cluster(), View: v, Round: c.value(r), Replica: c.sender(r, v)}
	case 11:
		v := c.view(r)
		round := r.primary.reads.round
		if c.byte()%4 == 0 {
			round = c.value(r)
		}
		return &messages.ConfirmViewOK{ClusterId: c.cluster(), View: v, Round: round, Replica: c.sender(r, v+1)}
	case 12:
		return &messages.Request{ClusterId: c.cluster(), ClientId: c.value(r), RequestNumber: c.value(r),
			Operation: kv.PutOp("x", []byte{kind}), ReadMode: messages.ReadMode(c.byte() % 5)}
	case 13:
		return nil
	case 14: // a typed nil of a protocol message type
		return fzTypedNils[int(c.byte())%len(fzTypedNils)]
	default: // a message of the package that is not a protocol message
		return fzOthers[int(c.byte())%len(fzOthers)]
	}
}

var fzTypedNils = []proto.Message{
	(*messages.Request)(nil), (*messages.Prepare)(nil), (*messages.PrepareOK)(nil), (*messages.Commit)(nil),
	(*messages.StartViewChange)(nil), (*messages.DoViewChange)(nil), (*messages.StartView)(nil),
	(*messages.Recovery)(nil), (*messages.RecoveryResponse)(nil), (*messages.GetState)(nil),
	(*messages.NewState)(nil), (*messages.ConfirmView)(nil), (*messages.ConfirmViewOK)(nil),
}

var fzOthers = []proto.Message{
	&messages.Reply{View: 1}, &messages.Entry{OpNumber: 1}, &messages.ClientAddress{}, &messages.Snapshot{},
	&messages.ClientSession{ClientId: 1}, &messages.Entry{},
}

// mutate corrupts one field of m, a clone of a message in flight to r.
func (c *fzCluster) mutate(r *Replica, m proto.Message) {
	pm := m.ProtoReflect()
	fields := pm.Descriptor().Fields()
	fd := fields.Get(int(c.byte()) % fields.Len())
	switch {
	case fd.IsList():
		es := fzEntriesOf(m)
		if es == nil {
			return
		}
		switch b := c.byte(); b % 4 {
		case 0:
			*es = c.entries(r, r.viewNumber, r.opNumber()+1)
		case 1:
			if len(*es) > 0 {
				*es = (*es)[int(b>>2)%len(*es):]
			}
		default:
			c.corrupt(r, *es)
		}
	case fd.Kind() == protoreflect.Uint64Kind:
		pm.Set(fd, protoreflect.ValueOfUint64(c.value(r)))
	case fd.Kind() == protoreflect.Uint32Kind:
		pm.Set(fd, protoreflect.ValueOfUint32(c.sender(r, r.viewNumber)))
	case fd.Kind() == protoreflect.BoolKind:
		pm.Set(fd, protoreflect.ValueOfBool(!pm.Get(fd).Bool()))
	case fd.Kind() == protoreflect.EnumKind:
		pm.Set(fd, protoreflect.ValueOfEnum(protoreflect.EnumNumber(c.byte()%4)))
	case fd.Kind() == protoreflect.BytesKind:
		pm.Set(fd, protoreflect.ValueOfBytes([]byte{c.byte()}))
	case fd.Kind() == protoreflect.MessageKind:
		if s, ok := m.(*messages.RecoveryResponse); ok && fd.Name() == "snapshot" {
			s.Snapshot = c.snapshot(r, s.CommitNumber)
			return
		}
		pm.Clear(fd)
	}
}

// fzEntriesOf returns the entry list of m, if it has one.
func fzEntriesOf(m proto.Message) *[]*messages.Entry {
	switch m := m.(type) {
	case *messages.Prepare:
		return &m.Entries
	case *messages.NewState:
		return &m.Entries
	case *messages.DoViewChange:
		return &m.Log
	case *messages.StartView:
		return &m.Log
	case *messages.RecoveryResponse:
		return &m.Log
	}
	return nil
}

// fzProgram assembles a FuzzStep input from a header byte and commands with
// their argument bytes.
func fzProgram(header byte, cmds ...[]byte) []byte {
	p := []byte{header}
	for _, c := range cmds {
		p = append(p, c...)
	}
	return p
}

func fzRepeat(k int, cmds ...[]byte) []byte {
	var p []byte
	for ; k > 0; k-- {
		for _, c := range cmds {
			p = append(p, c...)
		}
	}
	return p
}

func FuzzStep(f *testing.F) {
	put := func(i, client byte) []byte { return []byte{fzRequest, i, client, 0, client << 3} }
	drain := []byte{fzDrain, 200}
	tickAll := func(k byte) []byte { return []byte{fzTickAll, k} }
	// Normal operation: requests committed by a quorum, n = 3 and n = 5.
	f.Add(fzProgram(0, put(0, 0), drain, put(0, 1), drain, put(1, 2), drain, tickAll(3), drain))
	f.Add(fzProgram(1, put(0, 0), drain, put(0, 1), drain, tickAll(3), drain))
	// A lone replica (n = 1) commits on its own; a hint about an unknown replica.
	f.Add(fzProgram(0x30, put(0, 0), put(0, 1), []byte{fzRequest, 0, 1, 4, 4}, []byte{fzSuspect, 0, 3}, tickAll(2), drain))
	// A backup suspects its primary: an early view change.
	f.Add(fzProgram(0, put(0, 0), drain, []byte{fzSuspect, 1, 0}, drain, put(1, 1), drain, tickAll(2), drain))
	// Batching with MaxBatch 2: several requests before any delivery.
	f.Add(fzProgram(4, put(0, 0), put(0, 1), put(0, 2), put(0, 3), put(0, 0), drain, tickAll(2), drain))
	// Uncommitted entries at the primary: the PrepareOKs are lost.
	f.Add(fzProgram(0, put(0, 0), put(0, 1), []byte{fzDeliverHead}, []byte{fzDeliverHead}, []byte{fzIsolate, 0}, tickAll(1)))
	// The primary is cut off: a view change to view 1, then more requests.
	f.Add(fzProgram(0, put(0, 0), drain, fzRepeat(12, tickAll(0), []byte{fzDrainExcept, 0, 100}), put(1, 1), drain, tickAll(4), drain))
	f.Add(fzProgram(1, put(0, 0), put(0, 1), drain, fzRepeat(12, tickAll(0), []byte{fzDrainExcept, 0, 100}), put(1, 2), drain))
	// A backup restarts and recovers; later the primary does.
	f.Add(fzProgram(0, put(0, 0), drain, []byte{fzRestart, 1}, tickAll(2), drain, put(0, 1), drain,
		[]byte{fzRestart, 0}, fzRepeat(12, tickAll(0), drain), put(1, 2), drain))
	// Forged traffic: a Prepare from the real primary, a huge batch, a NewState.
	f.Add(fzProgram(0, put(0, 0), drain, []byte{fzForge, 1, 0, 0, 1, 1, 1, 0, 1, 2, 0, 0, 7}, drain))
	f.Add(fzProgram(0, put(0, 0), drain, []byte{fzForge, 2, 0, 1, 1, 8, 7, 50, 0, 0, 0, 7}, drain))
	f.Add(fzProgram(0, put(0, 0), drain, []byte{fzForge, 1, 9, 1, 1, 0, 1, 0, 0, 0, 7, 0, 5}, drain))
	// The short DoViewChange with numbers in range (its corpus file
	// d8721c12a21ae093 now stops at admit, on commit number 2^64-1): replica
	// 0 commits ops 1 and 2, a forged StartViewChange{view 3, replica 1}
	// makes it the new primary with its own DoViewChange, and a forged
	// DoViewChange{view 3, replica 2, last normal view 2, empty log} is
	// chosen; startView must drop it rather than start with commit > op.
	f.Add(fzProgram(0, put(0, 0), put(0, 1), drain,
		[]byte{fzForge, 0, 3, 7, 0x31, 2, 11},
		[]byte{fzForge, 0, 4, 7, 0x31, 2, 19, 0x21, 2, 0, 0}, drain))
	// Corrupted and misdirected real messages.
	f.Add(fzProgram(0, put(0, 0), []byte{fzMutate, 0, 3, 6}, drain, put(0, 1), []byte{fzMisdirect, 1, 2}, drain))
	// Out-of-order delivery and duplicates.
	f.Add(fzProgram(0, put(0, 0), put(0, 1), put(0, 2), []byte{fzDeliverAt, 1}, []byte{fzDuplicateAt, 0}, drain))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		newFzCluster(t, data).run()
	})
}
