package vsr

import (
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// Normal operation (paper section 4.1).

// onRequest handles a client's request. Only a normal replica handles one. A
// backup forwards it to its primary (the reply address travels inside the
// request, so the primary answers the client directly), except a stale read,
// which any normal replica serves.
func (r *Replica) onRequest(m *messages.Request) {
	if r.status == StatusLeaving {
		r.refuseForEpoch(m, messages.ReplyError_REPLY_ERROR_WRONG_EPOCH)
		return
	}
	if r.status != StatusNormal || m.Epoch > r.epoch {
		return // The client resends after its timeout (to another replica, if this one is behind).
	}
	control := m.Register || m.Reconfigure != nil
	if m.ClientId == 0 || m.RequestNumber == 0 || (len(m.Operation) == 0) != control ||
		(m.Register && m.Reconfigure != nil) || (control && m.ReadMode != messages.ReadMode_READ_MODE_LOG) {
		r.drop(DropMalformed)
		r.reply(m.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: m.ClientId,
			RequestNumber: m.RequestNumber, Error: messages.ReplyError_REPLY_ERROR_INVALID_REQUEST})
		return
	}
	if m.Epoch < r.epoch {
		// The client has not learned of a reconfiguration: it retries in
		// the new configuration, and nothing ran here.
		r.refuseForEpoch(m, messages.ReplyError_REPLY_ERROR_WRONG_EPOCH)
		return
	}
	if proto.Size(m) > r.cfg.maxEntryBytes() {
		r.reply(m.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: m.ClientId,
			RequestNumber: m.RequestNumber, Error: messages.ReplyError_REPLY_ERROR_TOO_LARGE})
		return
	}
	if m.ReadMode == messages.ReadMode_READ_MODE_STALE {
		r.serveStaleRead(m)
		return
	}
	if !r.isPrimary() {
		r.send(r.primaryOf(r.viewNumber), m)
		return
	}
	if m.ReadMode == messages.ReadMode_READ_MODE_LINEARIZABLE {
		r.queueLinearizableRead(m)
		return
	}
	r.appendRequest(m)
}

// appendRequest is the primary's half of the client table check, then the
// append. A request older than the client's latest is dropped; a retry of the
// latest executed one gets its stored reply again; a retry of one still in
// the log is dropped, since its reply will come when it commits.
//
// A request from a client without a session, other than its registration,
// is refused at once (the same check runs again at execution, which is what
// decides). A request that would overfill the pipeline is refused as busy:
// the client retries it, and the uncommitted suffix, the part of the log a
// view change carries, stays within PipelineMax ops and half a message.
func (r *Replica) appendRequest(m *messages.Request) {
	s := r.clientTable.executed(m.ClientId)
	if r.buggy(BugIgnoreClientTable) || (m.Reconfigure != nil && r.buggy(BugReconfigureTwice)) {
		r.clientTable.clearInProgress()
	} else if s != nil && (m.Register || m.Session == s.session) && m.RequestNumber <= s.requestNumber {
		// A retry, or an older request, in the client's session. A
		// registration belongs to the session it opened.
		if m.RequestNumber == s.requestNumber {
			r.reply(m.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: m.ClientId,
				RequestNumber: s.requestNumber, Result: s.result, Session: s.session})
		}
		return
	}
	if m.RequestNumber <= r.clientTable.inProgress[m.ClientId] {
		return
	}
	if r.reconfiguring() {
		r.reply(m.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: m.ClientId,
			RequestNumber: m.RequestNumber, Error: messages.ReplyError_REPLY_ERROR_RECONFIGURING})
		return
	}
	if m.Reconfigure != nil {
		err := r.checkReconfiguration(m.Reconfigure.Members)
		if !r.cfg.Reconfigurable {
			err = ErrNotReconfigurable
		}
		if err != nil {
			r.reply(m.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: m.ClientId,
				RequestNumber: m.RequestNumber, Error: messages.ReplyError_REPLY_ERROR_INVALID_REQUEST,
				Result: []byte(err.Error())})
			return
		}
	}
	if !m.Register && r.clientTable.inProgress[m.ClientId] == 0 && (s == nil || m.Session < s.session) {
		// No session, or a request of a session since replaced. (A session
		// newer than the table's is a registration still in the log.)
		r.reply(m.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: m.ClientId,
			RequestNumber: m.RequestNumber, Error: messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED})
		return
	}
	e := &messages.Entry{
		OpNumber:      r.opNumber() + 1,
		View:          r.viewNumber,
		ClientId:      m.ClientId,
		RequestNumber: m.RequestNumber,
		Operation:     m.Operation,
		ReplyTo:       m.ReplyTo,
		Register:      m.Register,
		Session:       m.Session,
		Reconfigure:   m.Reconfigure,
	}
	size := entrySize(e)
	if r.opNumber()-r.commitNumber >= uint64(r.cfg.PipelineMax) ||
		r.uncommittedBytes+size > r.cfg.pipelineBytes() {
		r.reply(m.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: m.ClientId,
			RequestNumber: m.RequestNumber, Error: messages.ReplyError_REPLY_ERROR_BUSY})
		return
	}
	r.appendSized(e, size)
	r.clientTable.inProgress[m.ClientId] = m.RequestNumber
	r.maybeCommit() // With n = 1 the primary alone is a quorum.
}

