package actors

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/vsr"
)

// Observing a replica: one hook (ReplicaConfig.Observer) that the replica
// actor calls for each protocol event, for metrics, tracing or logs. The
// events cover what the Elixir implementation's :telemetry events cover
// (docs/porting-from-elixir.md maps them) and more: every message sent and
// received, commits, status and leadership changes, view changes, primary
// timeouts, state-machine op durations, drops by reason, checkpoints and
// state transfer. With no Observer the replica pays one nil check per
// batch of messages, per tick and per message sent.

// Observer receives a replica's protocol events. Observe is called on the
// replica's goroutine, in the order the events happen: it must be quick and
// must not block, and it must not keep or change o.Message.
type Observer interface {
	Observe(o Observation)
}

// ObserverFunc makes a function an Observer.
type ObserverFunc func(Observation)

// Observe calls f.
func (f ObserverFunc) Observe(o Observation) { f(o) }

// ObservationKind says what an Observation reports.
type ObservationKind uint8

// The kinds of observation.
const (
	// ObservedReceived: a protocol message reached the core (Message; Peer
	// for a replica's message, -1 for a client's Request).
	ObservedReceived ObservationKind = iota + 1
	// ObservedSent: the replica sent Message, of Size bytes encoded (zero
	// for a reply to a client in this process, which is never encoded).
	// A Commit sent is the primary's heartbeat.
	ObservedSent
	// ObservedCommitAdvanced: the commit number rose to CommitNumber, by
	// Count ops.
	ObservedCommitAdvanced
	// ObservedStatusChanged: the replica's status is now Status.
	ObservedStatusChanged
	// ObservedLeadershipStarted and ObservedLeadershipStopped: the replica
	// became, or stopped being, the normal primary of its view.
	ObservedLeadershipStarted
	ObservedLeadershipStopped
	// ObservedViewChangeStarted: the replica left normal status for a view
	// change to View. ObservedPrimaryTimeout comes first when a backup
	// started it because it stopped hearing from the primary.
	ObservedViewChangeStarted
	ObservedPrimaryTimeout
	// ObservedViewChangeCompleted: the replica is normal in View after a
	// view change (as primary or backup).
	ObservedViewChangeCompleted
	// ObservedOperationApplied: the state machine executed an op in
	// Duration (committed ops and reads served without the log alike).
	ObservedOperationApplied
	// ObservedDropped: the core dropped Count messages for Reason.
	ObservedDropped
	// ObservedCheckpoint: the replica took a checkpoint at OpNumber.
	ObservedCheckpoint
	// ObservedStateTransferred: the replica installed a checkpoint fetched
	// from a peer (state transfer), up to CommitNumber.
	ObservedStateTransferred
	// ObservedEpochChanged: the replica entered epoch Epoch.
	ObservedEpochChanged
	// ObservedStopped: the replica's actor stopped (killed, panicked, or
	// its group or node stopped); the fields describe it as it was. An
	// instance that replaces it reports from its start again. A process
	// that dies reports nothing.
	ObservedStopped
)

var kindNames = [...]string{
	ObservedReceived: "received", ObservedSent: "sent", ObservedCommitAdvanced: "commit-advanced",
	ObservedStatusChanged: "status-changed", ObservedLeadershipStarted: "leadership-started",
	ObservedLeadershipStopped: "leadership-stopped", ObservedViewChangeStarted: "view-change-started",
	ObservedPrimaryTimeout: "primary-timeout", ObservedViewChangeCompleted: "view-change-completed",
	ObservedOperationApplied: "operation-applied", ObservedDropped: "dropped", ObservedCheckpoint: "checkpoint",
	ObservedStateTransferred: "state-transferred", ObservedEpochChanged: "epoch-changed", ObservedStopped: "stopped",
}

