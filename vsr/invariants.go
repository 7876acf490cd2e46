package vsr

import (
	"fmt"
)

// CheckInvariants verifies the replica's state, and that its view and commit
// number have not gone backwards since the last call, and returns the first
// violation it finds. Tests and the simulator call it after every step; it
// costs O(log length), so production code need not.
func (r *Replica) CheckInvariants() error {
	op := r.opNumber()
	if r.epoch < r.checked.epoch || (r.epoch == r.checked.epoch && r.viewNumber < r.checked.view) ||
		r.commitNumber < r.checked.commit {
		return fmt.Errorf("went backwards: epoch %d -> %d, view %d -> %d, commit %d -> %d",
			r.checked.epoch, r.epoch, r.checked.view, r.viewNumber, r.checked.commit, r.commitNumber)
	}
	r.checked.epoch, r.checked.view, r.checked.commit = r.epoch, r.viewNumber, r.commitNumber
	if err := r.checkEpoch(); err != nil {
		return err
	}
	switch {
	case r.commitNumber > op:
		return fmt.Errorf("commit number %d past op number %d", r.commitNumber, op)
	case r.lastNormalView > r.viewNumber:
		return fmt.Errorf("last normal view %d past view %d", r.lastNormalView, r.viewNumber)
	case r.status == StatusNormal && r.lastNormalView != r.viewNumber:
		return fmt.Errorf("normal in view %d but last normal view is %d", r.viewNumber, r.lastNormalView)
	case r.status == StatusNormal && r.syncing:
		return fmt.Errorf("normal while still fetching the view's log")
	case r.status == StatusNormal && (r.viewChange.doViewChanges != nil || r.viewChange.startViewChanges != nil):
		return fmt.Errorf("normal but still holding view-change votes")
	case r.status != StatusNormal && r.primary.acked != nil:
		return fmt.Errorf("%s but still holding primary state", r.status)
	case r.status == StatusNormal && r.isPrimary() && len(r.primary.acked) != r.n:
		return fmt.Errorf("primary without acknowledgement state")
	case r.status == StatusNormal && !r.isPrimary() && len(r.clientTable.inProgress) != 0:
		return fmt.Errorf("backup holding in-progress requests")
	case r.status == StatusRecovering && r.recovery.responses == nil:
		return fmt.Errorf("recovering without recovery state")
	}
	if r.commitNumber < r.logBase {
		return fmt.Errorf("commit number %d below the log's base %d", r.commitNumber, r.logBase)
	}
	for k, e := range r.log {
		if e == nil || e.OpNumber != r.logBase+uint64(k+1) {
			return fmt.Errorf("log slot %d holds op %d", r.logBase+uint64(k+1), e.GetOpNumber())
		}
	}
	if len(r.sizes) != len(r.log) {
		return fmt.Errorf("log of %d entries with %d sizes", len(r.log), len(r.sizes))
	}
	bytes := 0
	for _, e := range r.uncommittedSuffix() {
		if size := entrySize(e); size != r.sizeAt(e.OpNumber) {
			return fmt.Errorf("op %d weighs %d bytes, recorded %d", e.OpNumber, size, r.sizeAt(e.OpNumber))
		}
		bytes += entrySize(e)
	}
	if bytes != r.uncommittedBytes {
		return fmt.Errorf("uncommitted suffix weighs %d bytes, counted %d", bytes, r.uncommittedBytes)
	}
	if r.status == StatusNormal && (op-r.commitNumber > uint64(r.cfg.PipelineMax) || bytes > r.cfg.pipelineBytes()) {
		return fmt.Errorf("uncommitted suffix of %d ops and %d bytes past the pipeline's bound (%d ops, %d bytes)",
			op-r.commitNumber, bytes, r.cfg.PipelineMax, r.cfg.pipelineBytes())
	}
	if r.checkpoint != nil && r.checkpoint.opNumber > r.commitNumber {
		return fmt.Errorf("checkpoint at op %d past commit number %d", r.checkpoint.opNumber, r.commitNumber)
	}
	if r.clientTable.len() > r.cfg.MaxSessions {
		return fmt.Errorf("%d sessions, more than the bound %d", r.clientTable.len(), r.cfg.MaxSessions)
	}
	for j, a := range r.primary.acked {
		if a > op {
			return fmt.Errorf("replica %d acknowledged op %d past op number %d", j, a, op)
		}
	}
	if len(r.clientTable.sessions) != r.clientTable.byAge.Len() {
		return fmt.Errorf("client table holds %d sessions but orders %d", len(r.clientTable.sessions), r.clientTable.byAge.Len())
	}
	for c, s := range r.clientTable.sessions {
		if s.requestNumber == 0 {
			return fmt.Errorf("client %d has an executed request numbered 0", c)
		}
	}
	return nil
}

// checkEpoch verifies what reconfiguration relies on: the configuration is
// valid and names this replica at its index, a member of an epoch it takes
// part in holds the state the epoch began with, and a reconfiguration in the
// log past that is its last entry.
func (r *Replica) checkEpoch() error {
	switch {
	case len(r.members) != r.n || r.index < 0 || r.index >= r.n:
		return fmt.Errorf("replica %d of a configuration of %d members, n = %d", r.index, len(r.members), r.n)
	case validMembers(r.members) != nil:
		return fmt.Errorf("bad configuration: %v", validMembers(r.members))
	case r.status == StatusLeaving && r.change.next == nil:
		return fmt.Errorf("leaving without the next configuration")
	case r.status != StatusLeaving && r.change.next != nil:
		return fmt.Errorf("%s with a next configuration", r.status)
	case (r.status == StatusNormal || r.status == StatusViewChange) && r.commitNumber < r.change.op:
		return fmt.Errorf("%s in epoch %d, which began at op %d, with commit number %d", r.status, r.epoch,
			r.change.op, r.commitNumber)
	case r.left && r.status != StatusLeaving:
		return fmt.Errorf("left but %s", r.status)
	}
	if r.status != StatusNormal && r.status != StatusViewChange {
		return nil // a joiner's log past its commit number is candidates from an epoch that ended
	}
	for op := max(r.change.op, r.logBase) + 1; op < r.opNumber(); op++ {
		if r.entryAt(op).GetReconfigure() != nil {
			return fmt.Errorf("reconfiguration at op %d is not the last entry of its epoch (op number %d)", op, r.opNumber())
		}
	}
	return nil
}
