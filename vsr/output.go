package vsr

import (
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// Envelope is a message for the member named Member. To is its index in the
// sender's current configuration, or -1 when the member belongs to another
// configuration only (during a reconfiguration, docs/reconfiguration.md): a
// caller that routes by index must not send an envelope with To < 0 there.
type Envelope struct {
	To     int
	Member string
	Msg    proto.Message
}

// ClientReply is a reply for the client at To, the address that travelled in
// its request.
type ClientReply struct {
	To    *messages.ClientAddress
	Reply *messages.Reply
}

// HardState is the part of a replica's state, beside its log and its
// checkpoint, that a replica keeping a disk writes so that it can restart
// without running recovery (see Restart). VR Revisited does not need it: a
// replica without a disk recovers from its peers (paper section 4.3).
type HardState struct {
	// Epoch is the epoch View belongs to (docs/reconfiguration.md).
	Epoch          uint64
	View           uint64
	LastNormalView uint64
	CommitNumber   uint64
	// Recovering is set while the replica runs recovery: it lost state it
	// may have acknowledged, and must not trust what it holds until
	// recovery ends, even across another restart.
	Recovering bool
}

// SavedCheckpoint is a checkpoint a replica installed from a peer, encoded
// (a messages.Checkpoint).
type SavedCheckpoint struct {
	OpNumber uint64
	Encoded  []byte
}

// Output is what a replica asks its caller to do after one Step or Tick. A
// caller that keeps a disk must carry it out in this order: make
// InstalledCheckpoint, then the log change (LogFrom and Entries) and
// HardState durable; only then send Messages, then Replies. That order is
// what makes every message a promise the replica keeps across a crash: a
// PrepareOK is sent only once its entries are durable, a StartViewChange or
// DoViewChange only once its view is, a Prepare only once the primary's own
// copy is (its PrepareOK counts itself). A reply needs no write of its own:
// the ops it answers are durable at f+1 replicas. A caller without a disk
// sends at once.
type Output struct {
	// HardState is set when the view, last normal view or recovering flag
	// changed, or when the log changed (the commit number then rides
	// along). A step that only commits asks for no write: no message
	// promises that the commit number is durable (see sameVote).
	HardState *HardState
	// LogFrom, when not zero, is the first op number whose log slot changed
	// in this step: the stored log from LogFrom on must be replaced by
	// Entries (numbered LogFrom, LogFrom+1, ...; empty when the log was only
	// cut). Entries are shared with the log: callers must not modify them.
	LogFrom uint64
	Entries []*messages.Entry
	// InstalledCheckpoint is a checkpoint this replica fetched from a peer
	// and installed in this step; the log after it starts at LogFrom. A
	// checkpoint the replica encoded itself comes back through
	// CheckpointDone instead, and its caller saves it before that call.
	InstalledCheckpoint *SavedCheckpoint
	// Compact, when not zero, is the replica's new log base: it needs no
	// stored entry up to Compact any more, since a checkpoint covers them
	// (its own, which the caller saved before CheckpointDone, or
	// InstalledCheckpoint in this output). A store may discard them once
	// the rest of this output is durable.
	Compact uint64
	// Messages go to other replicas, in order.
	Messages []Envelope
	// Replies go to clients.
	Replies []ClientReply
	// Committed lists the log entries this replica committed in this step,
	// in op order. Each was executed, unless the client table showed that its
	// request had run already. It is for observers (metrics, the simulator's
	// checkers); the caller need not act on it.
	Committed []*messages.Entry
	// Checkpoint, when set, is a checkpoint the replica captured at a
	// committed op. The caller runs it (on any goroutine: it may take a
	// while for a large state) and hands the result to CheckpointDone; until
	// then the replica keeps its log whole. A caller that drops it delays
	// log truncation by two intervals: a job still out after two intervals
	// is given up and another is captured.
	Checkpoint *CheckpointJob
	// Left is set once, when this replica, removed from the group by a
	// reconfiguration, is no longer needed: a quorum of the new
	// configuration holds the state. The caller may stop it (Replica.Left
	// says so from then on).
	Left bool
}

// IsEmpty reports whether there is nothing to do.
func (o Output) IsEmpty() bool {
	return o.HardState == nil && o.LogFrom == 0 && o.InstalledCheckpoint == nil && o.Compact == 0 && len(o.Messages) == 0 && len(o.Replies) == 0 && len(o.Committed) == 0 &&
		o.Checkpoint == nil && !o.Left
}
