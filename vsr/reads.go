package vsr

import (
	"slices"

	"google.golang.org/protobuf/proto"

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

// Under a steady stream of writes the primary still confirms on every
// heartbeat: an unconfirmed round is replaced there by a new one, and an
// answer to a round confirms every round before it (the backup was still in
// the view after they all started), so one lost ConfirmView, or a backup
// busy catching up, costs one heartbeat, never a wait as long as the writes.
// At most PipelineMax reads, and half a message of them, wait at once; past
// that a read is refused as busy and the client retries it.

// readState is the primary's per-view read bookkeeping.
type readState struct {
	pending      []pendingRead
	pendingBytes int
	round        uint64 // the latest round started
	// acked[j] is the latest round backup j confirmed.
	acked []uint64
	// confirmed is the latest confirmed round: f backups confirmed it or a
	// later one.
	confirmed uint64
}

// startRounds numbers this primary's rounds from a random base whose low 32
// bits are zero: a primary restarted from its disk in the same view must
// not count a confirmation of a round its earlier incarnation sent (that
// backup confirmed the view back then, not after this read arrived), and
// round numbers do not survive the restart. A confirmation counts only for
// rounds past confirmed and up to round, so an old one counts only if both
// incarnations drew the same high 32 bits.
func (rs *readState) startRounds(random uint64) {
	rs.round = random &^ (1<<32 - 1)
	rs.confirmed = rs.round
}

type pendingRead struct {
	req *messages.Request
	// readIndex is the op number at arrival: the read waits for it to commit.
	readIndex uint64
	// round is the confirmation round the read waits for; 0 until assigned.
	round uint64
	size  int // the request's encoded size
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
	rs := &r.primary.reads
	for _, pr := range rs.pending {
		if pr.req.ClientId == m.ClientId && pr.req.RequestNumber == m.RequestNumber {
			return // a retry of a read already held: its answer will come
		}
	}
	size := proto.Size(m)
	if !r.buggy(BugReadStarvation) && (len(rs.pending) >= r.cfg.PipelineMax || rs.pendingBytes+size > r.cfg.pipelineBytes()) {
		r.reply(m.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: m.ClientId,
			RequestNumber: m.RequestNumber, Error: messages.ReplyError_REPLY_ERROR_BUSY})
		return
	}
	rs.pending = append(rs.pending, pendingRead{req: m, readIndex: r.opNumber(), size: size})
	rs.pendingBytes += size
}

// maybeStartConfirmRound starts a round for the reads that have none, unless
// one is already in flight: reads that arrive meanwhile wait for the next
// round, which batches them under load.
func (r *Replica) maybeStartConfirmRound() {
	rs := &r.primary.reads
	if rs.round > rs.confirmed || !hasUnassigned(rs.pending) {
		return
	}
	r.startConfirmRound()
}

// startConfirmRound starts a new round, for every read without one.
func (r *Replica) startConfirmRound() {
	rs := &r.primary.reads
	rs.round++
	for k := range rs.pending {
		if rs.pending[k].round == 0 {
			rs.pending[k].round = rs.round
		}
	}
	if rs.acked == nil {
		rs.acked = make([]uint64, r.n)
	}
	if r.f == 0 {
		r.confirmRound(rs.round)
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
	return &messages.ConfirmView{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: r.viewNumber,
		Round: r.primary.reads.round, Replica: uint32(r.index)}
}

// resendConfirmView runs every heartbeat: a round still unanswered is
// replaced by a new one, which also takes the reads that came since.
func (r *Replica) resendConfirmView() {
	rs := &r.primary.reads
	if rs.round <= rs.confirmed {
		return
	}
	if r.buggy(BugReadStarvation) {
		r.broadcast(r.confirmViewMessage())
		return
	}
	r.startConfirmRound()
}

// onConfirmView answers the primary of this replica's view, if this replica
// is still normal in it. It also counts as hearing from the primary.
func (r *Replica) onConfirmView(m *messages.ConfirmView) {
	if !r.fromPrimary(m.View, m.Replica) {
		return
	}
	r.send(int(m.Replica), &messages.ConfirmViewOK{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: r.viewNumber,
		Round: m.Round, Replica: uint32(r.index)})
}

// onConfirmViewOK counts a confirmation. An answer to round k shows that the
// backup was normal in the view after every round up to k had started.
func (r *Replica) onConfirmViewOK(m *messages.ConfirmViewOK) {
	rs := &r.primary.reads
	if r.status != StatusNormal || !r.isPrimary() || m.View != r.viewNumber {
		return
	}
	r.heardFromBackup(m.Replica)
	if m.Round > rs.round || m.Round <= rs.confirmed || m.Round <= rs.acked[m.Replica] {
		return // A forged round, or one confirmed already.
	}
	if r.buggy(BugReadStarvation) && m.Round != rs.round {
		return
	}
	rs.acked[m.Replica] = m.Round
	if k := r.quorumRound(); k > rs.confirmed {
		r.confirmRound(k)
	}
}

// quorumRound is the latest round that f backups have confirmed.
func (r *Replica) quorumRound() uint64 {
	rounds := make([]uint64, 0, r.n-1)
	for j, k := range r.primary.reads.acked {
		if j != r.index {
			rounds = append(rounds, k)
		}
	}
	slices.Sort(rounds)
	return rounds[len(rounds)-r.f]
}

func (r *Replica) confirmRound(k uint64) {
	r.primary.reads.confirmed = k
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
		rs.pendingBytes -= pr.size
		r.reply(pr.req.ReplyTo, &messages.Reply{View: r.viewNumber, ClientId: pr.req.ClientId,
			RequestNumber: pr.req.RequestNumber, Result: r.sm.Apply(pr.req.Operation)})
	}
	clear(rs.pending[len(kept):])
	rs.pending = kept
}
