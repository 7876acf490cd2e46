package vsr

import (
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// DropReason says why a message was dropped before any handler looked at it
// or because its content could not be trusted.
type DropReason int

const (
	// DropWrongCluster: the message carries another group's cluster ID.
	DropWrongCluster DropReason = iota
	// DropBadReplica: the sender index is outside the configuration, is this
	// replica's own, or is not the replica the message must come from.
	DropBadReplica
	// DropMalformed: a field is out of range or inconsistent (entries not
	// consecutive, a commit number past the op number, an oversized batch).
	DropMalformed
	// DropUnknownMessage: the message is not a VSR protocol message.
	DropUnknownMessage
	// DropFarAhead: the message's view, op or commit number is further
	// ahead of this replica's than any honest one could be (maxViewAhead,
	// maxOpsAhead); it is forged or corrupt.
	DropFarAhead
	// DropOldEpoch: the message is stamped with an epoch before this
	// replica's (docs/reconfiguration.md): its sender has not learned of the
	// reconfiguration, or was removed by it.
	DropOldEpoch
	// DropNewEpoch: the message is stamped with an epoch after this
	// replica's, whose configuration this replica does not know, so it
	// cannot tell who sent it.
	DropNewEpoch
	numDropReasons
)

func (d DropReason) String() string {
	return [...]string{"wrong-cluster", "bad-replica", "malformed", "unknown-message", "far-ahead", "old-epoch", "new-epoch"}[d]
}

// Drops counts dropped messages by reason.
type Drops [numDropReasons]uint64

// Total is the number of dropped messages.
func (d Drops) Total() uint64 {
	var t uint64
	for _, c := range d {
		t += c
	}
	return t
}

func (r *Replica) drop(reason DropReason) { r.drops[reason]++ }

// replicaMessage is what every replica-to-replica message has.
type replicaMessage interface {
	GetClusterId() uint64
	GetEpoch() uint64
	GetReplica() uint32
}

// maxNumber bounds every view, op and commit number a message may carry. A
// group would need 2^62 view changes or ops to reach it; a message past it is
// forged or corrupt, and taking it could wrap a number around to zero.
const maxNumber = 1 << 62

// Each message has some of these.
type (
	hasView   interface{ GetView() uint64 }
	hasOp     interface{ GetOpNumber() uint64 }
	hasCommit interface{ GetCommitNumber() uint64 }
)

// inRange reports whether every view, op and commit number of m is at most
// maxNumber.
func inRange(m any) bool {
	if v, ok := m.(hasView); ok && v.GetView() > maxNumber {
		return false
	}
	if v, ok := m.(hasOp); ok && v.GetOpNumber() > maxNumber {
		return false
	}
	if v, ok := m.(hasCommit); ok && v.GetCommitNumber() > maxNumber {
		return false
	}
	return true
}

// admit checks what every message must satisfy before its handler runs: it
// belongs to this cluster, and its sender is another member of it.
func (r *Replica) admit(m proto.Message) bool {
	if m == nil || !m.ProtoReflect().IsValid() { // nil, or a typed nil pointer
		r.drop(DropMalformed)
		return false
	}
	if !inRange(m) {
		r.drop(DropMalformed)
		return false
	}
	if req, ok := m.(*messages.Request); ok {
		if req.GetClusterId() != r.cfg.ClusterID {
			r.drop(DropWrongCluster)
			return false
		}
		return true
	}
	if q, ok := m.(*messages.EpochQuery); ok {
		// From a replica that knows no epoch, by design: onEpochQuery
		// checks its configuration.
		if q.GetClusterId() != r.cfg.ClusterID {
			r.drop(DropWrongCluster)
			return false
		}
		return true
	}
	rm, ok := m.(replicaMessage)
	if !ok {
		r.drop(DropUnknownMessage)
		return false
	}
	if rm.GetClusterId() != r.cfg.ClusterID {
		r.drop(DropWrongCluster)
		return false
	}
	switch m := m.(type) {
	case *messages.StartEpoch:
		// It crosses epochs by design; its sender's index is in the
		// configuration of sender_epoch, and onStartEpoch checks it there.
		return m.Epoch <= maxNumber && m.SenderEpoch <= m.Epoch
	case *messages.EpochStarted:
		// A replica that is leaving hears it from the epoch that removed it.
		return m.Epoch == r.epoch || (r.status == StatusLeaving && m.Epoch == r.change.nextEpoch)
	case *messages.EpochEnded:
		// Sent to a replica that knows no epoch; its sender's index is in
		// the asker's configuration, and onEpochEnded checks it there.
		return m.Epoch <= maxNumber && m.CurrentEpoch <= maxNumber
	}
	// A sender's index means something only in its own epoch's
	// configuration, so a message from another epoch cannot be attributed.
	if e := rm.GetEpoch(); e != r.epoch {
		if e < r.epoch {
			r.drop(DropOldEpoch)
			r.answerOldEpoch(e, int(rm.GetReplica()))
		} else {
			r.drop(DropNewEpoch)
		}
		return false
	}
	if from := int(rm.GetReplica()); from >= r.n || from == r.index {
		r.drop(DropBadReplica)
		return false
	}
	if r.tooFarAhead(m) {
		r.drop(DropFarAhead)
		return false
	}
	return true
}

// tooFarAhead reports whether m's view is more than maxViewAhead past this
// replica's, or its op or commit number more than maxOpsAhead past this
// replica's op number (liveness.go): no honest message is, so m is forged or
// corrupt, and acting on it could use up the range or keep a dead primary
// alive. A recovering replica knows no view or op to judge by, and the
// answers to its recovery carry its nonce, so it takes any.
func (r *Replica) tooFarAhead(m proto.Message) bool {
	if _, ok := m.(*messages.RecoveryResponse); ok || r.status == StatusRecovering || r.buggy(BugNoViewWindow) {
		return false
	}
	if v, ok := m.(hasView); ok && v.GetView() > r.viewNumber+maxViewAhead {
		return true
	}
	if v, ok := m.(hasOp); ok && v.GetOpNumber() > r.opNumber()+maxOpsAhead {
		return true
	}
	if v, ok := m.(hasCommit); ok && v.GetCommitNumber() > r.opNumber()+maxOpsAhead {
		return true
	}
	if p, ok := m.(*messages.Prepare); ok && len(p.Entries) > 0 && p.Entries[0].GetOpNumber() > r.opNumber()+maxOpsAhead {
		return true
	}
	return false
}

// consecutive reports whether entries hold consecutive op numbers starting at
// first, at most max of them (max < 0: no limit), each a well-formed request
// (a client ID and a request number, as onRequest demands of a client).
func consecutive(entries []*messages.Entry, first uint64, max int) bool {
	if max >= 0 && len(entries) > max {
		return false
	}
	for k, e := range entries {
		if e == nil || e.OpNumber != first+uint64(k) || e.ClientId == 0 || e.RequestNumber == 0 {
			return false
		}
		if c := e.Reconfigure; c != nil && (e.Register || len(e.Operation) > 0 || validMembers(c.Members) != nil) {
			return false
		}
	}
	return true
}

// validSuffix reports whether entries are exactly the ops after commit up to
// op: a well-formed uncommitted suffix.
func validSuffix(entries []*messages.Entry, commit, op uint64) bool {
	return commit <= op && op-commit == uint64(len(entries)) && len(entries) <= MaxPrepareEntries &&
		consecutive(entries, commit+1, -1)
}
