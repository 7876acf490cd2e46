package vsr

import (
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine"
)

// Replica is one member of a VR group: the paper's replica state plus the
// bookkeeping of its timers and votes. It is not safe for concurrent use; the
// caller (an actor, the simulator) owns it and calls it from one goroutine.
type Replica struct {
	cfg   Config
	n, f  int
	index int
	sm    statemachine.StateMachine
	rng   *rng

	// epoch is the paper's epoch-number (section 7), and members the names
	// of its configuration in index order: index is this replica's position
	// in it. Every replica message carries the sender's epoch, and one from
	// another epoch is dropped before its handler runs (see admit and
	// docs/reconfiguration.md).
	epoch   uint64
	members []string
	// self is this replica's own name, the same in every configuration.
	self string
	// change is the reconfiguration that began the current epoch (or, at a
	// replica that is leaving, the one that ends its membership).
	change epochChange
	// recent holds the configurations of the last keptConfigs epochs
	// before the current one, oldest first.
	recent []pastConfig
	// left is set once a replica that is leaving is no longer needed.
	left bool
	// outsider is set, only while a replica restores from its disk, when
	// its state is from an epoch before the one it joined.
	outsider bool
	// epochOpUnknown is set while the replica does not know which op began
	// its epoch (it recovers in an epoch after 0, Config.Epoch): it takes no
	// committed state until it does, or it could execute that op's
	// reconfiguration again as if it ended the epoch.
	epochOpUnknown bool

	// The paper's replica state.
	viewNumber     uint64
	status         Status
	lastNormalView uint64
	log            []*messages.Entry // log[k] holds op number logBase+k+1 (see log.go)
	sizes          []int32           // sizes[k] is entrySize(log[k])
	logBase        uint64            // the ops up to here are in the checkpoint only
	commitNumber   uint64            // every op up to here is committed and executed
	clientTable    clientTable

	// uncommittedBytes is what the entries past the commit number weigh in
	// a message: the primary keeps it within the pipeline's budget.
	uncommittedBytes int
	// logChangedFrom is the first op number whose log slot changed since
	// the last output, or 0 (see Output.LogFrom).
	logChangedFrom uint64
	// compacted is the log base last reported in Output.Compact.
	compacted uint64
	// checkpoint is the latest encoded checkpoint; checkpointPending names
	// the op of the one being encoded by the caller, if any.
	checkpoint           *checkpoint
	checkpointPending    uint64
	checkpointFailures   uint64
	checkpointsInstalled uint64
	// retained is a replaced checkpoint that a peer was still fetching
	// (see onGetCheckpoint); the ...ServedAt fields are the ticks at which
	// a chunk of each was last asked for.
	retained           *checkpoint
	checkpointServedAt int
	retainedServedAt   int
	ticks              int          // ticks since the replica started
	fetch              fetchState   // a checkpoint transfer
	catchUp            catchUpState // a fetch of committed entries

	// syncing is set while the replica is in a view whose log it does not
	// hold yet (it learned of the view from its primary): it has asked the
	// primary for the log and sends no PrepareOK until it has it.
	syncing bool
	// stateRequested limits GetState to one per heartbeat.
	stateRequested bool
	// ackDue is set when a backup's log grew or its primary asked, and a
	// PrepareOK is to go out at the end of the step (see flushAck): one
	// acknowledgement for a whole batch of Prepares.
	ackDue bool

	primary    primaryState    // valid while normal and primary
	viewChange viewChangeState // valid while in view-change status
	recovery   recoveryState   // valid while recovering
	probe      probeState      // a probe for a view change (liveness.go)
	// primaryHeardAt is the tick at which this replica last heard from the
	// primary of its view.
	primaryHeardAt int

	heartbeat timer // resends and primary heartbeats
	election  timer // backup inactivity, view-change progress

	out       Output
	hardState HardState
	drops     Drops
	checked   struct{ epoch, view, commit uint64 } // as of the last CheckInvariants
	bugs      Bug                                  // always zero outside the simulator's self-test
}

