package actors

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/internal/procstats"
	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// DefaultTickInterval is the length of one core tick. With the core's
// default timing a primary heartbeats every 50 ms and a backup suspects a
// silent primary after 300-450 ms.
const DefaultTickInterval = 10 * time.Millisecond

// ReplicaConfig configures a replica actor.
type ReplicaConfig struct {
	// Core is the core's configuration. StateMachine, Seed and Recovering
	// are filled in by the actor: a state machine from NewStateMachine, a
	// fresh random seed, and Recovering for every instance but a first one
	// that starts a new group.
	Core vsr.Config
	// NewStateMachine makes the replica's state machine, anew at every
	// (re)start.
	NewStateMachine statemachine.Factory
	// Peers maps replica index to PID; Peers[Core.ReplicaIndex] is this
	// replica. It is used when Resolve is nil, for a group whose members
	// never change.
	Peers []*actor.PID
	// Resolve, if set, finds the actor of the member named name (a name of
	// Core.Members, or of a configuration a reconfiguration brought): the
	// replica then sends by member name and checks each message's sender
	// against the member the message names, in the message's own epoch.
	// A group that reconfigures (Core.Reconfigurable, Core.Joining) needs
	// it, since an index names different members in different epochs. It
	// must be cheap and must not block; nil for a name it cannot place.
	Resolve func(name string) *actor.PID
	// TickInterval is the length of one core tick (DefaultTickInterval if
	// zero).
	TickInterval time.Duration
	// Logger receives the actor's own log lines (discarded if nil).
	Logger *slog.Logger
	// OnEvent, if set, is called from the actor's goroutine on every change
	// of status or view. It must not block.
	OnEvent func(Event)
	// DropInbound is a test and fault-injection hook; leave it nil in
	// production. If set, it is called from the actor's goroutine on every
	// replica-to-replica message this replica receives, before the message
	// reaches the core or the sender check, and a message for which it
	// returns true is dropped unseen, as if the network had lost it. It sees
	// peer messages only: client requests, status queries, timer ticks and
	// PeerDown hints are never offered to it, so a replica whose hook drops
	// everything is a replica that can send to its peers and serve its
	// clients but hears none of its peers (a "deaf" replica, as with an
	// inbound queue full for peers only). It must be cheap and must not
	// block; nil costs one comparison per message.
	DropInbound func(m proto.Message) bool
	// Observer, if set, receives the replica's protocol events (see
	// Observer); nil costs one comparison per batch, tick and message sent.
	Observer Observer
	// OpenStore, if set, opens the replica's durable storage; it is called
	// at every start of an instance, which loads what the store holds and
	// comes back from it (see vsr.Restart): an instance that replaces a
	// failed one restarts from disk instead of running recovery. The store
	// is closed when the instance stops. Nil keeps everything in memory,
	// the paper's design: a restarted replica then recovers from its peers.
	OpenStore func() (storage.Store, error)
}

// Event is a change in a replica's status or view.
type Event struct {
	Replica int
	Status  vsr.Status
	View    uint64
	Primary bool
	// Restarted is set on the first event of an instance that replaced a
	// stopped or failed one: it runs recovery.
	Restarted bool
	// FromDisk is set on the first event of an instance that came back from
	// its durable storage (Status says whether it trusted it or recovers).
	FromDisk bool
	// Failed is set when the replica stopped for good because its storage
	// failed: it acknowledged nothing that was not written.
	Failed error
	// Epoch is the replica's epoch, and Left is set on the last event of
	// a replica that a reconfiguration removed from the group: a quorum
	// of the new configuration holds the state, and the replica actor has
	// stopped for good (docs/reconfiguration.md).
	Epoch uint64
	Left  bool
	// Members is the configuration of Epoch, in index order (shared: do
	// not modify it).
	Members []string
}

// same reports whether e and o say the same, members aside: they change
// only with the epoch.
func (e Event) same(o Event) bool {
	return e.Replica == o.Replica && e.Status == o.Status && e.View == o.View && e.Primary == o.Primary &&
		e.Restarted == o.Restarted && e.FromDisk == o.FromDisk && e.Failed == o.Failed && e.Epoch == o.Epoch &&
		e.Left == o.Left
}

