package vsr

import (
	"github.com/vsrgo/vsr/messages"
)

// View change (paper section 4.2), the canonical protocol: StartViewChange,
// then DoViewChange to the new primary, then StartView. There is no
// acknowledgement round.

// viewChangeState is the vote state of one view change. It belongs to the
// view being changed to and is reset whenever the replica enters another
// view or becomes normal.
type viewChangeState struct {
	// startViewChanges[j] is set when StartViewChange for this view came
	// from replica j.
	startViewChanges []bool
	// doViewChanges holds, at the new primary, the DoViewChange of each
	// replica for this view.
	doViewChanges map[int]*messages.DoViewChange
	// sentDoViewChange is this replica's own DoViewChange once it sent it.
	sentDoViewChange *messages.DoViewChange
	// started is set when this replica broadcast StartViewChange itself.
	started bool
	// caughtUp is set once this replica, the new primary, had to fetch
	// committed ops before starting the view; answerFrom is its commit
	// number then, the first op it executed without replying.
	caughtUp   bool
	answerFrom uint64
}

func (s *viewChangeState) reset() { *s = viewChangeState{} }

// startViewChange moves the replica to view v in view-change status and
// tells everyone (on a timeout, v is the next view; on hearing of a higher
// view change, it is that view).
func (r *Replica) startViewChange(v uint64) {
	r.enterView(v)
	r.status = StatusViewChange
	r.viewChange.started = true
	r.election.start(r.cfg.ViewChangeTicks + r.jitter())
	r.broadcast(r.startViewChangeMessage())
	r.maybeSendDoViewChange() // With n = 1 no other vote is needed.
}

// enterView moves to view v, leaving whatever the replica did in its old one.
// The log, the commit number and the last normal view stay: they are what the
// replica brings to the view change.
func (r *Replica) enterView(v uint64) {
	r.viewNumber = v
	r.syncing = false
	r.viewChange.reset()
	r.viewChange.startViewChanges = make([]bool, r.n)
	r.viewChange.doViewChanges = map[int]*messages.DoViewChange{}
	r.primary = primaryState{}
	r.probe = probeState{}
	r.clientTable.clearInProgress()
	if r.status != StatusRecovering {
		r.catchUp = catchUpState{} // a new primary's catch-up belongs to its view
	}
}

func (r *Replica) startViewChangeMessage() *messages.StartViewChange {
	return &messages.StartViewChange{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: r.viewNumber, Replica: uint32(r.index)}
}

// onStartViewChange counts a vote for a view change, joining it if it is for
// a later view than this replica's.
func (r *Replica) onStartViewChange(m *messages.StartViewChange) {
	if r.status == StatusRecovering || m.View < r.viewNumber {
		return
	}
	if m.View == r.viewNumber && (r.status == StatusNormal || r.syncing) {
		return // That view has started already.
	}
	if m.View > r.viewNumber {
		if !r.joins(m.Replica) {
			return // This replica still hears its primary (liveness.go).
		}
		r.startViewChange(m.View)
	}
	r.viewChange.startViewChanges[m.Replica] = true
	r.maybeSendDoViewChange()
}

// maybeSendDoViewChange sends this replica's DoViewChange to the new primary
// once f other replicas have voted for the view change: only then is it sure
// that a quorum has stopped accepting Prepares in the old view.
func (r *Replica) maybeSendDoViewChange() {
	if r.viewChange.sentDoViewChange != nil || r.countStartViewChanges() < r.f {
		return
	}
	m := &messages.DoViewChange{
		ClusterId: r.cfg.ClusterID, Epoch: r.epoch,
		View:           r.viewNumber,
		Entries:        r.uncommittedSuffix(),
		LastNormalView: r.lastNormalView,
		OpNumber:       r.opNumber(),
		CommitNumber:   r.commitNumber,
		Replica:        uint32(r.index),
	}
	r.viewChange.sentDoViewChange = m
	if r.isPrimary() {
		r.recordDoViewChange(m)
		return
	}
	r.send(r.primaryOf(r.viewNumber), m)
}

