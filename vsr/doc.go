// Package vsr is the protocol core of Viewstamped Replication Revisited
// (Liskov & Cowling, MIT-CSAIL-TR-2012-021): normal operation, view change,
// recovery, state transfer and the client table, as a pure, deterministic,
// single-threaded state machine in the style of etcd-io/raft's RawNode.
//
// A Replica is driven by two calls. Step hands it one protocol message;
// Tick advances its logical clock by one tick. Both return an Output: the
// messages to send to other replicas, the replies to send to clients, and the
// entries it executed. Nothing here blocks, sleeps, reads a clock, draws an
// unseeded random number or does I/O: time arrives as ticks and randomness as
// the seed in Config, so the same seed and the same inputs give the same
// outputs. That is what lets the simulator replay any run, and what keeps the
// actor layer thin.
//
// The client half of the protocol (client ID, request numbers, which replica
// it believes is primary, resending to all on a timeout) is a pure core too:
// see Client.
//
// Names follow the paper: viewNumber, opNumber, commitNumber, status,
// lastNormalView, clientTable. Each message has one handler (onPrepare,
// onPrepareOK, ...) that first ignores what must be ignored, then checks its
// preconditions, then acts. CheckInvariants verifies the replica's state and
// tests run it after every step.
package vsr