// ReplicaStatus answers a StatusQuery.
type ReplicaStatus struct {
	Replica        int
	Status         vsr.Status
	View           uint64
	LastNormalView uint64
	OpNumber       uint64
	CommitNumber   uint64
	Primary        int // the primary of View
	// Digest is a SHA-256 of the state machine's snapshot and the commit
	// number, set only when the query asked for it.
	Digest [32]byte
	// Drops counts the messages the core dropped, by reason; Foreign, the
	// replica messages dropped because they came from an address that is
	// not the named replica's.
	Drops   vsr.Drops
	Foreign uint64
	// Oversized counts the messages not sent because they exceeded
	// MaxMessageBytes: always zero unless the core has a bug.
	Oversized uint64
	// LogBase is the op number before the first entry the log holds, and
	// CheckpointOpNumber the op of the latest checkpoint.
	LogBase            uint64
	CheckpointOpNumber uint64
	// Sessions is the number of open client sessions.
	Sessions int
	// LargestMessage is the largest message this instance has sent, in
	// bytes (replies to clients in its own process are not sized); HeapInUse the process's heap in use (with WithMemory only).
	LargestMessage int
	HeapInUse      uint64
	// CheckpointsInstalled counts checkpoints installed from peers by
	// state transfer; CheckpointFailures, checkpoint encodings that failed.
	CheckpointsInstalled uint64
	CheckpointFailures   uint64
	// Allocs and AllocBytes count the hosting process's heap allocations
	// since it started (objects and bytes), read without a collection:
	// the difference over a window is the allocation cost of the work done
	// in it.
	Allocs, AllocBytes uint64
	// Epoch is the replica's epoch and Members the names of its
	// configuration, in index order.
	Epoch   uint64
	Members []string
}

// StatusQuery asks a replica actor for its ReplicaStatus (with Respond).
//
// WithDigest asks for a digest of the whole state machine: it encodes and
// hashes the state, O(state size) per query, on another goroutine for a state
// machine that implements statemachine.Checkpointer and on the replica's own
// otherwise. Leave it unset for polling, health checks and finding the
// primary. WithMemory asks for the process's heap after a garbage collection,
// which stalls the replica for the collection: for diagnostics only.
type StatusQuery struct{ WithDigest, WithMemory bool }

// Crash makes a replica actor panic, as a bug would: its supervisor restarts
// it and it comes back through VR recovery. For tests and demos.
type Crash struct{}

// tick is the timer message; gen tells the current timer from stale ones.
type tick struct{ gen uint64 }

// checkpointDone carries an encoded checkpoint back to the instance that
// asked for it (gen): encoding a large state runs on its own goroutine, so
// that the replica keeps serving meanwhile.
type checkpointDone struct {
	gen uint64
	res vsr.CheckpointResult
}

// generations numbers timers across all instances, so a tick scheduled by an
// instance that has since been restarted never matches the new one's.
var generations atomic.Uint64

// NewReplicaProps returns the props of replica actor cfg.Core.ReplicaIndex.
// The first instance the props produce starts a new group (normal in view
// 0, empty) unless cfg.Core.Recovering is set; every later instance, made by
// a supervisor after a failure, runs recovery: it never answers as if it
// still had the state the failed instance held.
func NewReplicaProps(cfg ReplicaConfig) *actor.Props {
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	var instances atomic.Int64
	memo := &membership{}
	return actor.PropsFromProducer(func() actor.Actor {
		n := instances.Add(1)
		return &replicaActor{cfg: cfg, recovering: cfg.Core.Recovering || n > 1, memo: memo}
	}, actor.WithDispatcher(dispatcher()))
}

type replicaActor struct {
	cfg ReplicaConfig
	// pending is the batch of protocol messages not yet stepped, and
	// markerQueued says a stepBatch marker is on its way (batch.go).
	pending      []proto.Message
	markerQueued bool
	recovering   bool
	memo         *membership
	noted        notedState // as of the last memo.note
	core         *vsr.Replica
	sm           statemachine.StateMachine
	timers       *scheduler.TimerScheduler
	gen          uint64
	last         Event
	foreign      uint64 // replica messages dropped for coming from the wrong address
	oversized    Oversized
	maxBytes     int // the core's MaxMessageBytes
	// localAddress is this actor system's address: messages to it stay in
	// the process.
	localAddress string
	largest      int // the largest message sent
	// digestWaiters are the status queries waiting for the digest being
	// computed (see respondStatus).
	digestWaiters []digestWaiter
	// store and persister are set when the replica keeps a disk
	// (ReplicaConfig.OpenStore).
	store     storage.Store
	persister *persister
}

