package sim

import (
	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// The quorum checks of the oracle hold a primary to what its peers actually
// told it. The simulator sees every message delivered, so it can count, for
// the primary of a view, the acknowledgements of that view that reached it
// from the backups that sent them, and ask of each decision the primary
// makes whether those acknowledgements justify it:
//
//   - The first commit of an op anywhere is made by a primary that f
//     backups told, in its view, that they hold the op (paper section 4.1,
//     step 5: commit knowledge starts nowhere else).
//   - A linearizable read is answered by a primary that f backups told, in
//     its view, that they took part in a read round it sent after the read
//     was invoked (reads.go).
//   - A recovery ends in a state no older than the one the group was in
//     when the Recovery with the replica's current nonce first went out: a
//     view at least as late as any started by then, a log reaching every op
//     committed by then (section 4.3: the nonce exists for this).
//
// A late copy of an earlier view's message, or of an answer to an earlier
// recovery, counts for none of these, whatever the core makes of it.

// quorumWitness is what the oracle saw reach one replica while it was
// primary of one view.
type quorumWitness struct {
	view     uint64
	primary  bool
	acked    []uint64 // per backup: the largest op of its PrepareOKs of this view
	answered []uint64 // per backup: the largest round of its ConfirmViewOKs of this view
	// rounds grows by one per read round of this view: a simulated run is
	// a few thousand ticks, so at most a few hundred.
	rounds []sentRound
}

// sentRound is a read round the primary started, and when.
type sentRound struct {
	round uint64
	tick  int
}

// recoveryStart is the group's state when a replica's Recovery with a new
// nonce first went out.
type recoveryStart struct {
	nonce, view, committed uint64
}

// witness returns what the oracle saw of replica i as primary of its current
// view, starting afresh when the replica's view or role changed.
func (o *oracle) witness(i int) *quorumWitness {
	r, w := o.c.replicas[i], &o.witnesses[i]
	if w.acked == nil || w.view != r.View() || w.primary != r.IsPrimary() {
		*w = quorumWitness{view: r.View(), primary: r.IsPrimary(),
			acked: make([]uint64, o.c.n), answered: make([]uint64, o.c.n)}
	}
	return w
}

// delivered notes an acknowledgement that reached replica to from the
// replica that sent it, in the view it is primary of. It runs before the
// replica steps the message.
func (o *oracle) delivered(to int, from node, msg any) {
	r := o.c.replicas[to]
	if !r.IsPrimary() {
		return
	}
	switch m := msg.(type) {
	case *messages.PrepareOK:
		if w := o.witness(to); m.View == w.view && node(m.Replica) == from {
			w.acked[from] = max(w.acked[from], m.OpNumber)
		}
	case *messages.ConfirmViewOK:
		if w := o.witness(to); m.View == w.view && node(m.Replica) == from {
			w.answered[from] = max(w.answered[from], m.Round)
		}
	}
}

// sent notes the read rounds a primary starts.
func (o *oracle) sent(i int, msg any) {
	if m, ok := msg.(*messages.ConfirmView); ok && o.c.replicas[i].IsPrimary() {
		w := o.witness(i)
		if len(w.rounds) == 0 || m.Round > w.rounds[len(w.rounds)-1].round {
			w.rounds = append(w.rounds, sentRound{round: m.Round, tick: o.c.now})
		}
	}
}

// backupsAtOrPast counts the backups whose value in per is at least k.
func (o *oracle) backupsAtOrPast(i int, per []uint64, k uint64) int {
	count := 0
	for j, v := range per {
		if j != i && v >= k {
			count++
		}
	}
	return count
}

// checkFirstCommit runs for an op that replica i is the first to commit.
func (o *oracle) checkFirstCommit(i int, e *messages.Entry) {
	c, r := o.c, o.c.replicas[i]
	if !r.IsPrimary() {
		c.fail("oracle: replica %d (%v, not primary) was the first to commit op %d", i, r.Status(), e.OpNumber)
		return
	}
	if got := o.backupsAtOrPast(i, o.witness(i).acked, e.OpNumber); got < c.f {
		c.fail("oracle: primary %d committed op %d in view %d with PrepareOKs of that view from %d backups, fewer than f = %d",
			i, e.OpNumber, r.View(), got, c.f)
	}
}

// checkReadQuorum runs when primary i answers a linearizable read that
// client k invoked at tick invoked.
func (o *oracle) checkReadQuorum(i, k, invoked int) {
	c, w := o.c, o.witness(i)
	got := 0
	for _, s := range w.rounds {
		if s.tick >= invoked {
			got = o.backupsAtOrPast(i, w.answered, s.round)
			break
		}
	}
	if got < c.f {
		c.fail("oracle: primary %d answered client %d's linearizable read (invoked at t=%d) with %d backups confirming view %d in a round sent since, fewer than f = %d",
			i, k, invoked, got, w.view, c.f)
	}
}

// noteRecovery records the group's state when replica i's Recovery with a
// new nonce first goes out.
func (o *oracle) noteRecovery(i int, m *messages.Recovery) {
	if o.recoveries[i].nonce != m.Nonce {
		o.recoveries[i] = recoveryStart{nonce: m.Nonce, view: o.started[len(o.started)-1].view, committed: o.maxCommitted}
	}
}

// checkRecovered runs when replica i leaves recovering status.
func (o *oracle) checkRecovered(i int) {
	c, r, s := o.c, o.c.replicas[i], o.recoveries[i]
	if r.View() < s.view || r.OpNumber() < s.committed {
		c.fail("oracle: replica %d recovered into view %d with op %d, older than the group when its recovery began (view %d started, op %d committed)",
			i, r.View(), r.OpNumber(), s.view, s.committed)
	}
}

// readReply reports the client whose linearizable read rep answers, if it
// does.
func (c *Cluster) readReply(rep vsr.ClientReply) (int, bool) {
	k, ok := clientIndex(rep.To, len(c.clients))
	if !ok {
		return 0, false
	}
	cl := c.clients[k]
	return k, cl.op >= 0 && cl.mode == messages.ReadMode_READ_MODE_LINEARIZABLE &&
		rep.Reply.Error == messages.ReplyError_REPLY_ERROR_NONE && rep.Reply.RequestNumber == cl.core.RequestNumber()
}
