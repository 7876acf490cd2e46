package vsr

import (
	"github.com/vsrgo/vsr/messages"
)

// State transfer (paper section 5.2), with the fix for the later-view case
// from Vanlightly's TLA+ analysis of VR Revisited, in bounded messages: a
// NewState carries as many entries as fit, and a replica that needs ops below
// its source's log fetches the source's checkpoint first.
//
// Two kinds of request share GetState/NewState. One asks the primary of the
// replica's view for that view's log (a backup with a gap, or a replica that
// joins a view that started without it). The other, committed_only, asks any
// replica for committed entries: a new primary whose log lacks committed ops
// before the suffix it chose, and a recovering replica, both need those, and
// no replica is normal in their view to ask.

// catchUpState is a fetch of committed state up to target from source.
type catchUpState struct {
	active bool
	source int
	target uint64
	// progress is the commit number when the source last helped, and
	// stalls counts the resends since: a source that stays silent for
	// catchUpStalls resends (it crashed, or it left the group) is replaced
	// by the next member of the epoch. Any member may serve the committed
	// ops, and one of a later epoch answers with the news of it.
	progress uint64
	stalls   int
}

// catchUpStalls is how many heartbeats a catch-up waits on a silent source.
const catchUpStalls = 3

// requestState asks the primary of the current view for its log after this
// replica's op number (or, while syncing, after its commit number: the
// entries past the commit number may belong to an older view's log). At most
// one request goes out per heartbeat.
func (r *Replica) requestState() {
	if r.stateRequested || r.fetch.active {
		return
	}
	r.stateRequested = true
	after := r.opNumber()
	if r.syncing {
		after = r.commitNumber
	}
	r.send(r.primaryOf(r.viewNumber), &messages.GetState{ClusterId: r.cfg.ClusterID, Epoch: r.epoch,
		View: r.viewNumber, OpNumber: after, Replica: uint32(r.index)})
}

// catchUpTo starts fetching committed state from source until the commit
// number reaches target.
func (r *Replica) catchUpTo(source int, target uint64) {
	if r.commitNumber >= target {
		return
	}
	if !r.catchUp.active || r.catchUp.source != source || r.catchUp.target < target {
		r.catchUp = catchUpState{active: true, source: source, target: target}
	}
	r.requestCommitted()
}

func (r *Replica) requestCommitted() {
	if r.fetch.active {
		return
	}
	r.send(r.catchUp.source, &messages.GetState{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: r.viewNumber,
		OpNumber: r.commitNumber, Replica: uint32(r.index), CommittedOnly: true})
}

// resendTransfer runs every heartbeat: a lost chunk or NewState costs one
// heartbeat.
func (r *Replica) resendTransfer() {
	switch {
	case r.fetch.active:
		r.resendChunkRequest()
	case r.catchUp.active:
		r.rotateStalledSource()
		r.requestCommitted()
	}
}

// rotateStalledSource moves a catch-up whose source has not helped for
// catchUpStalls heartbeats on to the next member of the epoch.
func (r *Replica) rotateStalledSource() {
	c := &r.catchUp
	if r.commitNumber > c.progress {
		c.progress, c.stalls = r.commitNumber, 0
		return
	}
	if c.stalls++; c.stalls < catchUpStalls || r.n < 2 {
		return
	}
	c.stalls = 0
	c.source = (c.source + 1) % r.n
	if c.source == r.index {
		c.source = (c.source + 1) % r.n
	}
}

// joinStartedView handles a normal-operation message from the primary of a
// view v that this replica is not normal in: v has started, and this replica
// does not hold its log. The paper truncates the log to the commit number and
// fetches the rest, but a replica that truncates to a stale commit number and
// then votes can lose a committed op. Instead the replica keeps its log and
// its last normal view, moves to v in view-change status, and asks v's primary
// for the log. Until it holds the whole of it, it sends no PrepareOK; if a
// view change happens first, its DoViewChange truthfully reports its older
// last normal view, so its log can never win over a log from v.
func (r *Replica) joinStartedView(v uint64) {
	if v > r.viewNumber || r.status == StatusNormal {
		r.enterView(v)
		r.status = StatusViewChange
		r.election.start(r.cfg.ViewChangeTicks + r.jitter())
	}
	r.primaryHeardAt = r.ticks // Only v's primary says that v has started.
	r.syncing = true
	r.requestState()
}

