package vsr

import (
	"github.com/vsrgo/vsr/messages"
)

// Liveness under gray failures.
//
// The paper's view change starts whenever one backup times out, and every
// replica joins a StartViewChange for a later view at once. That is safe but
// fragile: a replica that is cut off, lagging or flaky keeps deposing a
// primary the rest of the group hears well, and a primary that can send but
// not receive keeps its backups from ever timing out while it commits
// nothing. Three rules, after the Raft thesis (section 9.6) and TigerBeetle,
// keep a healthy quorum serving; none of them touches safety, which rests on
// the DoViewChange quorum alone.
//
//   - Probe before a view change (Raft's PreVote). A replica that times out
//     does not move to the next view: it asks the others with a
//     ViewChangeProbe, and moves only once f of them answer that they have
//     lost the primary too (or are changing views themselves). A replica
//     whose probe goes unanswered stays in its view, ready to take the
//     primary's next message, instead of waiting alone in a view no one
//     else will join.
//   - Stickiness. A backup that heard from its primary within the last
//     half inactivity timeout neither answers a probe nor joins a
//     StartViewChange or DoViewChange for a later view, unless it comes from
//     that primary itself (an abdication, below). The primary answers no
//     probe, but does join a later view that another replica has reached
//     (see joins). Half the timeout is three
//     heartbeats with the default timing: a backup that keeps it has missed
//     at most two in a row, and when the primary has crashed every backup
//     has been without it for about a whole timeout when the first one fires,
//     so failover is not slowed.
//   - Abdication (Raft's CheckQuorum, TigerBeetle's primary abdication). A
//     primary that has not heard from f backups within an inactivity timeout
//     leaves its view: it starts the view change to the next view itself,
//     and its backups join because it is their primary who asks.
//
// A fourth rule bounds what one message may do: no message moves a replica
// more than maxViewAhead views past its own (see admit). Honest views grow
// by one per view change, so only a forged or corrupt number is that far
// ahead, and without the bound one such number near the top of the range
// would leave no room for the next view change. Op and commit numbers are
// bounded the same way, by maxOpsAhead: a heartbeat with a commit number near
// the top of the range is no heartbeat, and must not keep a backup from
// noticing that its primary is gone.

// maxViewAhead is the furthest ahead of its own view a message may take a
// replica. Reaching it honestly would take a million view changes while the
// replica was away; a replica that far behind must be restarted, and runs
// recovery, which takes its view from f+1 answers to its own nonce.
const maxViewAhead = 1 << 20

// maxOpsAhead is the furthest ahead of its own op number that a message's op
// or commit number may be: a trillion ops, weeks at full speed.
const maxOpsAhead = 1 << 40

// probeState is a replica's probe for a view change to view.
type probeState struct {
	view uint64 // 0: no probe under way
	oks  []bool // oks[j]: replica j has lost the primary too
}

// lostPrimary reports whether this replica would take part in a view change
// now: it is changing views itself, or it has not heard from its primary for
// half an inactivity timeout, or it is the primary and has not heard from f
// backups for that long. A replica fetching a started view's log has
// heard from that view's primary, so it counts as hearing from it.
func (r *Replica) lostPrimary() bool {
	switch {
	case r.status == StatusRecovering:
		return false
	case r.status == StatusViewChange && !r.syncing:
		return true
	case r.buggy(BugNoPreVote):
		return true
	case r.status == StatusNormal && r.isPrimary():
		return r.backupsHeard(r.cfg.InactivityTicks/2) < r.f
	}
	return r.ticks-r.primaryHeardAt >= r.cfg.InactivityTicks/2
}