func (r *Replica) countStartViewChanges() int {
	count := 0
	for j, voted := range r.viewChange.startViewChanges {
		if voted && j != r.index {
			count++
		}
	}
	return count
}

// resendViewChange runs every heartbeat in view-change status, so that a lost
// vote does not cost a whole view-change timeout; a replica that is only
// fetching a started view's log asks for it again instead.
func (r *Replica) resendViewChange() {
	if r.syncing {
		r.requestState()
		return
	}
	if r.viewChange.started {
		r.broadcast(r.startViewChangeMessage())
	}
	if m := r.viewChange.sentDoViewChange; m != nil && !r.isPrimary() {
		r.send(r.primaryOf(r.viewNumber), m)
	}
}

// onDoViewChange collects DoViewChange messages at the primary of their view.
func (r *Replica) onDoViewChange(m *messages.DoViewChange) {
	if r.status == StatusRecovering || m.View < r.viewNumber {
		return
	}
	if r.primaryOf(m.View) != r.index || m.LastNormalView >= m.View ||
		!validSuffix(m.Entries, m.CommitNumber, m.OpNumber) {
		r.drop(DropMalformed)
		return
	}
	if m.View == r.viewNumber && r.status == StatusNormal {
		r.send(int(m.Replica), r.startViewMessage(m.CommitNumber)) // It missed the StartView.
		return
	}
	if m.View > r.viewNumber || r.syncing {
		if !r.joins(m.Replica) {
			return // This replica still hears its primary (liveness.go).
		}
		r.startViewChange(m.View)
	}
	r.recordDoViewChange(m)
}

// recordDoViewChange keeps one DoViewChange per replica and starts the view
// once f+1 of them, counting this replica's own, have arrived. Acting on
// fewer could miss the one log that holds a committed op.
func (r *Replica) recordDoViewChange(m *messages.DoViewChange) {
	r.viewChange.doViewChanges[int(m.Replica)] = m
	if len(r.viewChange.doViewChanges) >= r.f+1 || r.buggy(BugFirstDoViewChange) {
		r.startView()
	}
}

// startView makes this replica the primary of its view: it takes the log with
// the largest last normal view and, among those, the largest op number; the
// commit number is the largest any replica reported. Each DoViewChange
// carries only its sender's uncommitted suffix, so the new log is the
// committed prefix up to the chosen sender's commit number, then the chosen
// suffix: a new primary whose commit number is below the chosen one fetches
// the committed ops it lacks first (TigerBeetle's new primary repairs its log
// the same way before it sends start_view). It becomes normal, executes the
// committed ops it had not executed, replying to their clients, and sends
// StartView with the new commit number so backups execute them too.
func (r *Replica) startView() {
	best := chooseLog(r.viewChange.doViewChanges, r.buggy(BugLogByOpNumber))
	if best.OpNumber < r.commitNumber {
		// The chosen log ends before an op this replica knows is committed:
		// no honest set of f+1 DoViewChanges does that (a committed op is in
		// the log of every replica normal in a later view), so one is
		// forged or corrupt. Drop it and wait for another.
		r.drop(DropMalformed)
		delete(r.viewChange.doViewChanges, int(best.Replica))
		return
	}
	commit, lowest, source := r.commitNumber, r.commitNumber, r.index
	for _, m := range r.viewChange.doViewChanges {
		// The source of a catch-up is the replica with the largest commit
		// number, the lowest index among equals, so that every run makes
		// the same choice (the map's order is random).
		if m.CommitNumber > commit || (m.CommitNumber == commit && source != r.index && int(m.Replica) < source) {
			commit, source = m.CommitNumber, int(m.Replica)
		}
		lowest = min(lowest, m.CommitNumber)
	}
	if r.commitNumber < best.CommitNumber {
		if !r.viewChange.caughtUp {
			r.viewChange.caughtUp, r.viewChange.answerFrom = true, r.commitNumber
		}
		r.catchUpTo(source, best.CommitNumber)
		return
	}
	r.catchUp = catchUpState{}
	caughtUp, answerFrom := r.viewChange.caughtUp, r.viewChange.answerFrom
	r.adoptSuffix(best.Entries)
	r.becomeNormal()
	if caughtUp {
		r.answerCaughtUp(answerFrom)
	}
	r.commitUpTo(commit)
	r.broadcast(r.startViewMessage(lowest)) // carries the new commit number
}

