package sim

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// The oracle checks, after every step (durability: every tick), properties that the paper's safety
// argument rests on, from outside the core and with the whole group in view.
// The end-to-end checks (one entry per committed op, the linearizability of
// the client history, no write applied twice) see a bug only once it has
// cost a client something, which may take a second and unlikely fault; these
// see it at the step where it breaks the argument:
//
//   - Durability: an op committed anywhere is held by f+1 replicas, a
//     replica that is down or recovering counting as holding it (VR
//     survives f failures, section 4.3: a crash costs no committed op). A
//     replica holds op k if it committed k or its log holds the committed
//     entry at k. An ack counted from another view, a log truncated to a
//     stale commit number, a recovery that adopted a stale answer: each makes
//     a committed op one failure away from lost, and the count shows it.
//   - Acks are true: a PrepareOK(v, k) comes from a replica normal in view v
//     whose log reaches k (section 4.1, step 4).
//   - Recovering replicas take no part (section 4.3): they send only their
//     Recovery and requests for committed state, and answer no client.
//   - An operation is answered from a view no later view had started
//     before it was invoked (checkReply says why).
//   - Commits, linearizable reads and recoveries rest on what peers really
//     said (oracle_quorum.go).
type oracle struct {
	c *Cluster
	// started holds each rise of the highest view any replica was normal
	// in, with the tick it rose: increasing in both.
	started []viewStart
	// maxCommitted is the highest op number any replica committed.
	maxCommitted uint64
	floors       []uint64 // scratch for checkDurable
	// witnesses, recoveries and recovering hold, per replica, what the
	// quorum checks need (oracle_quorum.go).
	witnesses  []quorumWitness
	recoveries []recoveryStart
	recovering []bool
}

type viewStart struct {
	view uint64
	tick int
}

func newOracle(c *Cluster) *oracle {
	o := &oracle{c: c, witnesses: make([]quorumWitness, c.n), recoveries: make([]recoveryStart, c.n),
		recovering: make([]bool, c.n)}
	o.started = []viewStart{{view: 0, tick: 0}}
	return o
}

// afterStep checks replica i and the messages it just sent.
func (o *oracle) afterStep(i int, out vsr.Output) {
	c, r := o.c, o.c.replicas[i]
	if r.Status() == vsr.StatusNormal && r.View() > o.started[len(o.started)-1].view {
		o.started = append(o.started, viewStart{view: r.View(), tick: c.now})
	}
	recovering := r.Status() == vsr.StatusRecovering
	if o.recovering[i] && !recovering {
		o.checkRecovered(i)
	}
	o.recovering[i] = recovering
	for _, env := range out.Messages {
		o.sent(i, env.Msg)
		switch m := env.Msg.(type) {
		case *messages.Recovery:
			o.noteRecovery(i, m)
		case *messages.GetState, *messages.GetCheckpoint, *messages.NewState, *messages.CheckpointChunk:
			// A recovering replica may ask for committed state, and pass on
			// committed state it holds: no vote rests on either.
		case *messages.PrepareOK:
			if r.Status() != vsr.StatusNormal || r.View() != m.View || r.OpNumber() < m.OpNumber {
				c.fail("oracle: replica %d (%v in view %d, op %d) sent PrepareOK(view %d, op %d): an ack must be true",
					i, r.Status(), r.View(), r.OpNumber(), m.View, m.OpNumber)
			}
		default:
			if recovering {
				c.fail("oracle: replica %d sent %T while recovering: a recovering replica takes no part", i, m)
			}
		}
	}
	if recovering && len(out.Replies) > 0 {
		c.fail("oracle: replica %d answered a client while recovering", i)
	}
	for _, rep := range out.Replies {
		if k, ok := c.readReply(rep); ok {
			o.checkReadQuorum(i, k, c.clients[k].since)
		}
	}
	for _, e := range out.Committed {
		if e.OpNumber > o.maxCommitted {
			o.checkFirstCommit(i, e)
			o.maxCommitted = e.OpNumber
		}
	}
}

// checkDurable counts the holders of every committed op that fewer than f+1
// replicas have committed (each down or recovering replica counting as one
// that has): that is the commit lag of the slowest quorum, a few ops as a
// rule.
func (o *oracle) checkDurable() {
	c := o.c
	floors := o.floors[:0]
	for _, r := range c.replicas {
		if r == nil || r.Status() == vsr.StatusRecovering {
			floors = append(floors, ^uint64(0))
		} else {
			floors = append(floors, r.CommitNumber())
		}
	}
	slices.Sort(floors)
	o.floors = floors
	safe := floors[c.n-(c.f+1)] // f+1 replicas have committed up to here
	for k := safe + 1; k <= o.maxCommitted; k++ {
		e := c.committed[k]
		holders := 0
		for _, r := range c.replicas {
			if r == nil || r.Status() == vsr.StatusRecovering || r.CommitNumber() >= k || sameEntry(r.Entry(k), e) {
				holders++
			}
		}
		if holders < c.f+1 {
			c.fail("oracle: committed op %d (client %d, request %d) is held by %d replicas, fewer than f+1 = %d: one more failure loses it",
				k, e.GetClientId(), e.GetRequestNumber(), holders, c.f+1)
			return
		}
	}
}

// sameEntry reports whether a and b are one log entry: the op, the view that
// appended it and the request.
func sameEntry(a, b *messages.Entry) bool {
	if a == nil || b == nil {
		return false
	}
	return a == b || (a.OpNumber == b.OpNumber && a.View == b.View && a.ClientId == b.ClientId &&
		a.RequestNumber == b.RequestNumber && proto.Equal(a, b))
}

// checkReply fails an operation answered from view v if a later view had
// started by the tick the operation was invoked. Whatever answered it ran
// after the invocation: a read round, or the execution of an op that f
// backups acknowledged in some view u <= v. Those acks, or the round's, came
// from replicas still in u or v after the invocation, and a quorum of them
// intersects the quorum that had entered the later view before it. A
// deposed primary serving a read, or committing with acks from elsewhere,
// is what this catches.
func (o *oracle) checkReply(client int, v uint64, invoked int) {
	at, _ := slices.BinarySearchFunc(o.started, v+1, func(s viewStart, view uint64) int {
		switch {
		case s.view < view:
			return -1
		case s.view > view:
			return 1
		}
		return 0
	})
	if at < len(o.started) && o.started[at].tick <= invoked {
		o.c.fail("oracle: client %d's operation invoked at t=%d was answered from view %d, but view %d started at t=%d",
			client, invoked, v, o.started[at].view, o.started[at].tick)
	}
}
