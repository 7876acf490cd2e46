package vsr

// FuzzStep: a program drives a small cluster (see fuzz_test.go); the forged
// and corrupted messages it may inject are made in fuzz_forge_test.go.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime/debug"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

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

// The header byte of a program: bit 0 makes n = 5, bits 4 and 5 both set
// (without bit 0) make n = 1; bits 1-2 choose MaxBatch; bit 3 turns on
// jitter; bit 6 takes the default history bounds instead of the small ones;
// bit 7 holds each checkpoint job until its replica's next tick instead of
// running it at once.
const (
	fzHdrDefaultBounds = 0x40
	fzHdrLateJobs      = 0x80
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
	// registered[c] is set once client c has sent its registration, and
	// cleared when a reply says its session expired.
	registered map[uint64]bool
	// lateJobs holds checkpoint jobs until their replica's next tick.
	lateJobs bool
	jobs     map[int][]*CheckpointJob
	// replyErrors counts the replies the replicas sent, by error.
	replyErrors map[messages.ReplyError]int

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
	c := &fzCluster{t: t, in: in, committed: map[uint64]*messages.Entry{}, reqNumber: map[uint64]uint64{},
		registered: map[uint64]bool{}, jobs: map[int][]*CheckpointJob{}, replyErrors: map[messages.ReplyError]int{}}
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
	if hdr&fzHdrDefaultBounds == 0 {
		c.cfg.CheckpointInterval, c.cfg.TrailingOps, c.cfg.PipelineMax = 6, 2, 8
		c.cfg.MaxMessageBytes, c.cfg.SessionIdleOps, c.cfg.MaxSessions = MinMaxMessageBytes, 40, 3
	}
	c.lateJobs = hdr&fzHdrLateJobs != 0
	for i := 0; i < c.n; i++ {
		c.replicas = append(c.replicas, nil)
		c.stores = append(c.stores, nil)
		c.tainted = append(c.tainted, false)
		c.restarted = append(c.restarted, false)
		c.start(i, false)
	}
	c.logf("n=%d maxBatch=%d jitter=%d checkpoint every %d lateJobs=%v", c.n, c.cfg.MaxBatch, c.cfg.JitterTicks,
		c.cfg.CheckpointInterval, c.lateJobs)
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
	c.checkStates()
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

// tick ticks replica i, first handing it the checkpoint results held for it
// (whether or not it is still the replica that asked: a restarted one must
// ignore them).
func (c *fzCluster) tick(i int) {
	r := c.replicas[i]
	var out Output
	func() {
		defer func() {
			if p := recover(); p != nil {
				c.t.Fatalf("command %d: replica %d (%s) panicked on Tick: %v\n%s", c.cmd, i, fzState(r), p, debug.Stack())
			}
		}()
		jobs := c.jobs[i]
		delete(c.jobs, i)
		for _, job := range jobs {
			c.logf("checkpoint at op %d done at %d [%s]", job.OpNumber, i, fzState(r))
			c.take(i, r.CheckpointDone(job.Run()))
			c.checkReplica(i)
		}
		out = r.Tick()
	}()
	c.take(i, out)
}

// take queues the messages of replica i's output, checks its commits and
// the size of its messages, notes replies that say a session expired, and
// runs or holds its checkpoint job.
func (c *fzCluster) take(i int, out Output) {
	r := c.replicas[i]
	for _, env := range out.Messages {
		if env.To < 0 || env.To >= c.n || env.To == i {
			c.t.Fatalf("command %d: replica %d (%s) sent %s to replica %d", c.cmd, i, fzState(r), fzShow(env.Msg), env.To)
		}
		if env.Msg == nil || !env.Msg.ProtoReflect().IsValid() {
			c.t.Fatalf("command %d: replica %d sent a nil message", c.cmd, i)
		}
		if size := proto.Size(env.Msg); size > r.cfg.MaxMessageBytes && !c.tainted[i] {
			c.t.Fatalf("command %d: replica %d (%s) sent a %T of %d bytes, over MaxMessageBytes %d",
				c.cmd, i, fzState(r), env.Msg, size, r.cfg.MaxMessageBytes)
		}
		if len(c.inflight) < fzMaxInflight {
			c.inflight = append(c.inflight, fzPacket{from: i, to: env.To, msg: env.Msg, forged: c.tainted[i]})
		}
	}
	for _, rep := range out.Replies {
		c.replyErrors[rep.Reply.Error]++
		if rep.Reply.Error == messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED {
			delete(c.registered, rep.Reply.ClientId)
		}
	}
	if job := out.Checkpoint; job != nil {
		if job.OpNumber > r.commitNumber {
			c.t.Fatalf("command %d: replica %d (%s) asked for a checkpoint at op %d, past its commit number",
				c.cmd, i, fzState(r), job.OpNumber)
		}
		if c.lateJobs {
			c.jobs[i] = append(c.jobs[i], job)
		} else {
			c.take(i, r.CheckpointDone(job.Run()))
		}
	}
	if c.tainted[i] {
		return
	}
	for _, e := range out.Committed {
		c.agree(i, e, "committed")
	}
}

// request sends a client request to replica i. A client's first request in
// the run is preceded by its registration, as the client core does, and so
// is its first after a reply said its session had expired.
func (c *fzCluster) request(i int) {
	client := uint64(c.byte()%4) + 1
	if !c.registered[client] {
		c.registered[client] = true
		c.reqNumber[client]++
		c.deliver(fzPacket{from: -1, to: i, msg: &messages.Request{ClusterId: fzClusterID, ClientId: client,
			RequestNumber: c.reqNumber[client], ReplyTo: fzAddr, Register: true}}, "registration")
	}
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
	case 0, 1, 2:
		m.Operation = kv.PutOp(fmt.Sprintf("k%d", b>>3&3), []byte{b})
	case 3: // a large value: a few make a checkpoint of several chunks, the largest are too large
		m.Operation = kv.PutOp(fmt.Sprintf("k%d", b>>3&3), bytes.Repeat([]byte{b}, 150+2*int(b)))
	case 4:
		m.Operation = kv.GetOp(fmt.Sprintf("k%d", b>>3&3))
		m.ReadMode = messages.ReadMode(b >> 5 % 4)
	case 5:
		m.Operation = kv.CASOp(fmt.Sprintf("k%d", b>>3&3), []byte{b >> 5}, []byte{b})
	case 6:
		m.Operation = []byte{b, 0xff} // does not decode: the state machine says so
	case 7:
		if b&8 != 0 {
			m.Register = true // registering again, or with another number
			m.Operation = nil
			break
		}
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
	for _, seed := range fzStepSeeds() {
		f.Add(seed.program)
	}
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		newFzCluster(t, data).run()
	})
}