// broadcastNewEntries sends the entries appended since the last Prepare to
// every backup, in batches of at most MaxBatch entries and one message. A
// Prepare does not put off the next heartbeat: the heartbeat is also when
// lost Prepares and read confirmations are sent again, and under a steady
// stream of writes it would never come.
func (r *Replica) broadcastNewEntries() {
	for r.primary.prepared < r.opNumber() {
		m := r.prepareMessage(r.primary.prepared + 1)
		r.broadcast(m)
		r.primary.prepared = m.Entries[len(m.Entries)-1].OpNumber
		if r.buggy(BugReadStarvation) {
			r.heartbeat.start(r.cfg.HeartbeatTicks)
		}
	}
}

// prepareMessage carries the entries from first on, as many as one Prepare
// may hold.
func (r *Replica) prepareMessage(first uint64) *messages.Prepare {
	entries := r.fitFrom(first, r.opNumber(), r.cfg.entriesBytes(), r.cfg.MaxBatch)
	return &messages.Prepare{
		ClusterId: r.cfg.ClusterID, Epoch: r.epoch,
		View:         r.viewNumber,
		Entries:      entries,
		CommitNumber: r.commitNumber,
		Replica:      uint32(r.index),
	}
}

// sendHeartbeats runs on the primary every heartbeat. A backup that has not
// acknowledged entries sent a heartbeat ago or more gets them again, so a lost
// Prepare or PrepareOK costs one heartbeat, not a view change; any other gets
// a Commit. Entries sent since the last heartbeat are not sent again: under
// load the answer to them is usually on its way.
func (r *Replica) sendHeartbeats() {
	resendFrom := r.primary.resendFrom
	r.primary.resendFrom = r.primary.prepared
	for j := 0; j < r.n; j++ {
		if j == r.index {
			continue
		}
		first := max(r.primary.acked[j], r.commitNumber) + 1
		if first <= resendFrom || (r.buggy(BugReadStarvation) && first <= r.opNumber()) {
			r.send(j, r.prepareMessage(first))
			continue
		}
		r.send(j, &messages.Commit{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: r.viewNumber,
			CommitNumber: r.commitNumber, Replica: uint32(r.index)})
	}
}

// onPrepare handles a Prepare at a backup. Prepares are accepted strictly in
// op order: a Prepare past a gap triggers state transfer, never a hole, which
// is what makes PrepareOK(v, n) mean "I hold every op up to n".
func (r *Replica) onPrepare(m *messages.Prepare) {
	if len(m.Entries) == 0 || m.Entries[0].GetOpNumber() == 0 ||
		!consecutive(m.Entries, m.Entries[0].GetOpNumber(), MaxPrepareEntries) {
		r.drop(DropMalformed)
		return
	}
	if !r.fromPrimary(m.View, m.Replica) {
		return
	}
	first := m.Entries[0].OpNumber
	last := m.Entries[len(m.Entries)-1].OpNumber
	if !r.endsWithReconfiguration(m.Entries) {
		// A reconfiguration is the last op of its epoch.
		r.drop(DropMalformed)
		return
	}
	if last > max(r.commitNumber, min(m.CommitNumber, last))+uint64(r.cfg.PipelineMax) {
		// More uncommitted ops than any primary may hold: taking them would
		// let this backup's view-change suffix outgrow its bound.
		r.drop(DropMalformed)
		return
	}
	if first > r.opNumber()+1 {
		if r.buggy(BugAcceptGap) {
			r.send(r.primaryOf(r.viewNumber), &messages.PrepareOK{ClusterId: r.cfg.ClusterID, Epoch: r.epoch,
				View: r.viewNumber, OpNumber: m.Entries[len(m.Entries)-1].OpNumber, Replica: uint32(r.index)})
		}
		r.requestState()
		r.commitKnown(m.CommitNumber)
		return
	}
	for _, e := range m.Entries {
		if e.OpNumber == r.opNumber()+1 {
			r.appendEntry(e)
		}
	}
	r.acknowledge()
	r.commitKnown(m.CommitNumber)
}