func (k ObservationKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Observation is one event of a replica. Replica, Index, ReplicaCount,
// Status, Epoch, View, OpNumber, CommitNumber and Primary describe the
// replica after the event; the other fields are set only by the kinds that
// say so.
type Observation struct {
	Kind    ObservationKind
	Replica int
	// Index is the replica's index in its configuration of ReplicaCount
	// replicas: the numbering Peer uses. It is Replica too, except in a
	// supervisor.Group, whose Replica is the group's own number.
	Index, ReplicaCount                 int
	Status                              vsr.Status
	Epoch, View, OpNumber, CommitNumber uint64
	Primary                             bool
	// Message is the message sent or received; Peer the replica it came
	// from, or -1.
	Message proto.Message
	Peer    int
	Size    int
	Count   int
	Reason  vsr.DropReason
	// Duration is how long an op took to apply.
	Duration time.Duration
}

// observedState is what the actor compares before and after a step to find
// the events the step caused.
type observedState struct {
	status              vsr.Status
	epoch, view, commit uint64
	primary             bool
	checkpoint          uint64
	installed           uint64
	drops               vsr.Drops
}

func (a *replicaActor) observedState() observedState {
	c := a.core
	s := observedState{status: c.Status(), epoch: c.Epoch(), view: c.View(), commit: c.CommitNumber(),
		primary: c.IsPrimary() && c.Status() == vsr.StatusNormal, checkpoint: c.CheckpointOpNumber(),
		drops: c.Drops()}
	_, s.installed = c.CheckpointStats()
	return s
}

// beforeStep notes the replica's state before a step, if it is observed.
func (a *replicaActor) beforeStep() (observedState, bool) {
	if a.cfg.Observer == nil || a.core == nil {
		return observedState{}, false
	}
	return a.observedState(), true
}

// afterStep reports what the step changed, if the replica is observed.
func (a *replicaActor) afterStep(before observedState, observed, own bool) {
	if observed && a.core != nil {
		a.observeChanges(before, own)
	}
}

// aboutViewChange reports whether a batch holds a message of another
// replica's view change.
func aboutViewChange(batch []proto.Message) bool {
	for _, m := range batch {
		switch m.(type) {
		case *messages.StartViewChange, *messages.DoViewChange, *messages.StartView:
			return true
		}
	}
	return false
}

// observation is an Observation of kind k with the replica's state filled in.
func (a *replicaActor) observation(k ObservationKind) Observation {
	c := a.core
	return Observation{Kind: k, Replica: c.Index(), Index: c.Index(), ReplicaCount: len(c.Members()), Status: c.Status(), Epoch: c.Epoch(), View: c.View(),
		OpNumber: c.OpNumber(), CommitNumber: c.CommitNumber(), Primary: c.IsPrimary(), Peer: -1}
}

// observeReceived reports the messages of a batch about to be stepped.
func (a *replicaActor) observeReceived(batch []proto.Message) {
	for _, m := range batch {
		o := a.observation(ObservedReceived)
		o.Message = m
		if rm, ok := m.(replicaMessage); ok {
			if _, isRequest := m.(*messages.Request); !isRequest {
				o.Peer = int(rm.GetReplica())
			}
		}
		a.cfg.Observer.Observe(o)
	}
}

// observeSent reports a message sent.
func (a *replicaActor) observeSent(m proto.Message, size int) {
	o := a.observation(ObservedSent)
	o.Message, o.Size = m, size
	a.cfg.Observer.Observe(o)
}

// observeChanges reports what changed between before and now. own says
// that a view change the step started was the replica's own idea (a tick, a
// hint that a peer is down, or messages none of which is about a view
// change), not one it joined.
func (a *replicaActor) observeChanges(before observedState, own bool) {
	after, obs := a.observedState(), a.cfg.Observer
	if after.drops != before.drops {
		for r := range after.drops {
			if n := after.drops[r] - before.drops[r]; n > 0 {
				o := a.observation(ObservedDropped)
				o.Reason, o.Count = vsr.DropReason(r), int(n)
				obs.Observe(o)
			}
		}
	}
	if after.installed > before.installed {
		obs.Observe(a.observation(ObservedStateTransferred))
	}
	if after.commit > before.commit {
		o := a.observation(ObservedCommitAdvanced)
		o.Count = int(after.commit - before.commit)
		obs.Observe(o)
	}
	if after.checkpoint > before.checkpoint {
		o := a.observation(ObservedCheckpoint)
		o.OpNumber = after.checkpoint
		obs.Observe(o)
	}
	if after.epoch != before.epoch {
		obs.Observe(a.observation(ObservedEpochChanged))
	}
	if before.primary && !after.primary {
		obs.Observe(a.observation(ObservedLeadershipStopped))
	}
	if after.status != before.status {
		if before.status == vsr.StatusNormal && after.status == vsr.StatusViewChange {
			if own && !before.primary {
				obs.Observe(a.observation(ObservedPrimaryTimeout))
			}
			obs.Observe(a.observation(ObservedViewChangeStarted))
		}
		obs.Observe(a.observation(ObservedStatusChanged))
	}
	if after.status == vsr.StatusNormal && (before.status == vsr.StatusViewChange || after.view > before.view) &&
		after.epoch == before.epoch {
		obs.Observe(a.observation(ObservedViewChangeCompleted))
	}
	if after.primary && !before.primary {
		obs.Observe(a.observation(ObservedLeadershipStarted))
	}
}

// timedMachine reports how long each op takes to apply.
type timedMachine struct {
	statemachine.StateMachine
	a *replicaActor
}

func (t timedMachine) Apply(op []byte) []byte {
	start := time.Now()
	res := t.StateMachine.Apply(op)
	if t.a.core != nil {
		o := t.a.observation(ObservedOperationApplied)
		o.Duration = time.Since(start)
		t.a.cfg.Observer.Observe(o)
	}
	return res
}

// timedCheckpointer is timedMachine for a state machine that encodes its
// own checkpoints: the core must still find that it does.
type timedCheckpointer struct {
	timedMachine
	c statemachine.Checkpointer
}

func (t timedCheckpointer) Checkpoint() func() ([]byte, error) { return t.c.Checkpoint() }

// observed wraps sm so that its ops are timed, when the replica has an
// Observer.
func (a *replicaActor) observed(sm statemachine.StateMachine) statemachine.StateMachine {
	if a.cfg.Observer == nil {
		return sm
	}
	t := timedMachine{StateMachine: sm, a: a}
	if c, ok := sm.(statemachine.Checkpointer); ok {
		return timedCheckpointer{timedMachine: t, c: c}
	}
	return t
}