// onGetState answers a replica that lacks part of a log.
func (r *Replica) onGetState(m *messages.GetState) {
	if m.CommittedOnly {
		r.serveCommitted(m)
		return
	}
	if r.status != StatusNormal || m.View != r.viewNumber || m.OpNumber > r.opNumber() {
		return
	}
	if m.OpNumber < r.logBase {
		if r.buggy(BugTruncateNoFallback) || r.checkpoint == nil {
			return
		}
		r.send(int(m.Replica), r.checkpointPointer(false))
		return
	}
	entries := r.fitFrom(m.OpNumber+1, r.opNumber(), r.cfg.entriesBytes(), MaxPrepareEntries)
	r.send(int(m.Replica), r.newStateMessage(entries, false))
}

// serveCommitted answers a committed_only GetState in any status but
// recovering: committed entries are the same in every log.
func (r *Replica) serveCommitted(m *messages.GetState) {
	if r.status == StatusRecovering || m.OpNumber >= r.commitNumber {
		return
	}
	if m.OpNumber < r.logBase {
		if r.checkpoint != nil {
			r.send(int(m.Replica), r.checkpointPointer(true))
		}
		return
	}
	entries := r.fitFrom(m.OpNumber+1, r.commitNumber, r.cfg.entriesBytes(), MaxPrepareEntries)
	r.send(int(m.Replica), r.newStateMessage(entries, true))
}

func (r *Replica) newStateMessage(entries []*messages.Entry, committedOnly bool) *messages.NewState {
	return &messages.NewState{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: r.viewNumber, Entries: entries,
		OpNumber: r.opNumber(), CommitNumber: r.commitNumber, Replica: uint32(r.index), CommittedOnly: committedOnly}
}

// checkpointPointer says "the ops you asked for are in my checkpoint". The
// log starts after a checkpoint, so one exists whenever the log does not
// start at op 1 (callers check anyway).
func (r *Replica) checkpointPointer(committedOnly bool) *messages.NewState {
	m := r.newStateMessage(nil, committedOnly)
	m.CheckpointOpNumber = r.checkpoint.opNumber
	return m
}

// onNewState applies a part of a log sent in answer to GetState.
func (r *Replica) onNewState(m *messages.NewState) {
	if r.status == StatusNormal && r.isPrimary() {
		return
	}
	first := m.CommitNumber + 1
	if len(m.Entries) > 0 {
		first = m.Entries[0].GetOpNumber()
	}
	last := first + uint64(len(m.Entries)) - 1
	if len(m.Entries) > MaxPrepareEntries || !consecutive(m.Entries, first, -1) || m.CommitNumber > m.OpNumber ||
		(len(m.Entries) > 0 && (first == 0 || last > m.OpNumber || (m.CommittedOnly && last > m.CommitNumber))) ||
		m.CheckpointOpNumber > m.CommitNumber {
		r.drop(DropMalformed)
		return
	}
	if m.CommittedOnly {
		r.onCommittedState(m)
		return
	}
	if r.status == StatusRecovering || m.View != r.viewNumber {
		return
	}
	if int(m.Replica) != r.primaryOf(m.View) {
		r.drop(DropBadReplica)
		return
	}
	r.stateRequested = false
	if m.CheckpointOpNumber > r.commitNumber {
		r.startFetch(int(m.Replica))
		return
	}
	if r.status == StatusNormal {
		r.appendNewState(m, first)
		return
	}
	r.adoptNewState(m, first, last)
}

// onCommittedState applies committed entries, or starts fetching the
// checkpoint they lie in.
func (r *Replica) onCommittedState(m *messages.NewState) {
	if r.epochOpUnknown || (r.status == StatusJoining && r.change.started == nil) {
		// A late answer to an earlier life's request: this replica cannot
		// tell yet which reconfiguration began its epoch (see
		// epochOpUnknown), or which epoch it joins.
		return
	}
	if m.CheckpointOpNumber > r.commitNumber {
		r.startFetch(int(m.Replica))
		return
	}
	if r.applyCommitted(m.Entries, m.CommitNumber) {
		r.onTransferProgress()
	}
}

