// Package statemachine defines the deterministic state machine that a VSR
// group replicates, in the spirit of hashicorp/raft's FSM. Implement
// [StateMachine] (and, for a large state, [Checkpointer]) and give a
// [Factory] to the group: supervisor.GroupConfig.NewStateMachine in one
// process, cluster.NodeConfig.NewStateMachine across machines. The example
// of StateMachine replicates a counter; package kv is a ready key-value
// store.
//
// Every replica applies the same operations in the same order, so an
// implementation must be deterministic: the same sequence of Apply calls on
// the same starting state gives the same results and the same state on every
// machine. It must not read clocks, random numbers, the environment or
// anything else that differs between replicas, nor iterate a Go map where
// the order reaches a result or a snapshot. Its methods are called from one
// goroutine at a time; the one exception is the function that a Checkpointer
// returns, which may run alongside them.
//
// Operations and results are opaque bytes: the protocol orders and
// replicates them and never looks inside. Only operations that ReadOnly
// reports as read-only may be served as reads without a log entry; every
// other operation goes through the log.
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

// Checkpointer is implemented by state machines that can take a checkpoint
// without stopping. Checkpoint captures the current state cheaply (it must not
// copy or encode the whole state, so that the replica is not stalled for as
// long as the state is large) and returns a function that encodes that
// captured state exactly as Snapshot would have encoded it at the moment of
// the call, byte for byte.
//
// The replica calls Checkpoint on its own goroutine, like every other method.
// The returned function may run on another goroutine, concurrently with later
// Apply, ReadOnly, Snapshot, Restore and Checkpoint calls: the implementation
// must make sure that it and they share nothing that one of them writes. It
// is called at most once.
//
// A state machine without Checkpointer is checkpointed with Snapshot, on the
// replica's goroutine, which stalls the replica for as long as Snapshot takes.
type Checkpointer interface {
	Checkpoint() func() ([]byte, error)
}
