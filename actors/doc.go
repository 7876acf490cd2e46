// Package actors runs the VSR core (package vsr) on Proto.Actor: the replica
// actor, which feeds every protocol message and timer tick to a vsr.Replica
// and carries out what it returns, and Client, through which programs
// submit operations (Execute through the log, Read as a linearizable read,
// ReadStale from any replica, Reconfigure to change the members). Most
// programs get both from package supervisor (one process) or package
// cluster (one replica per machine); NewReplicaProps and NewClient are for
// those who host replicas themselves, in their own actor system or under
// their own parent actor.
//
// The actors decide no protocol question. A replica actor steps what its
// mailbox holds as one batch (vsr.Replica.StepBatch, behind a marker it
// sends itself, so a lone message waits for no company), and sends the
// core's output in the order the core requires: with a store
// (ReplicaConfig.OpenStore), each step's durable change is written by the
// persister, many steps to one sync, before the messages that depend on it
// leave. Messages go to members by name through ReplicaConfig.Resolve (or by
// index through ReplicaConfig.Peers), and replies go to the client address
// that travelled inside each request. A replica message is dropped, and
// counted, unless it came from the address of the member the core says sent
// it. A checkpoint is encoded on its own goroutine, so the replica keeps
// serving. No message over the core's MaxMessageBytes is ever sent; it is
// counted and logged.
//
// Time reaches the core as tick messages from Proto.Actor's scheduler,
// one-shot and tagged with a generation number, so a tick meant for a
// stopped or restarted instance is ignored instead of cancelled (cancelling
// repeating timers races inside Proto.Actor). An instance that replaces a
// failed one comes back from its disk if it has one, and otherwise through
// VR recovery in the latest configuration that named it. A replica that a
// reconfiguration removed stops once it has left, with an Event whose Left
// is set.
//
// Two hooks watch a replica: ReplicaConfig.OnEvent, on each change of
// status, view or epoch, and ReplicaConfig.Observer, on every protocol
// event (messages, commits, view changes, op durations, drops; see
// Observer). NewActorSystem makes an actor system that logs nothing unless
// given a logger. Client errors are typed: ErrTimeout, ErrNoSuchGroup,
// ErrRejected (wrapping the reason) and ErrClosed.
package actors