// commitKnown commits up to a commit number from this view's primary, if the
// log reaches it. A number past the log commits nothing (see onCommit).
func (r *Replica) commitKnown(k uint64) {
	if k <= r.opNumber() {
		r.commitUpTo(k)
	}
}

// acknowledge makes a PrepareOK due at the end of the step (flushAck):
// PrepareOK(v, n) means "I hold every op of view v up to n", so one sent
// after the last of a batch of Prepares acknowledges them all.
func (r *Replica) acknowledge() {
	r.ackDue = true
}

// flushAck tells the primary how much of this view's log this backup holds,
// if the step made that due. It goes to the primary of the view the backup
// is in, which is the view of every Prepare it accepted. A later message of
// the same batch that took the replica out of normal status, or made it the
// primary, leaves nothing to acknowledge: the view change carries its log.
func (r *Replica) flushAck() {
	if !r.ackDue {
		return
	}
	r.ackDue = false
	if r.status != StatusNormal || r.isPrimary() {
		return
	}
	r.send(r.primaryOf(r.viewNumber), &messages.PrepareOK{ClusterId: r.cfg.ClusterID, Epoch: r.epoch,
		View: r.viewNumber, OpNumber: r.opNumber(), Replica: uint32(r.index)})
}

// onPrepareOK counts a backup's acknowledgement at the primary.
func (r *Replica) onPrepareOK(m *messages.PrepareOK) {
	if r.status != StatusNormal || m.View != r.viewNumber || !r.isPrimary() {
		return
	}
	if m.OpNumber > r.opNumber() {
		r.drop(DropMalformed) // No backup can hold more of this view's log than its primary.
		return
	}
	r.heardFromBackup(m.Replica)
	r.primary.acked[m.Replica] = max(r.primary.acked[m.Replica], m.OpNumber)
	r.maybeCommit()
}

// maybeCommit commits up to the highest op a quorum holds.
func (r *Replica) maybeCommit() {
	if k := r.quorumAcked(); k > r.commitNumber {
		r.commitUpTo(k)
	}
}

// fromPrimary is the opening that every message a backup takes from its
// primary shares (Prepare, Commit, ConfirmView), and reports whether the
// handler goes on. A recovering replica answers nothing; a message of an
// older view is ignored; one that does not come from its view's primary is
// dropped; one from a view this replica is not normal in means that view has
// started without it, so it fetches the view's log first. Otherwise the
// primary is alive, and the inactivity timer starts over.
func (r *Replica) fromPrimary(view uint64, sender uint32) bool {
	if r.status == StatusRecovering || view < r.viewNumber {
		return false
	}
	if int(sender) != r.primaryOf(view) {
		r.drop(DropBadReplica)
		return false
	}
	if view > r.viewNumber || r.status != StatusNormal {
		r.joinStartedView(view)
		return false
	}
	r.resetInactivity()
	r.heardFromPrimary()
	return true
}

// onCommit handles the primary's heartbeat at a backup. The backup answers
// with a PrepareOK for what it holds, which tells the primary that it is heard
// (checkQuorum) and repeats an acknowledgement that may have been lost.
//
// A commit number past the end of the log commits nothing: the backup cannot
// tell a primary far ahead from a forged or corrupt number, and committing its
// whole log on such a word could execute ops that a view change later
// replaces. It fetches the missing ops instead, and commits what the answer
// says is committed.
func (r *Replica) onCommit(m *messages.Commit) {
	if !r.fromPrimary(m.View, m.Replica) {
		return
	}
	r.acknowledge()
	if m.CommitNumber > r.opNumber() {
		r.requestState() // The Prepares for those ops were lost.
	}
	r.commitKnown(m.CommitNumber)
}

