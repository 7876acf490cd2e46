// Package statemachine defines the deterministic state machine that a VSR
// group replicates, in the spirit of hashicorp/raft's FSM.
//
// Every replica applies the same operations in the same order, so an
// implementation must be deterministic: the same sequence of Apply calls on
// the same starting state gives the same results and the same state on every
// machine. It must not read clocks, random numbers, the environment or
// anything else that differs between replicas. Its methods are called from
// one goroutine at a time.
package statemachine

// StateMachine is what users implement.
type StateMachine interface {
	// Apply executes op and returns its result. It is called once per
	// committed op on every replica, in op-number order, and also for
	// read-only ops served without the log (linearizable and stale reads);
	// for those it must not change the state. Apply must not fail: an op that
	// the application rejects returns a result that says so, because every
	// replica must reach the same verdict.
	Apply(op []byte) []byte

	// ReadOnly reports whether op leaves the state unchanged. Only read-only
	// ops may be served as linearizable or stale reads without a log entry.
	ReadOnly(op []byte) bool

	// Snapshot returns the whole state as bytes, for state transfer to a
	// replica that must catch up without replaying the log.
	Snapshot() ([]byte, error)

	// Restore replaces the whole state with one taken by Snapshot.
	Restore(snapshot []byte) error
}

// Factory makes a new, empty state machine. A replica that restarts gets a new
// one and fills it through VR recovery.
type Factory func() StateMachine
