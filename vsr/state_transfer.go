package vsr

import (
	"slices"

	"github.com/vsrgo/vsr/messages"
)

// State transfer (paper section 5.2), with the fix for the later-view case
// from Vanlightly's TLA+ analysis of VR Revisited.

// requestState asks the primary of the current view for its log after this
// replica's op number (or, while syncing, after its commit number: the
// entries past the commit number may belong to an older view's log). At most
// one request goes out per heartbeat.
func (r *Replica) requestState() {
	if r.stateRequested {
		return
	}
	r.stateRequested = true
	after := r.opNumber()
	if r.syncing {
		after = r.commitNumber
	}
	r.send(r.primaryOf(r.viewNumber), &messages.GetState{ClusterId: r.cfg.ClusterID,
		View: r.viewNumber, OpNumber: after, Replica: uint32(r.index)})
}

// joinStartedView handles a normal-operation message from the primary of a
// view v that this replica is not normal in: v has started, and this replica
// does not hold its log. The paper truncates the log to the commit number and
// fetches the rest, but a replica that truncates to a stale commit number and
// then votes can lose a committed op. Instead the replica keeps its log and
// its last normal view, moves to v in view-change status, and asks v's primary
// for the log. Until the answer comes it sends no PrepareOK; if a view change
// happens first, its DoViewChange truthfully reports its older last normal
// view, so its log can never win over a log from v.
func (r *Replica) joinStartedView(v uint64) {
	if v > r.viewNumber || r.status == StatusNormal {
		r.enterView(v)
		r.status = StatusViewChange
		r.election.start(r.cfg.ViewChangeTicks + r.jitter())
	}
	r.syncing = true
	r.requestState()
}

// onGetState answers a replica that lacks part of this view's log. Only a
// replica that is normal in the same view answers, and it sends the whole
// rest of its log, never a batch of it: a replica catching up on a later
// view becomes normal in that view with what it receives, and a replica
// normal in view v must hold at least the log v started with, or its
// DoViewChange (which claims v as its last normal view) could win a later
// view change without ops committed before v.
func (r *Replica) onGetState(m *messages.GetState) {
	if r.status != StatusNormal || m.View != r.viewNumber || m.OpNumber > r.opNumber() {
		return
	}
	r.send(int(m.Replica), &messages.NewState{
		ClusterId:    r.cfg.ClusterID,
		View:         r.viewNumber,
		Entries:      r.log[m.OpNumber:],
		OpNumber:     r.opNumber(),
		CommitNumber: r.commitNumber,
		Replica:      uint32(r.index),
	})
}

// onNewState applies a part of the current view's log sent by its primary.
func (r *Replica) onNewState(m *messages.NewState) {
	if r.status == StatusRecovering || m.View != r.viewNumber || (r.status == StatusNormal && r.isPrimary()) {
		return
	}
	first := m.OpNumber + 1 - uint64(len(m.Entries))
	if int(m.Replica) != r.primaryOf(m.View) || m.OpNumber < uint64(len(m.Entries)) ||
		!consecutive(m.Entries, first, -1) || m.CommitNumber > m.OpNumber {
		r.drop(DropMalformed)
		return
	}
	if r.status == StatusNormal {
		r.appendNewState(m, first)
		return
	}
	r.adoptNewState(m, first)
}

// appendNewState fills a gap in the log of a normal backup: its log is a
// prefix of the view's log, so the entries past its op number simply follow.
func (r *Replica) appendNewState(m *messages.NewState, first uint64) {
	if first > r.opNumber()+1 {
		return // Still a gap: an answer to an older request.
	}
	r.resetInactivity()
	r.stateRequested = false
	for _, e := range m.Entries {
		if e.OpNumber == r.opNumber()+1 {
			r.log = append(r.log, e)
		}
	}
	r.sendPrepareOK()
	r.commitUpTo(min(m.CommitNumber, r.opNumber()))
}

// adoptNewState completes joinStartedView: the entries up to the commit
// number are committed, hence the same in every view's log, and the rest of
// the log is replaced by the view's own. The replica is then normal in the
// view and may acknowledge.
func (r *Replica) adoptNewState(m *messages.NewState, first uint64) {
	if first > r.commitNumber+1 {
		return // It would leave a hole after our committed prefix.
	}
	if m.OpNumber < r.commitNumber {
		r.drop(DropMalformed) // A view's log cannot end before an op we know is committed.
		return
	}
	r.stateRequested = false
	r.log = slices.Concat(r.log[:first-1], m.Entries)
	r.becomeNormal()
	r.commitUpTo(m.CommitNumber)
	r.sendPrepareOK()
}