// New makes a replica from cfg. A replica with cfg.Recovering starts in
// recovering status; otherwise it starts normal in view 0 with an empty log,
// as every member of a new group does.
func New(cfg Config) (*Replica, error) {
	r, err := newReplica(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Recovering:
		r.startRecovery()
	case cfg.Joining:
		r.status = StatusJoining
	default:
		r.becomeNormal()
	}
	r.out = Output{} // New returns no output; a recovering replica asks on its first Tick.
	return r, nil
}

// newReplica makes a replica with an empty log, in no status yet.
func newReplica(cfg Config) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &Replica{
		cfg:            cfg,
		n:              cfg.ReplicaCount,
		f:              faultTolerance(cfg.ReplicaCount),
		index:          cfg.ReplicaIndex,
		members:        cfg.members(),
		self:           cfg.members()[cfg.ReplicaIndex],
		epoch:          cfg.Epoch,
		epochOpUnknown: cfg.Epoch > 0,
		sm:             cfg.StateMachine,
		rng:            newRNG(cfg.Seed),
		clientTable:    newClientTable(cfg.SessionIdleOps, cfg.MaxSessions),
	}
	r.heartbeat.start(cfg.HeartbeatTicks)
	return r, nil
}

// Step hands the replica one message and returns what it must do as a result.
// A message that is malformed, from another cluster or from a replica outside
// the configuration is dropped and counted (see Drops).
func (r *Replica) Step(m proto.Message) Output {
	if r.admit(m) {
		r.dispatch(m)
		r.flush()
	}
	return r.takeOutput()
}

// StepBatch hands the replica several messages that arrived together, and
// returns one Output for all of them. Each message is handled as Step would
// handle it, in order; what differs is what leaves: the entries a primary
// appended for a batch of requests go out in as few Prepares as MaxBatch
// allows, and a backup that took a batch of Prepares acknowledges them with
// one PrepareOK for the last. The caller chooses the batch (an actor takes
// whatever its mailbox holds), so batching never waits for messages that
// are not there.
func (r *Replica) StepBatch(ms []proto.Message) Output {
	for _, m := range ms {
		if r.admit(m) {
			r.dispatch(m)
		}
	}
	r.flush()
	return r.takeOutput()
}

// Tick advances the replica's logical clock by one tick.
func (r *Replica) Tick() Output {
	r.ticks++
	r.expireRetained()
	if r.heartbeat.tick() {
		r.heartbeat.start(r.cfg.HeartbeatTicks)
		r.onHeartbeat()
	}
	if r.election.tick() {
		r.onElectionTimeout()
	}
	r.flush()
	return r.takeOutput()
}

func (r *Replica) dispatch(m proto.Message) {
	if !r.takesPart(m) {
		return
	}
	switch m := m.(type) {
	case *messages.Request:
		r.onRequest(m)
	case *messages.Prepare:
		r.onPrepare(m)
	case *messages.PrepareOK:
		r.onPrepareOK(m)
	case *messages.Commit:
		r.onCommit(m)
	case *messages.StartViewChange:
		r.onStartViewChange(m)
	case *messages.DoViewChange:
		r.onDoViewChange(m)
	case *messages.StartView:
		r.onStartView(m)
	case *messages.Recovery:
		r.onRecovery(m)
	case *messages.RecoveryResponse:
		r.onRecoveryResponse(m)
	case *messages.GetState:
		r.onGetState(m)
	case *messages.NewState:
		r.onNewState(m)
	case *messages.ConfirmView:
		r.onConfirmView(m)
	case *messages.ConfirmViewOK:
		r.onConfirmViewOK(m)
	case *messages.GetCheckpoint:
		r.onGetCheckpoint(m)
	case *messages.CheckpointChunk:
		r.onCheckpointChunk(m)
	case *messages.ViewChangeProbe:
		r.onViewChangeProbe(m)
	case *messages.ViewChangeProbeOK:
		r.onViewChangeProbeOK(m)
	case *messages.StartEpoch:
		r.onStartEpoch(m)
	case *messages.EpochStarted:
		r.onEpochStarted(m)
	case *messages.EpochQuery:
		r.onEpochQuery(m)
	case *messages.EpochEnded:
		r.onEpochEnded(m)
	default:
		r.drop(DropUnknownMessage)
	}
}