// commitUpTo commits and executes every op up to k, in order. On the primary
// each execution is answered to its client; backups execute silently, keeping
// their client tables current for the day one of them becomes primary.
func (r *Replica) commitUpTo(k uint64) {
	// Never past the log: only a peer breaking the protocol could ask for
	// that (a DoViewChange whose commit number exceeds the chosen log), and
	// a replica must not crash on a peer's word.
	k = min(k, r.opNumber())
	for r.commitNumber < k {
		e := r.entryAt(r.commitNumber + 1)
		r.commitNumber++
		r.uncommittedBytes -= r.sizeAt(e.OpNumber)
		result, replyErr, fresh, ran := r.execute(e)
		r.clientTable.expire(e.OpNumber)
		r.out.Committed = append(r.out.Committed, e)
		answers := fresh && r.status == StatusNormal && r.isPrimary()
		view := r.viewNumber
		// The reconfiguration that ends this replica's epoch; one that
		// began it is executed again only by a replica fetching the state
		// its epoch began with.
		ends := e.Reconfigure != nil && e.OpNumber > r.change.op && (ran || r.buggy(BugReconfigureTwice))
		if ends {
			r.endEpoch(e)
		}
		if answers {
			reply := &messages.Reply{View: view, ClientId: e.ClientId,
				RequestNumber: e.RequestNumber, Result: result, Error: replyErr}
			if s := r.clientTable.executed(e.ClientId); s != nil {
				reply.Session = s.session
			}
			if proto.Size(reply) > r.cfg.MaxMessageBytes-messageOverhead {
				reply.Result, reply.Error = nil, messages.ReplyError_REPLY_ERROR_TOO_LARGE
			}
			r.reply(e.ReplyTo, reply)
			if ends {
				reply.Members = e.Reconfigure.Members
				reply.Epoch = r.epoch
				if r.status == StatusLeaving {
					reply.Epoch = r.change.nextEpoch
				}
			}
		}
		r.maybeCheckpoint(e.OpNumber)
		if ends {
			break
		}
	}
	if r.status == StatusNormal && r.isPrimary() {
		r.serveReads()
	}
}

// execute applies e to the state machine unless the client table shows that
// the request already ran, in which case it returns the stored result. The
// check at execution time, the same on every replica, is what guarantees at
// most once even if a retry reached the log twice (say, once before and once
// after a view change). fresh is false for an entry that did not run now and
// whose reply is not the client's latest.
//
// A registration opens a new session, named by its op number, and runs
// nothing; a registration older than the client's latest request in its
// session is a late copy and opens nothing. An entry of a client without a
// session (it expired while the entry waited in the pipeline), or of a
// session since replaced, is not executed: its reply says so. A late copy
// of a registration can open a session after the client's expired, but not
// the one the client's old requests name, so none of them runs again. ran
// says whether the entry took effect now: a reconfiguration ends its epoch
// only then.
func (r *Replica) execute(e *messages.Entry) (result []byte, replyErr messages.ReplyError, fresh, ran bool) {
	s := r.clientTable.executed(e.ClientId)
	inSession := s != nil && (e.Register || e.Session == s.session)
	if inSession && e.RequestNumber <= s.requestNumber && !r.buggy(BugIgnoreClientTable) {
		return s.result, messages.ReplyError_REPLY_ERROR_NONE, e.RequestNumber == s.requestNumber, false
	}
	switch {
	case e.Register:
		r.clientTable.open(e.ClientId, e.RequestNumber, e.OpNumber)
		return nil, messages.ReplyError_REPLY_ERROR_NONE, true, true
	case !inSession && !r.buggy(BugIgnoreClientTable):
		r.clientTable.forget(e.ClientId, e.RequestNumber)
		return nil, messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED, true, false
	}
	if e.Reconfigure == nil { // A reconfiguration changes the group, not the service.
		result = r.sm.Apply(e.Operation)
	}
	r.clientTable.record(e.ClientId, e.RequestNumber, e.OpNumber, result)
	return result, messages.ReplyError_REPLY_ERROR_NONE, true, true
}