// Receive dispatches on the message type: lifecycle, timer, status and crash
// messages are the actor's own; every protocol message goes to the core.
func (a *replicaActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *messages.Request, *messages.Prepare, *messages.PrepareOK, *messages.Commit,
		*messages.StartViewChange, *messages.DoViewChange, *messages.StartView,
		*messages.Recovery, *messages.RecoveryResponse, *messages.GetState, *messages.NewState,
		*messages.ConfirmView, *messages.ConfirmViewOK, *messages.GetCheckpoint, *messages.CheckpointChunk,
		*messages.ViewChangeProbe, *messages.ViewChangeProbeOK, *messages.StartEpoch, *messages.EpochStarted,
		*messages.EpochQuery, *messages.EpochEnded, *stepBatch:
	default:
		a.stepPending(ctx) // whatever comes next sees the messages before it
	}
	switch m := ctx.Message().(type) {
	case *stepBatch:
		a.onBatchMarker(ctx)
	case *actor.Started:
		a.start(ctx)
	case *actor.Stopping, *actor.Restarting:
		a.gen = 0 // any tick still in flight is now stale
		if a.cfg.Observer != nil && a.core != nil {
			a.cfg.Observer.Observe(a.observation(ObservedStopped))
		}
		a.closeStore()
	case *storageFailed:
		a.onStorageFailed(ctx, m)
	case *tick:
		a.onTick(ctx, m)
	case *checkpointDone:
		if m.gen == a.gen && a.core != nil {
			if m.res.Err != nil {
				a.logger().Error("vsr: checkpoint failed", "replica", a.core.Index(), "op", m.res.OpNumber, "err", m.res.Err)
			}
			before, observed := a.beforeStep()
			out := a.core.CheckpointDone(m.res)
			a.afterStep(before, observed, false)
			a.carryOut(ctx, out)
		}
	case *digestDone:
		a.onDigestDone(ctx, m)
	case *StatusQuery:
		a.respondStatus(ctx, m.WithDigest, m.WithMemory, func(s ReplicaStatus) any { return s })
	case *StatusRequest:
		a.respondStatus(ctx, m.WithDigest, m.WithMemory, func(s ReplicaStatus) any { return s.proto() })
	case *Crash:
		panic("vsr: replica crashed on purpose")
	case *PeerDown:
		a.onPeerDown(ctx, m)
	case *messages.Request:
		if a.core != nil {
			a.enqueue(ctx, m)
		}
	case *messages.Prepare, *messages.PrepareOK, *messages.Commit,
		*messages.StartViewChange, *messages.DoViewChange, *messages.StartView,
		*messages.Recovery, *messages.RecoveryResponse, *messages.GetState, *messages.NewState,
		*messages.ConfirmView, *messages.ConfirmViewOK, *messages.GetCheckpoint, *messages.CheckpointChunk,
		*messages.ViewChangeProbe, *messages.ViewChangeProbeOK, *messages.StartEpoch, *messages.EpochStarted,
		*messages.EpochQuery, *messages.EpochEnded:
		pm := m.(proto.Message)
		if a.cfg.DropInbound != nil && a.cfg.DropInbound(pm) {
			return // fault injection: lost before it reached this replica
		}
		if a.core != nil && a.fromPeer(ctx, pm) {
			a.enqueue(ctx, pm)
		}
	}
}

// replicaMessage is what every replica-to-replica message has.
type replicaMessage interface{ GetReplica() uint32 }

