package vsr

// Status is a replica's status (the paper's replica state "status").
type Status int

const (
	// StatusNormal: the replica takes part in normal operation in its view.
	StatusNormal Status = iota
	// StatusViewChange: the replica has left its view's normal operation,
	// either to change views or because it learned of a later view whose log
	// it does not hold yet.
	StatusViewChange
	// StatusRecovering: the replica restarted without its state and answers
	// no protocol message until recovery completes (paper section 4.3).
	StatusRecovering
	// StatusJoining: the replica is a member of an epoch whose state it does
	// not hold yet (it was started to join, or it missed the commit of the
	// reconfiguration that began the epoch): it fetches the state and takes
	// no part until it has it (docs/reconfiguration.md).
	StatusJoining
	// StatusLeaving: a reconfiguration removed the replica. It takes no part
	// in any epoch; it waits until a quorum of the new configuration holds
	// the state, and then has left (Replica.Left).
	StatusLeaving
)

func (s Status) String() string {
	switch s {
	case StatusNormal:
		return "normal"
	case StatusViewChange:
		return "view-change"
	case StatusRecovering:
		return "recovering"
	case StatusJoining:
		return "joining"
	case StatusLeaving:
		return "leaving"
	}
	return "unknown"
}
