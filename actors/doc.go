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
//
// # Replicas under your own parent
//
// A program may host replicas as children of an actor of its own, under a
// supervision strategy of its own, instead of under package supervisor. The
// parent spawns each replica with ctx.SpawnNamed from the Props that
// NewReplicaProps returned, and every replica and every Client gets a
// Resolve that maps each member name to the PID of the child that hosts
// it, and returns nil for a name it does not know. A child's PID is the
// parent's ID, a slash and the child's name, at the actor system's address:
// compute it from the name rather than recording what SpawnNamed returned,
// so that it holds before the children exist and after a restart (a
// restarted child keeps its PID). Resolve runs on the replica's goroutine
// for every message it sends, so it must be cheap and must not block. The
// parent spawns its children when it handles Started, after the call that
// spawned the parent has returned: ask the parent something before a
// client's first call, which could otherwise find no replica actor and end
// with ErrNoSuchGroup. ExampleNewReplicaProps_underYourParent shows it all.
//
// The parent's strategy must restart a replica that panics, or stop it,
// and never resume it. A restart makes a new instance from the same Props,
// and every instance but the first runs VR recovery: it comes back with the
// state its peers hold, and never answers as if it still had the state the
// failed instance lost. A resumed replica goes on with the instance that
// panicked, in whatever state the panic left it: a batch half stepped, to
// be stepped again, an operation half applied to the state machine, or a
// tick never rescheduled, after which it never ticks again. A stopped
// replica stays down, and the group serves while a majority is up. Hence:
//
//   - Make each replica's Props once, outside the parent, and spawn every
//     instance from them. Props count the instances they make; new Props
//     would start a new, empty replica in view 0 that knows nothing of the
//     group's history.
//   - Restart one replica at a time: actor.NewOneForOneStrategy with a
//     decider that returns actor.RestartDirective (actor.DefaultDecider,
//     and Proto.Actor's default strategy, do). A strategy that restarts
//     every child at once (AllForOne), or a failure escalated to a parent
//     whose own restart stops all its children, leaves no replica holding
//     the state to recover from: without disks (ReplicaConfig.OpenStore)
//     the group then stays in recovery for good.
//   - Past the strategy's restart limit the replica is stopped; spawn it
//     again from the same Props to bring it back through recovery.
package actors
