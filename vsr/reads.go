package vsr

import (
	"github.com/vsrgo/vsr/messages"
)

// Reads without the log.
//
// A linearizable read must not be served by a primary that may have been
// deposed. The primary holds each read until (1) a ConfirmView round that
// started after the read arrived has been answered by f backups that are
// still normal in its view, and (2) it has committed every op that was in its
// log when the read arrived. A new view needs f+1 replicas that have left the
// old one; the confirming quorum overlaps it, so no later view had started
// when the round was confirmed, and every write acknowledged before the read
// arrived is in this primary's log, hence in the state the read sees. Reads
// that arrive while a round is in flight wait for the next one, which
// batches them under load.
//
// A stale read is served by any normal replica from the state it has
// executed, with no such check; the reply says Stale.

// readState is the primary's per-view read bookkeeping.
type readState struct {
	pending  []pendingRead
	round    uint64 // the latest round started
	inFlight bool   // round has been sent and not yet confirmed
	acks     []bool // acks[j]: backup j confirmed round
	// confirmed is the latest confirmed round.
	confirmed uint64
}

type pendingRead struct {
	req *messages.Request
	// readIndex is the op number at arrival: the read waits for it to commit.
	readIndex uint64
	// round is the confirmation round the read waits for; 0 until assigned.
	round uint64
}

// serveStaleRead answers a READ_MODE_STALE request from this replica's
// executed state.
func (r *Replica) serveStaleRead(m *messages.Request) {
	reply := &messages.Reply{View: r.viewNumber, ClientId: m.ClientId, RequestNumber: m.RequestNumber, Stale: true}
	if !r.sm.ReadOnly(m.Operation) {
		reply.Error = messages.ReplyError_REPLY_ERROR_NOT_READ_ONLY
	} else {
		reply.Result = r.sm.Apply(m.Operation)
	}
	r.reply(m.ReplyTo, reply)
}

// queueLinearizableRead holds a read at the primary until it may be served.
func (r *Replica) queueLinearizableRead(m *messages.Request) {
	if !r.sm.ReadOnly(m.Operation) {
		r.reply(m.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: m.ClientId,
			RequestNumber: m.RequestNumber, Error: messages.ReplyError_REPLY_ERROR_NOT_READ_ONLY})
		return
	}
	r.primary.reads.pending = append(r.primary.reads.pending, pendingRead{req: m, readIndex: r.opNumber()})
}

// maybeStartConfirmRound starts a round for the reads that have none, unless
// one is already in flight.
func (r *Replica) maybeStartConfirmRound() {
	rs := &r.primary.reads
	if rs.inFlight || !hasUnassigned(rs.pending) {
		return
	}
	rs.round++
	for k := range rs.pending {
		if rs.pending[k].round == 0 {
			rs.pending[k].round = rs.round
		}
	}
	rs.acks = make([]bool, r.n)
	rs.inFlight = true
	if r.f == 0 {
		r.confirmRound()
		return
	}
	r.broadcast(r.confirmViewMessage())
}

func hasUnassigned(reads []pendingRead) bool {
	for _, pr := range reads {
		if pr.round == 0 {
			return true
		}
	}
	return false
}

func (r *Replica) confirmViewMessage() *messages.ConfirmView {
	return &messages.ConfirmView{ClusterId: r.cfg.ClusterID, View: r.viewNumber,
		Round: r.primary.reads.round, Replica: uint32(r.index)}
}

// resendConfirmView repeats an unanswered round every heartbeat.
func (r *Replica) resendConfirmView() {
	if r.primary.reads.inFlight {
		r.broadcast(r.confirmViewMessage())
	}
}

// onConfirmView answers the primary of this replica's view, if this replica
// is still normal in it. It also counts as hearing from the primary.
func (r *Replica) onConfirmView(m *messages.ConfirmView) {
	if !r.fromPrimary(m.View, m.Replica) {
		return
	}
	r.send(int(m.Replica), &messages.ConfirmViewOK{ClusterId: r.cfg.ClusterID, View: r.viewNumber,
		Round: m.Round, Replica: uint32(r.index)})
}

// onConfirmViewOK counts a confirmation of the current round.
func (r *Replica) onConfirmViewOK(m *messages.ConfirmViewOK) {
	rs := &r.primary.reads
	if r.status != StatusNormal || !r.isPrimary() || m.View != r.viewNumber || !rs.inFlight || m.Round != rs.round {
		return
	}
	rs.acks[m.Replica] = true
	count := 0
	for _, ok := range rs.acks {
		if ok {
			count++
		}
	}
	if count >= r.f {
		r.confirmRound()
	}
}

func (r *Replica) confirmRound() {
	rs := &r.primary.reads
	rs.inFlight = false
	rs.confirmed = rs.round
	r.serveReads()
}

// serveReads answers every held read whose round is confirmed and whose
// read index is committed.
func (r *Replica) serveReads() {
	rs := &r.primary.reads
	kept := rs.pending[:0]
	for _, pr := range rs.pending {
		if pr.round == 0 || pr.round > rs.confirmed || pr.readIndex > r.commitNumber {
			kept = append(kept, pr)
			continue
		}
		r.reply(pr.req.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: pr.req.ClientId,
			RequestNumber: pr.req.RequestNumber, Result: r.sm.Apply(pr.req.Operation)})
	}
	rs.pending = kept
}