// fromPeer checks that a replica message comes from the node of the replica
// it names: a message that claims to be replica j's but was sent from
// another address (a node outside the configuration, or one impersonating a
// member) is dropped and counted. With Resolve the name is the member the
// core attributes the message to in its own epoch (vsr.Replica.SenderOf); a
// message the core cannot attribute is passed on, as the core drops it
// unread. The core then checks the cluster ID and the fields.
func (a *replicaActor) fromPeer(ctx actor.Context, m proto.Message) bool {
	sender := ctx.Sender()
	if a.cfg.Resolve != nil {
		name, known := a.core.SenderOf(m)
		if !known {
			return true
		}
		if pid := a.cfg.Resolve(name); pid != nil && sender != nil && sender.Address == pid.Address {
			return true
		}
		a.foreign++
		return false
	}
	j := int(m.(replicaMessage).GetReplica())
	if j < len(a.cfg.Peers) && sender != nil && sender.Address == a.cfg.Peers[j].Address {
		return true
	}
	a.foreign++
	return false
}

// target is the actor an envelope of the core goes to, or nil.
func (a *replicaActor) target(env vsr.Envelope) *actor.PID {
	return route(env, a.cfg.Resolve, a.cfg.Peers)
}

// PeerDown is a membership hint: the node at Address is known to be down
// (the transport lost it). If it hosts the primary, the view change starts
// now rather than after the inactivity timeout; the hint decides nothing
// else.
type PeerDown struct{ Address string }

func (a *replicaActor) onPeerDown(ctx actor.Context, m *PeerDown) {
	if a.core == nil {
		return
	}
	if a.cfg.Resolve == nil {
		for j, pid := range a.cfg.Peers {
			if j != a.core.Index() && pid.Address == m.Address {
				a.suspectDown(ctx, j)
			}
		}
		return
	}
	for j, name := range a.core.Members() {
		if pid := a.cfg.Resolve(name); j != a.core.Index() && pid != nil && pid.Address == m.Address {
			a.suspectDown(ctx, j)
			return
		}
	}
}

// suspectDown tells the core that replica j's node is down.
func (a *replicaActor) suspectDown(ctx actor.Context, j int) {
	before, observed := a.beforeStep()
	out := a.core.SuspectDown(j)
	a.afterStep(before, observed, true)
	a.carryOut(ctx, out)
}

// start makes the core: new, or recovering after a restart, or back from
// its disk.
func (a *replicaActor) start(ctx actor.Context) {
	a.sm = a.cfg.NewStateMachine()
	cfg := a.cfg.Core
	cfg.StateMachine, cfg.Seed, cfg.Recovering = a.observed(a.sm), randomSeed(), a.recovering
	cfg = a.memo.restartConfig(cfg, a.recovering)
	a.gen = generations.Add(1)
	var core *vsr.Replica
	var err error
	fromDisk := false
	if a.cfg.OpenStore != nil {
		core, fromDisk, err = a.startFromStore(ctx, cfg)
	} else {
		core, err = vsr.New(cfg)
	}
	if err != nil {
		a.logger().Error("vsr: cannot start replica", "replica", cfg.ReplicaIndex, "err", err)
		if a.cfg.OnEvent != nil {
			a.cfg.OnEvent(Event{Replica: cfg.ReplicaIndex, Status: vsr.StatusRecovering,
				Failed: fmt.Errorf("vsr: replica %d cannot start: %w", cfg.ReplicaIndex, err)})
		}
		ctx.Stop(ctx.Self())
		return
	}
	a.core = core
	a.localAddress = ctx.Self().Address
	a.maxBytes = cfg.MaxMessageBytes
	if a.maxBytes == 0 {
		a.maxBytes = vsr.DefaultMaxMessageBytes
	}
	a.timers = scheduler.NewTimerScheduler(ctx.ActorSystem().Root)
	a.reportStart(a.recovering && !fromDisk, fromDisk)
	if a.cfg.Observer != nil && core.IsPrimary() {
		a.cfg.Observer.Observe(a.observation(ObservedLeadershipStarted))
	}
	a.scheduleTick(ctx)
}

func (a *replicaActor) onTick(ctx actor.Context, m *tick) {
	if m.gen != a.gen || a.core == nil {
		return
	}
	before, observed := a.beforeStep()
	out := a.core.Tick()
	a.afterStep(before, observed, true)
	a.carryOut(ctx, out)
	a.scheduleTick(ctx)
}

func (a *replicaActor) scheduleTick(ctx actor.Context) {
	a.timers.SendOnce(a.cfg.TickInterval, ctx.Self(), &tick{gen: a.gen})
}