// joins reports whether a StartViewChange or DoViewChange for a later view,
// from sender, may move this replica to that view: it has lost its primary
// too, or the sender is its primary, abdicating, or it is the primary itself.
//
// A primary joins because a replica in a later view got there past a probe
// that f others answered (or past a view change that f+1 joined): it is not
// a flaky replica's timeout, and the replica cannot come back to the old
// view. It may have slipped ahead of a view change that completed without it
// (it probed while the others were still changing views); the primary's
// joining pulls the group, and it, into one view again, at the cost of one
// view change, as etcd's leader steps down for a node stuck at a later term.
func (r *Replica) joins(sender uint32) bool {
	return r.lostPrimary() || int(sender) == r.primaryOf(r.viewNumber) ||
		r.status == StatusNormal && r.isPrimary()
}

// heardFromPrimary notes that the primary of this replica's view is alive.
func (r *Replica) heardFromPrimary() {
	r.primaryHeardAt = r.ticks
	r.probe = probeState{}
}

// suspectPrimary runs when a replica's primary, or its view change, has gone
// quiet for a timeout: it probes for the next view.
func (r *Replica) suspectPrimary() {
	if r.buggy(BugNoPreVote) {
		r.startViewChange(r.viewNumber + 1)
		return
	}
	if r.probe.view != r.viewNumber+1 {
		r.probe = probeState{view: r.viewNumber + 1, oks: make([]bool, r.n)}
	}
	if r.countProbeOKs() >= r.f {
		r.startViewChange(r.probe.view)
		return
	}
	r.broadcastProbe()
}

func (r *Replica) broadcastProbe() {
	r.broadcast(&messages.ViewChangeProbe{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: r.probe.view, Replica: uint32(r.index)})
}

func (r *Replica) countProbeOKs() int {
	count := 0
	for j, ok := range r.probe.oks {
		if ok && j != r.index {
			count++
		}
	}
	return count
}

// onViewChangeProbe answers a replica that has lost its primary: yes if this
// replica has lost it too. A replica already changing views to a later view
// answers with its own StartViewChange, so that the prober joins it instead.
func (r *Replica) onViewChangeProbe(m *messages.ViewChangeProbe) {
	if r.status == StatusRecovering || m.View < r.viewNumber && r.status == StatusNormal {
		return
	}
	if m.View < r.viewNumber {
		if r.status == StatusViewChange && r.viewChange.started {
			r.send(int(m.Replica), r.startViewChangeMessage())
		}
		return
	}
	if m.View == r.viewNumber && r.status == StatusNormal || !r.lostPrimary() {
		return
	}
	r.send(int(m.Replica), &messages.ViewChangeProbeOK{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: m.View, Replica: uint32(r.index)})
}

// onViewChangeProbeOK counts an answer to this replica's probe and starts the
// view change once f others have lost the primary too.
func (r *Replica) onViewChangeProbeOK(m *messages.ViewChangeProbeOK) {
	if r.probe.view == 0 || m.View != r.probe.view || r.viewNumber >= m.View {
		return
	}
	r.probe.oks[m.Replica] = true
	if r.countProbeOKs() >= r.f {
		r.startViewChange(r.probe.view)
	}
}

// checkQuorum runs on the primary every heartbeat: a primary that has not
// heard from f backups within an inactivity timeout cannot commit, and may be
// unable to hear at all while its backups still hear it, so it abdicates.
func (r *Replica) checkQuorum() {
	if r.f == 0 || r.buggy(BugNoCheckQuorum) {
		return
	}
	if r.backupsHeard(r.cfg.InactivityTicks) < r.f {
		r.startViewChange(r.viewNumber + 1)
	}
}

// backupsHeard counts, at the primary, the backups heard from within the
// last ticks ticks.
func (r *Replica) backupsHeard(ticks int) int {
	heard := 0
	for j, at := range r.primary.heardAt {
		if j != r.index && r.ticks-at < ticks {
			heard++
		}
	}
	return heard
}

// heardFromBackup notes, at the primary, a message from backup j in its view.
func (r *Replica) heardFromBackup(j uint32) { r.primary.heardAt[j] = r.ticks }
