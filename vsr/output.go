package vsr

import (
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// Envelope is a message for the replica with index To.
type Envelope struct {
	To  int
	Msg proto.Message
}

// ClientReply is a reply for the client at To, the address that travelled in
// its request.
type ClientReply struct {
	To    *messages.ClientAddress
	Reply *messages.Reply
}

// HardState is what a replica would write to stable storage to survive a
// restart without running recovery. VR Revisited does not need it (a restarted
// replica recovers from its peers, section 4.3), and this library does not
// read it back yet; it is reported so that a caller can keep a durable record.
type HardState struct {
	View           uint64
	LastNormalView uint64
	CommitNumber   uint64
}

// Output is what a replica asks its caller to do after one Step or Tick. The
// caller must carry it out in this order: write HardState (if it keeps one),
// then send Messages, then send Replies.
type Output struct {
	// HardState is set when the view, last normal view or commit number
	// changed.
	HardState *HardState
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
}

// IsEmpty reports whether there is nothing to do.
func (o Output) IsEmpty() bool {
	return o.HardState == nil && len(o.Messages) == 0 && len(o.Replies) == 0 && len(o.Committed) == 0 &&
		o.Checkpoint == nil
}