// answerCaughtUp replies for the ops a new primary executed while it fetched
// committed state before its view started: they ran in view-change status,
// where no reply goes out. Each op that is still its client's latest gets the
// stored result, as the paper's new primary replies for what it executes.
// Ops the fetch brought in a checkpoint are gone from the log; their clients
// get the stored reply when they retry.
func (r *Replica) answerCaughtUp(from uint64) {
	for _, e := range r.entriesFrom(max(from, r.logBase)+1, r.commitNumber) {
		if s := r.clientTable.latest(e); s != nil {
			r.reply(e.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: e.ClientId,
				RequestNumber: e.RequestNumber, Result: s.result, Session: s.session})
		}
	}
}

// chooseLog picks the DoViewChange whose log the new view starts from: the
// largest last normal view first, then the largest op number. A log from a
// later normal view wins even when it is shorter, because a longer log from
// an earlier view may hold ops that the later view replaced. Ties go to the
// lowest replica index, so every run makes the same choice.
func chooseLog(dvcs map[int]*messages.DoViewChange, byOpNumberOnly bool) *messages.DoViewChange {
	var best *messages.DoViewChange
	for _, m := range dvcs {
		if byOpNumberOnly {
			if best == nil || m.OpNumber > best.OpNumber || (m.OpNumber == best.OpNumber && m.Replica < best.Replica) {
				best = m
			}
			continue
		}
		if best == nil || m.LastNormalView > best.LastNormalView ||
			(m.LastNormalView == best.LastNormalView && m.OpNumber > best.OpNumber) ||
			(m.LastNormalView == best.LastNormalView && m.OpNumber == best.OpNumber && m.Replica < best.Replica) {
			best = m
		}
	}
	return best
}

// startViewMessage carries the uncommitted suffix and, as room allows, the
// committed entries before it down to op from+1 (the lowest commit number
// among the DoViewChanges), so that backups need no state transfer in the
// usual case.
func (r *Replica) startViewMessage(from uint64) *messages.StartView {
	from = max(min(from, r.commitNumber), r.logBase)
	entries := r.fitTail(from, r.opNumber(), r.cfg.entriesBytes())
	if len(entries) > MaxPrepareEntries {
		entries = entries[len(entries)-MaxPrepareEntries:]
	}
	return &messages.StartView{
		ClusterId: r.cfg.ClusterID, Epoch: r.epoch,
		View:         r.viewNumber,
		Entries:      entries,
		OpNumber:     r.opNumber(),
		CommitNumber: r.commitNumber,
		Replica:      uint32(r.index),
	}
}

// onStartView adopts the new primary's log, becomes normal in its view,
// executes everything committed (not just marks it) and acknowledges the log
// so the primary can commit the uncommitted suffix. A backup whose commit
// number is below the first entry the message carries lacks committed ops:
// it joins the view as a replica that must fetch the view's log first.
func (r *Replica) onStartView(m *messages.StartView) {
	if r.status == StatusRecovering || m.View < r.viewNumber {
		return
	}
	if m.View == r.viewNumber && r.status == StatusNormal {
		return // A duplicate.
	}
	first := m.OpNumber + 1 - uint64(len(m.Entries))
	if int(m.Replica) != r.primaryOf(m.View) || m.OpNumber < uint64(len(m.Entries)) ||
		len(m.Entries) > MaxPrepareEntries || !consecutive(m.Entries, first, -1) ||
		m.CommitNumber > m.OpNumber || first > m.CommitNumber+1 || m.OpNumber < r.commitNumber {
		r.drop(DropMalformed)
		return
	}
	if first > r.commitNumber+1 {
		r.joinStartedView(m.View)
		return
	}
	r.enterView(m.View)
	r.adoptSuffix(m.Entries)
	r.becomeNormal()
	r.commitUpTo(m.CommitNumber)
	r.acknowledge()
}