// takesPart reports whether a replica that is joining or leaving handles m.
// A joining replica holds no state: it takes only the news of its epoch and
// the state it fetches, and never votes. A replica that is leaving takes part
// in nothing: it serves committed state, counts the members of the new
// configuration that hold it, and answers the rest of its old epoch with the
// news of the change.
func (r *Replica) takesPart(m proto.Message) bool {
	switch r.status {
	case StatusJoining:
		switch m.(type) {
		case *messages.StartEpoch:
			return true
		case *messages.NewState, *messages.CheckpointChunk, *messages.EpochStarted:
			// Only once it knows which epoch it joins: before that, its
			// epoch number means nothing, and matching it proves nothing.
			return r.change.started != nil
		case *messages.EpochEnded:
			return r.change.started == nil // epoch_query.go
		}
		return false
	case StatusLeaving:
		switch m := m.(type) {
		case *messages.EpochQuery, *messages.EpochEnded:
			return false
		case *messages.GetState:
			return m.CommittedOnly
		case *messages.GetCheckpoint, *messages.StartEpoch, *messages.EpochStarted, *messages.Request:
			return true
		case replicaMessage:
			r.onLeavingMessage(m.GetReplica())
		}
		return false
	}
	return true
}

// onHeartbeat resends, per status, whatever a lost message could leave
// waiting forever.
func (r *Replica) onHeartbeat() {
	r.stateRequested = false
	switch r.status {
	case StatusNormal:
		if r.isPrimary() {
			r.checkQuorum()
		}
		if r.status == StatusNormal && r.isPrimary() {
			r.sendHeartbeats()
			r.resendConfirmView()
		}
	case StatusViewChange:
		r.resendViewChange()
	case StatusRecovering:
		if r.recovery.chosen == nil {
			r.broadcastRecovery()
		}
	}
	if r.probe.view > r.viewNumber {
		r.broadcastProbe()
	}
	r.resendTransfer()
	r.sendStartEpochs()
	r.queryEpoch()
}

// onElectionTimeout fires when a backup has not heard from its primary, or a
// view change has not finished, within its timeout: either way the replica
// probes for the next view (liveness.go), and moves to it once f others
// agree. The timer starts over, so a probe no one answers is made anew.
func (r *Replica) onElectionTimeout() {
	switch r.status {
	case StatusNormal:
		if !r.isPrimary() {
			r.resetInactivity()
			r.suspectPrimary()
		}
	case StatusViewChange:
		r.election.start(r.cfg.ViewChangeTicks + r.jitter())
		r.suspectPrimary()
	case StatusRecovering:
		r.restartRecovery() // The state transfer stalled.
	}
}

// flush runs after every Step, StepBatch and Tick: it sends the entries the
// primary appended in this step as one batch, and starts a read-confirmation
// round if reads are waiting for one; at a backup it sends the PrepareOK the
// step made due.
func (r *Replica) flush() {
	r.flushAck()
	if r.status != StatusNormal || !r.isPrimary() {
		return
	}
	r.broadcastNewEntries()
	r.maybeStartConfirmRound()
}

func (r *Replica) takeOutput() Output {
	hs := HardState{Epoch: r.epoch, View: r.viewNumber, LastNormalView: r.lastNormalView, CommitNumber: r.commitNumber,
		Recovering: r.status == StatusRecovering}
	if hs != r.hardState && (r.logChangedFrom != 0 || !sameVote(hs, r.hardState)) {
		r.hardState = hs
		r.out.HardState = &hs
	}
	r.takeLogChange(&r.out)
	if r.logBase > r.compacted {
		r.out.Compact, r.compacted = r.logBase, r.logBase
	}
	out := r.out
	r.out = Output{}
	return out
}

// sameVote reports whether a and b differ at most in their commit numbers.
// A step that only moves the commit number asks for no write: nothing a
// replica sends promises that its commit number is durable (a replica
// restarted with an older one learns it again from its peers, and a
// primary's linearizable reads wait for the ops in its log to commit
// anew), so a reply need not wait for a sync of its own. The commit number
// rides along with the next write of the log or the view.
func sameVote(a, b HardState) bool {
	return a.Epoch == b.Epoch && a.View == b.View && a.LastNormalView == b.LastNormalView &&
		a.Recovering == b.Recovering
}

