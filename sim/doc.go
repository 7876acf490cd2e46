// Package sim is the deterministic simulator: n protocol cores (package
// vsr), the network between them, their disks and a client workload, run in
// one goroutine and driven by one seed, so that the same options give the
// same run and any failure replays exactly.
//
// [Run] simulates one seed: a phase of faults (drops, duplicates, delays,
// partitions, gray failures, crashes and restarts, forged and replayed
// messages, torn writes and corrupted disks, the whole group losing power;
// [Faults] gives the mix), then a heal phase in which every operation must
// finish and the replicas converge. Every step is checked: the replicas
// agree on every committed op, the core's invariants hold, no request runs
// twice, every message fits the configured size, and an oracle checks what
// the paper's safety argument rests on (a committed op is held by f+1
// replicas, acknowledgements and read confirmations come from the right
// view). Progress is checked while the faults last, and the client history
// is checked for linearizability with porcupine at the end. [RunReconfig]
// does the same while an operator replaces members and grows and shrinks
// the group; [MeasureFailover] times how long a group takes to replace a
// crashed primary.
//
// A Result with a Violation carries the trace of the last events, and
// Options.Command is the command line that replays it:
//
//	res := sim.Run(sim.DefaultOptions(seed))
//	if res.Violation != nil {
//		fmt.Printf("%v\nreplay: %s\n", res.Violation, res.Options.Command())
//	}
//
// The simulator drives the real storage engine (package storage) on a
// simulated disk, behind a model of the actor layer's persister, but never
// the actor layer itself. The command "go run ./cmd/vsr sim" runs many
// seeds. Built with -tags vsrbugs, the package's tests re-introduce known
// bugs into the core (Options.Bugs, vsr.Bug) and check that the simulator
// catches each.
package sim
