// Package vsr is the protocol core of Viewstamped Replication Revisited
// (Liskov & Cowling, MIT-CSAIL-TR-2012-021): normal operation, view change,
// recovery, state transfer, the client table, checkpoints and
// reconfiguration, as a pure, deterministic, single-threaded state machine in
// the style of etcd-io/raft's RawNode. Most programs do not use it directly:
// package supervisor runs a group in one process and package cluster one
// replica per machine (see supervisor's ExampleStartGroup). This package is
// for those who drive the protocol themselves, and for reading it.
//
// A [Replica] is made by [New] (a replica of a new group, or with
// [Config].Recovering one that lost its state) or by [Restart] (one that comes
// back from what its disk held). It is driven by three calls: [Replica.Step] hands it
// one protocol message, [Replica.StepBatch] the messages that arrived together (so that
// a batch of requests leaves as one Prepare per backup), and [Replica.Tick] advances
// its logical clock by one tick. Each returns an [Output]: what to make durable
// (log entries, hard state, an installed checkpoint), then the messages to
// send to members by name and the replies to send to clients, in that order,
// so that every message is a promise the replica keeps across a crash
// (Output says why). Its Checkpoint field is an encoding job that may run on another
// goroutine and is handed back through [Replica.CheckpointDone].
//
// Nothing here blocks, sleeps, reads a clock, draws an unseeded random
// number or does I/O: time arrives as ticks and randomness as the seed in
// Config, so the same seed and the same inputs give the same outputs. That is
// what lets the simulator (package sim) replay any run, and what keeps the
// actor layer thin.
//
// The client half of the protocol (client ID, session, request numbers,
// which replica it believes is primary, resending to all on a timeout,
// following a reconfiguration) is a pure core too: see [Client].
//
// Names follow the paper: viewNumber, opNumber, commitNumber, status,
// lastNormalView, clientTable. Each message has one handler (onPrepare,
// onPrepareOK, ...) that first ignores what must be ignored, then checks its
// preconditions, then acts. [Replica.CheckInvariants] verifies the replica's state and
// tests run it after every step. docs/design.md in the repository describes
// the rules and the tests that guard them; docs/reconfiguration.md the
// epochs.
package vsr