// carryOut does what the core asked, in its order. The core has already
// executed committed ops against the state machine; what is left is to start
// encoding a checkpoint it captured, then send its messages to replicas, then
// its replies to clients. (HardState is not written: VR recovers a restarted
// replica from its peers.) A message over the core's MaxMessageBytes is a bug
// in the core: it is counted and logged, and not sent, since the transport
// would refuse it together with the messages batched with it.
func (a *replicaActor) carryOut(ctx actor.Context, out vsr.Output) {
	if job := out.Checkpoint; job != nil {
		a.runCheckpoint(ctx, job)
	}
	if a.persister != nil {
		a.persist(ctx, out)
		a.report(false)
		if out.Left {
			a.leave(ctx)
		}
		return
	}
	for _, env := range out.Messages {
		if to := a.target(env); to != nil && a.allow(env.Msg, to) {
			ctx.Request(to, env.Msg) // with this actor as sender: see fromPeer
		}
	}
	for _, r := range out.Replies {
		to := actor.NewPID(r.To.Address, r.To.Id)
		if a.allow(r.Reply, to) {
			ctx.Send(to, r.Reply)
		}
	}
	a.report(false)
	if out.Left {
		a.leave(ctx)
	}
}

// allow checks an outgoing message against MaxMessageBytes and notes the
// largest so far. A reply to a client in this process is never encoded, and
// sizing it (a walk of the whole message, one per op) cost more than
// sending it, so it is not sized.
func (a *replicaActor) allow(m proto.Message, to *actor.PID) bool {
	if _, isReply := m.(*messages.Reply); isReply && to.Address == a.localAddress {
		if a.cfg.Observer != nil && a.core != nil {
			a.observeSent(m, 0)
		}
		return true
	}
	size := proto.Size(m)
	a.largest = max(a.largest, size)
	if !a.oversized.Allow(m, size, a.maxBytes, to, a.logger()) {
		return false
	}
	if a.cfg.Observer != nil && a.core != nil {
		a.observeSent(m, size)
	}
	return true
}

// report emits an Event when the status or view changed.
func (a *replicaActor) report(restarted bool) { a.reportStart(restarted, false) }

// reportStart is report for an instance's first event.
func (a *replicaActor) reportStart(restarted, fromDisk bool) {
	if noted := (notedState{a.core.Status(), a.core.Epoch()}); noted != a.noted {
		// Only a change of status or epoch changes the membership: the
		// shared record's lock stays off the per-step path.
		a.noted = noted
		a.memo.note(a.core)
	}
	if a.cfg.OnEvent == nil {
		return
	}
	e := Event{Replica: a.core.Index(), Status: a.core.Status(), View: a.core.View(),
		Primary: a.core.IsPrimary(), Restarted: restarted, FromDisk: fromDisk, Epoch: a.core.Epoch(),
		Members: a.core.Members()}
	if restarted || fromDisk || !e.same(a.last) {
		a.last = e
		a.cfg.OnEvent(e)
	}
}

// respondStatus answers a status query. Without a digest the answer costs
// nothing. The digest hashes the state machine's whole state, O(state size):
// for a state machine that implements statemachine.Checkpointer the state is
// captured at once and encoded and hashed on another goroutine, so that the
// replica does not stall; otherwise it is encoded here. One digest is
// computed at a time: queries that arrive meanwhile get the same answer (the
// status as of that capture, so digest and commit number agree), at most
// maxDigestWaiters of them; past that a query is not answered and its asker
// times out, so that a flood of digest queries costs one encoding, not one
// each.
func (a *replicaActor) respondStatus(ctx actor.Context, withDigest, withMemory bool, as func(ReplicaStatus) any) {
	s := a.status()
	s.Allocs, s.AllocBytes = procstats.Allocs()
	if withMemory {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.HeapInUse = ms.HeapInuse
	}
	if !withDigest || a.core == nil {
		ctx.Respond(as(s))
		return
	}
	sender := ctx.Sender()
	if sender == nil || len(a.digestWaiters) >= maxDigestWaiters {
		return
	}
	a.digestWaiters = append(a.digestWaiters, digestWaiter{to: sender, as: as, heap: s.HeapInUse})
	if len(a.digestWaiters) > 1 {
		return // one is being computed
	}
	var encode func() ([]byte, error)
	if c, ok := a.sm.(statemachine.Checkpointer); ok {
		encode = c.Checkpoint()
	} else {
		snap, err := a.sm.Snapshot()
		encode = func() ([]byte, error) { return snap, err }
	}
	self, gen, root := ctx.Self(), a.gen, ctx.ActorSystem().Root
	go func() {
		if snap, err := encode(); err == nil {
			h := sha256.New()
			_ = binary.Write(h, binary.BigEndian, s.CommitNumber)
			h.Write(snap)
			copy(s.Digest[:], h.Sum(nil))
		}
		root.Send(self, &digestDone{gen: gen, status: s})
	}()
}