// becomeNormal enters normal status in the current view with the current log.
func (r *Replica) becomeNormal() {
	r.status = StatusNormal
	r.lastNormalView = r.viewNumber
	r.syncing = false
	r.viewChange.reset()
	r.recovery = recoveryState{}
	r.probe = probeState{}
	if r.isPrimary() {
		r.primary.reset(r.n, r.opNumber(), r.ticks)
		r.primary.reads.startRounds(r.rng.next())
		r.clientTable.markInProgress(r.uncommittedSuffix())
		r.election.stop()
	} else {
		r.primary = primaryState{}
		r.clientTable.clearInProgress()
		r.resetInactivity()
		r.primaryHeardAt = r.ticks // a new group, or a StartView from the primary
	}
}

// resetInactivity restarts a backup's wait for its primary.
func (r *Replica) resetInactivity() {
	r.election.start(r.cfg.InactivityTicks + r.jitter())
}

func (r *Replica) jitter() int {
	if r.cfg.JitterTicks <= 0 {
		return 0
	}
	return r.rng.intn(r.cfg.JitterTicks + 1)
}

// send queues m for replica to of the current configuration.
func (r *Replica) send(to int, m proto.Message) {
	r.out.Messages = append(r.out.Messages, Envelope{To: to, Member: r.members[to], Msg: m})
}

// broadcast queues m for every other replica.
func (r *Replica) broadcast(m proto.Message) {
	for j := 0; j < r.n; j++ {
		if j != r.index {
			r.send(j, m)
		}
	}
}

func (r *Replica) reply(to *messages.ClientAddress, m *messages.Reply) {
	if to == nil {
		return
	}
	m.Replica = uint32(r.index)
	m.Epoch = r.epoch
	r.out.Replies = append(r.out.Replies, ClientReply{To: to, Reply: m})
}

// primaryOf is the primary of view v: v mod n.
func (r *Replica) primaryOf(v uint64) int { return int(v % uint64(r.n)) }

func (r *Replica) isPrimary() bool { return r.primaryOf(r.viewNumber) == r.index }

// Accessors, for the actor layer's status reports, the simulator and tests.

// Index is this replica's index.
func (r *Replica) Index() int { return r.index }

// View is the current view number.
func (r *Replica) View() uint64 { return r.viewNumber }

// Status is the current status.
func (r *Replica) Status() Status { return r.status }

// Epoch is the current epoch: how many reconfigurations the group has
// committed.
func (r *Replica) Epoch() uint64 { return r.epoch }

// Members is the configuration of the current epoch, member names in index
// order. The slice is shared: callers must not modify it.
func (r *Replica) Members() []string { return r.members }

// LastNormalView is the latest view in which the replica's status was normal.
func (r *Replica) LastNormalView() uint64 { return r.lastNormalView }

// OpNumber is the op number of the last entry in the log.
func (r *Replica) OpNumber() uint64 { return r.opNumber() }

// CommitNumber is the op number of the last committed (and executed) entry.
func (r *Replica) CommitNumber() uint64 { return r.commitNumber }

// Primary is the index of the primary of the current view.
func (r *Replica) Primary() int { return r.primaryOf(r.viewNumber) }

// IsPrimary reports whether this replica is normal and the primary of its view.
func (r *Replica) IsPrimary() bool { return r.status == StatusNormal && r.isPrimary() }

// Entry returns the log entry with op number op, or nil. Entries are shared,
// not copied: callers must not modify them.
func (r *Replica) Entry(op uint64) *messages.Entry { return r.entryAt(op) }

// LogBase is the op number before the first entry the log holds: the ops up
// to it are in the checkpoint only.
func (r *Replica) LogBase() uint64 { return r.logBase }

// CheckpointOpNumber is the op number of the latest encoded checkpoint, or 0.
func (r *Replica) CheckpointOpNumber() uint64 {
	if r.checkpoint == nil {
		return 0
	}
	return r.checkpoint.opNumber
}

// CheckpointStats counts checkpoint encodings that failed and checkpoints
// installed from peers.
func (r *Replica) CheckpointStats() (failed, installed uint64) {
	return r.checkpointFailures, r.checkpointsInstalled
}

// Sessions is the number of open client sessions.
func (r *Replica) Sessions() int { return r.clientTable.len() }

// Drops counts the messages this replica dropped, by reason.
func (r *Replica) Drops() Drops { return r.drops }
