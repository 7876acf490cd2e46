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
)

func (s Status) String() string {
	switch s {
	case StatusNormal:
		return "normal"
	case StatusViewChange:
		return "view-change"
	case StatusRecovering:
		return "recovering"
	}
	return "unknown"
}
