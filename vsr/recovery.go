package vsr

import (
	"github.com/vsrgo/vsr/messages"
)

// Recovery (paper section 4.3): a replica that restarted without its state
// learns it from its peers before it takes part again. It must never answer
// as if it still had its old state: it may have acknowledged ops that it no
// longer holds.

// recoveryState is the vote state of one recovery, keyed by its nonce.
type recoveryState struct {
	nonce     uint64
	responses map[int]*messages.RecoveryResponse
	// chosen is the answer of the latest view's primary, once f+1 answers
	// are in; the replica then fetches the committed state before its
	// suffix.
	chosen *messages.RecoveryResponse
}

// startRecovery puts the replica in recovering status with a fresh nonce. The
// Recovery message goes out on the first heartbeat (the next Tick) and again
// on every heartbeat until enough replicas answer.
func (r *Replica) startRecovery() {
	r.dropRole(StatusRecovering)
	r.recovery = recoveryState{nonce: r.rng.next(), responses: map[int]*messages.RecoveryResponse{}}
	r.heartbeat.start(1)
}

func (r *Replica) broadcastRecovery() {
	r.broadcast(&messages.Recovery{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, Replica: uint32(r.index), Nonce: r.recovery.nonce})
}

// onRecovery answers a recovering replica. Only a normal replica answers, and
// only the primary sends its log: its uncommitted suffix, which the bounded
// pipeline keeps small. The recovering replica fetches the committed state
// before it by state transfer, so no answer grows with the history, and no
// answer costs a snapshot of the state machine (a recovering replica asks
// every heartbeat).
func (r *Replica) onRecovery(m *messages.Recovery) {
	if r.status != StatusNormal {
		return
	}
	resp := &messages.RecoveryResponse{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: r.viewNumber,
		Nonce: m.Nonce, Replica: uint32(r.index), EpochOp: r.change.op}
	if r.isPrimary() {
		resp.FromPrimary = true
		resp.Entries = r.uncommittedSuffix()
		resp.OpNumber = r.opNumber()
		resp.CommitNumber = r.commitNumber
	}
	r.send(int(m.Replica), resp)
}

// onRecoveryResponse collects answers to this replica's recovery. It needs
// f+1 of them with its nonce, including one from the primary of the largest
// view among them: responses can come from several views, and only that
// primary's log is known to hold every committed op.
func (r *Replica) onRecoveryResponse(m *messages.RecoveryResponse) {
	if r.status != StatusRecovering || m.Nonce != r.recovery.nonce || r.recovery.chosen != nil {
		return
	}
	if m.FromPrimary && (int(m.Replica) != r.primaryOf(m.View) || !validSuffix(m.Entries, m.CommitNumber, m.OpNumber)) {
		r.drop(DropMalformed)
		return
	}
	if old := r.recovery.responses[int(m.Replica)]; old == nil || m.View >= old.View {
		r.recovery.responses[int(m.Replica)] = m
	}
	if len(r.recovery.responses) < r.f+1 {
		return
	}
	var latest uint64
	for _, resp := range r.recovery.responses {
		latest = max(latest, resp.View)
	}
	p := r.recovery.responses[r.primaryOf(latest)]
	if p == nil || p.View != latest || !p.FromPrimary {
		return // Wait for the primary of the latest view.
	}
	r.recovery.chosen = p
	if p.EpochOp > r.change.op || r.epochOpUnknown {
		// The epoch began after what this replica knew of it: the ops up
		// to its reconfiguration belong to the epochs before.
		r.change.op, r.epochOpUnknown = p.EpochOp, false
	}
	r.election.start(r.cfg.ViewChangeTicks + r.jitter())
	r.continueRecovery()
}

// continueRecovery finishes recovery once the replica holds the committed
// state up to the chosen primary's commit number, and fetches it until then.
// The replica stays recovering, answering nothing, while it fetches.
func (r *Replica) continueRecovery() {
	p := r.recovery.chosen
	if p == nil {
		return
	}
	if r.commitNumber > p.OpNumber {
		// What this replica fetched is committed, and that primary's log ends
		// before it: the answer is stale. Ask again.
		r.restartRecovery()
		return
	}
	if r.commitNumber < p.CommitNumber {
		r.election.start(r.cfg.ViewChangeTicks + r.jitter()) // progress: wait on
		r.catchUpTo(int(p.Replica), p.CommitNumber)
		return
	}
	r.finishRecovery(p)
}

// restartRecovery asks everyone again with a new nonce: the transfer stalled
// (its source may be down) or its answer turned out stale. Committed state
// fetched so far stays: it is the same in every log.
func (r *Replica) restartRecovery() {
	r.catchUp = catchUpState{}
	r.recovery = recoveryState{nonce: r.rng.next(), responses: map[int]*messages.RecoveryResponse{}}
	r.election.stop()
	r.broadcastRecovery()
}

// finishRecovery adopts the chosen primary's log after the commit number and
// becomes normal in its view.
func (r *Replica) finishRecovery(p *messages.RecoveryResponse) {
	r.enterView(p.View)
	r.adoptSuffix(p.Entries)
	r.becomeNormal()
	r.heartbeat.start(r.cfg.HeartbeatTicks)
	r.commitUpTo(p.CommitNumber)
	r.acknowledge()
}
