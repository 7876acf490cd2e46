package vsr

import (
	"slices"

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
}

// startRecovery puts the replica in recovering status with a fresh nonce. The
// Recovery message goes out on the first heartbeat (the next Tick) and again
// on every heartbeat until enough replicas answer.
func (r *Replica) startRecovery() {
	r.status = StatusRecovering
	r.recovery = recoveryState{nonce: r.rng.next(), responses: map[int]*messages.RecoveryResponse{}}
	r.heartbeat.start(1)
	r.election.stop()
}

func (r *Replica) broadcastRecovery() {
	r.broadcast(&messages.Recovery{ClusterId: r.cfg.ClusterID, Replica: uint32(r.index), Nonce: r.recovery.nonce})
}

// onRecovery answers a recovering replica. Only a normal replica answers, and
// only the primary sends its log and a snapshot of its executed state.
func (r *Replica) onRecovery(m *messages.Recovery) {
	if r.status != StatusNormal {
		return
	}
	resp := &messages.RecoveryResponse{ClusterId: r.cfg.ClusterID, View: r.viewNumber,
		Nonce: m.Nonce, Replica: uint32(r.index)}
	if r.isPrimary() {
		resp.FromPrimary = true
		resp.Log = r.log
		resp.OpNumber = r.opNumber()
		resp.CommitNumber = r.commitNumber
		resp.Snapshot = r.snapshot()
	}
	r.send(int(m.Replica), resp)
}

// snapshot is the executed state at the commit number, or nil if the state
// machine cannot take one (the recovering replica then replays the log).
func (r *Replica) snapshot() *messages.Snapshot {
	state, err := r.sm.Snapshot()
	if err != nil {
		return nil
	}
	return &messages.Snapshot{CommitNumber: r.commitNumber, State: state, ClientTable: r.clientTable.rows()}
}

// onRecoveryResponse collects answers to this replica's recovery. It needs
// f+1 of them with its nonce, including one from the primary of the largest
// view among them: responses can come from several views, and only that
// primary's log is known to hold every committed op.
func (r *Replica) onRecoveryResponse(m *messages.RecoveryResponse) {
	if r.status != StatusRecovering || m.Nonce != r.recovery.nonce {
		return
	}
	if m.FromPrimary && (int(m.Replica) != r.primaryOf(m.View) ||
		!wholeLog(m.Log, m.OpNumber, m.CommitNumber) || !validSnapshot(m.Snapshot, m.CommitNumber)) {
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
	r.recover(p)
}

// validSnapshot reports whether s (if any) is at most commit and holds only
// well-formed client-table rows.
func validSnapshot(s *messages.Snapshot, commit uint64) bool {
	if s == nil {
		return true
	}
	if s.CommitNumber > commit {
		return false
	}
	for _, row := range s.ClientTable {
		if row == nil || row.ClientId == 0 || row.RequestNumber == 0 {
			return false
		}
	}
	return true
}

// recover adopts the state of the latest view's primary.
func (r *Replica) recover(p *messages.RecoveryResponse) {
	r.enterView(p.View)
	r.log = slices.Clip(p.Log)
	r.commitNumber = 0
	if s := p.Snapshot; s != nil && r.sm.Restore(s.State) == nil {
		r.clientTable.restore(s.ClientTable)
		r.commitNumber = s.CommitNumber
	}
	r.becomeNormal()
	r.heartbeat.start(r.cfg.HeartbeatTicks)
	r.commitUpTo(p.CommitNumber)
	r.sendPrepareOK()
}