// maxDigestWaiters bounds the digest queries held while one digest is
// computed.
const maxDigestWaiters = 64

// digestWaiter is a status query waiting for the digest being computed.
type digestWaiter struct {
	to   *actor.PID
	as   func(ReplicaStatus) any
	heap uint64
}

// digestDone carries a computed digest back to the instance (gen) that
// started it.
type digestDone struct {
	gen    uint64
	status ReplicaStatus
}

// onDigestDone answers every query that waited for the digest.
func (a *replicaActor) onDigestDone(ctx actor.Context, m *digestDone) {
	if m.gen != a.gen {
		return
	}
	for _, w := range a.digestWaiters {
		s := m.status
		s.HeapInUse = w.heap
		ctx.Send(w.to, w.as(s))
	}
	a.digestWaiters = nil
}

func (a *replicaActor) status() ReplicaStatus {
	if a.core == nil {
		return ReplicaStatus{Replica: a.cfg.Core.ReplicaIndex, Status: vsr.StatusRecovering}
	}
	failed, installed := a.core.CheckpointStats()
	return ReplicaStatus{Replica: a.core.Index(), Status: a.core.Status(), View: a.core.View(),
		LastNormalView: a.core.LastNormalView(), OpNumber: a.core.OpNumber(),
		CommitNumber: a.core.CommitNumber(), Primary: a.core.Primary(), Drops: a.core.Drops(), Foreign: a.foreign,
		Oversized: a.oversized.Count(), LogBase: a.core.LogBase(), CheckpointOpNumber: a.core.CheckpointOpNumber(),
		Sessions: a.core.Sessions(), LargestMessage: a.largest,
		CheckpointsInstalled: installed, CheckpointFailures: failed,
		Epoch: a.core.Epoch(), Members: slices.Clone(a.core.Members())}
}

// proto converts the status for a remote asker.
func (s ReplicaStatus) proto() *StatusReply {
	return &StatusReply{Replica: uint32(s.Replica), Status: s.Status.String(), View: s.View,
		LastNormalView: s.LastNormalView, OpNumber: s.OpNumber, CommitNumber: s.CommitNumber,
		Primary: uint32(s.Primary), Digest: digestBytes(s.Digest), Dropped: s.Drops.Total(), Foreign: s.Foreign,
		WrongCluster: s.Drops[vsr.DropWrongCluster], Oversized: s.Oversized, LogBase: s.LogBase,
		CheckpointOpNumber: s.CheckpointOpNumber, Sessions: uint64(s.Sessions), LargestMessage: uint64(s.LargestMessage),
		HeapInUse: s.HeapInUse, CheckpointsInstalled: s.CheckpointsInstalled, CheckpointFailures: s.CheckpointFailures,
		Allocs: s.Allocs, AllocBytes: s.AllocBytes, Epoch: s.Epoch, Members: s.Members}
}

// digestBytes is nil for a status asked without a digest, so that a remote
// caller can tell "not asked" from a digest.
func digestBytes(d [32]byte) []byte {
	if d == ([32]byte{}) {
		return nil
	}
	return d[:]
}

func (a *replicaActor) logger() *slog.Logger {
	if a.cfg.Logger != nil {
		return a.cfg.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// randomSeed seeds the core's jitter and recovery nonce: a restarted
// replica must never reuse a nonce.
func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano())
	}
	return binary.LittleEndian.Uint64(b[:])
}