// appendNewState fills a gap in the log of a normal backup: its log is a
// prefix of the view's log, so the entries past its op number simply follow.
func (r *Replica) appendNewState(m *messages.NewState, first uint64) {
	if first > r.opNumber()+1 {
		return // Still a gap: an answer to an older request.
	}
	r.resetInactivity()
	for _, e := range m.Entries {
		if e.OpNumber == r.opNumber()+1 {
			r.appendEntry(e)
		}
	}
	r.acknowledge()
	r.commitUpTo(min(m.CommitNumber, r.opNumber()))
	if r.opNumber() < m.OpNumber {
		r.requestState() // More than one message could carry.
	}
}

// adoptNewState completes joinStartedView. The entries up to the commit
// number are committed, hence the same in every view's log. When the answer
// holds the whole rest of the view's log, the replica replaces its suffix by
// it and is normal in the view. When it holds only a part, the replica takes
// the committed entries of that part and asks again: a replica normal in view
// v must hold at least the log v started with, or its DoViewChange (which
// claims v as its last normal view) could win a later view change without ops
// committed before v, so it never becomes normal with part of the log.
func (r *Replica) adoptNewState(m *messages.NewState, first, last uint64) {
	if first > r.commitNumber+1 {
		return // It would leave a hole after our committed prefix.
	}
	if m.OpNumber < r.commitNumber {
		r.drop(DropMalformed) // A view's log cannot end before an op we know is committed.
		return
	}
	if last < m.OpNumber {
		r.applyCommitted(m.Entries, m.CommitNumber)
		r.requestState()
		return
	}
	r.adoptSuffix(m.Entries)
	r.becomeNormal()
	r.commitUpTo(m.CommitNumber)
	r.acknowledge()
}

// applyCommitted takes, from entries, the ones up to commit (committed at
// their sender) that follow this replica's commit number, and executes them.
// A committed entry that differs from this replica's candidate in its slot
// shows that the candidates from there on belong to an abandoned log, so they
// go. It reports whether the commit number moved.
func (r *Replica) applyCommitted(entries []*messages.Entry, commit uint64) bool {
	before := r.commitNumber
	for _, e := range entries {
		if e.OpNumber != r.commitNumber+1 || e.OpNumber > commit {
			continue
		}
		if own := r.entryAt(e.OpNumber); own == nil || !sameEntry(own, e) {
			r.truncateAfter(r.commitNumber)
			r.appendEntry(e)
		}
		r.commitUpTo(e.OpNumber)
	}
	return r.commitNumber > before
}

// sameEntry reports whether a and b are the same op: a primary assigns each
// op number once in its view, so op number and view name an entry.
func sameEntry(a, b *messages.Entry) bool {
	return a.OpNumber == b.OpNumber && a.View == b.View && a.ClientId == b.ClientId &&
		a.RequestNumber == b.RequestNumber
}

// adoptSuffix makes entries the log after the commit number. The entries
// must start at or below commitNumber+1 and hold the log's end; those at or
// below the commit number are committed, hence the ones the log holds.
func (r *Replica) adoptSuffix(entries []*messages.Entry) {
	r.truncateAfter(r.commitNumber)
	for _, e := range entries {
		if e.OpNumber == r.opNumber()+1 {
			r.appendEntry(e)
		}
	}
}

// onTransferProgress runs when fetched state moved the commit number (from
// entries or a checkpoint): whatever waited for it goes on.
func (r *Replica) onTransferProgress() {
	if r.catchUp.active && r.commitNumber >= r.catchUp.target {
		r.catchUp = catchUpState{}
	}
	switch {
	case r.status == StatusJoining:
		if r.commitNumber >= r.change.op {
			r.finishJoining()
		} else if r.catchUp.active {
			r.requestCommitted()
		}
	case r.status == StatusRecovering:
		r.continueRecovery()
	case r.status == StatusViewChange && !r.syncing && r.isPrimary():
		if r.catchUp.active {
			r.requestCommitted()
		} else if len(r.viewChange.doViewChanges) >= r.f+1 {
			r.startView()
		}
	case r.catchUp.active:
		r.requestCommitted()
	default:
		r.stateRequested = false
		r.requestState()
	}
}
