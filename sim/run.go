package sim

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/vsrgo/vsr/vsr"
)

// Options describe one simulated run. Everything it does follows from them:
// the same options give the same run.
type Options struct {
	Seed     uint64
	Replicas int // n: 1, 3, 5, 7, ...
	Clients  int
	Keys     int
	// Ticks is the length of the safety phase, when faults happen.
	Ticks int
	// LivenessTicks bounds the heal phase: once faults stop and every
	// replica is back, every client operation must complete, and the
	// replicas converge, within this many ticks.
	LivenessTicks int
	Faults        Faults
	// Bugs re-introduces known defects into the core (builds tagged vsrbugs).
	Bugs vsr.Bug
	// TraceEvents is how many of the last events a failing run reports.
	TraceEvents int
	// CheckTimeout bounds the linearizability check.
	CheckTimeout time.Duration
	// Reconfigure makes this a reconfiguration run (RunReconfig): Replicas
	// is the group's first size, and an operator changes its members.
	Reconfigure bool
}

// DefaultOptions is a 3-replica run of 2000 ticks under DefaultFaults.
func DefaultOptions(seed uint64) Options {
	return Options{Seed: seed, Replicas: 3, Clients: 4, Keys: 3, Ticks: 2000, LivenessTicks: 1500,
		Faults: DefaultFaults, TraceEvents: 200, CheckTimeout: 10 * time.Second}
}

// Validate reports the first thing wrong with o.
func (o Options) Validate() error {
	switch {
	case o.Replicas < 1 || o.Replicas%2 == 0:
		return fmt.Errorf("sim: replicas must be odd and at least 1, got %d", o.Replicas)
	case o.Clients < 1 || o.Keys < 1:
		return fmt.Errorf("sim: need at least one client and one key")
	case o.Ticks < 0 || o.LivenessTicks < 1:
		return fmt.Errorf("sim: ticks must not be negative and liveness ticks must be positive")
	case o.Reconfigure && o.Replicas < 3:
		return fmt.Errorf("sim: a reconfiguration run starts from 3 replicas or more, got %d", o.Replicas)
	}
	return o.Faults.Validate()
}

// Command is the command line that replays this run exactly.
func (o Options) Command() string {
	f := o.Faults
	cmd := fmt.Sprintf("go run ./cmd/vsr sim -seed %d -replicas %d -clients %d -keys %d -ticks %d -liveness %d "+
		"-drop %g -dup %g -delay %d -partition %g -partition-ticks %d -crash %g -restart-ticks %d -skew %g "+
		"-gray %g -gray-ticks %d -forge %g -hold %g -hold-ticks %d -replay %g -durable %g -disk-fault %g -group-crash %g",
		o.Seed, o.Replicas, o.Clients, o.Keys, o.Ticks, o.LivenessTicks,
		f.Drop, f.Duplicate, f.MaxDelay, f.Partition, f.PartitionTicks, f.Crash, f.RestartTicks, f.ClockSkew,
		f.Gray, f.GrayTicks, f.Forge, f.Hold, f.HoldTicks, f.Replay, f.Durable, f.DiskFault, f.GroupCrash)
	if o.Reconfigure {
		cmd += " -runs reconfig"
	} else {
		cmd += " -runs plain"
	}
	if o.Bugs != 0 {
		var names []string
		for _, b := range vsr.AllBugs {
			if o.Bugs&b.Bug != 0 {
				names = append(names, b.Name)
			}
		}
		cmd = "go run -tags vsrbugs ./cmd/vsr sim" + strings.TrimPrefix(cmd, "go run ./cmd/vsr sim") +
			" -bugs " + strings.Join(names, ",")
	}
	return cmd
}

// Result is what a run found.
type Result struct {
	Options Options
	Stats   Stats
	// Violation is the first safety or liveness violation, or nil.
	Violation error
	// Linearizable is false when the history failed the check; Inconclusive
	// when the checker ran out of time.
	Linearizable bool
	Inconclusive bool
	// Trace holds the last events, oldest first, when there is a violation.
	Trace   []string
	History *History
	// linearization is the checker's account of a history that failed.
	linearization *porcupine.LinearizationInfo
}

// WriteVisualization writes porcupine's HTML view of the client history of a
// run that found a violation; it reports false when there is none.
func (r Result) WriteVisualization(path string) (bool, error) {
	if r.linearization == nil {
		return false, nil
	}
	return true, WriteVisualization(path, *r.linearization)
}

// Run simulates one seed: a safety phase with faults, then a heal phase in
// which every operation must complete and the replicas must converge, then
// the linearizability check of the whole client history.
func Run(o Options) (res Result) {
	res = Result{Options: o}
	if err := o.Validate(); err != nil {
		res.Violation = err
		return res
	}
	c, err := newCluster(o.Seed, o.Replicas, o.Clients, o.Keys, o.TraceEvents, o.Faults, o.Bugs)
	if err != nil {
		res.Violation = err
		return res
	}
	res.History = c.history
	defer func() {
		if p := recover(); p != nil { // a panic in the core is a violation like any other
			c.trace.add(event{tick: c.now, what: "panic", note: string(debug.Stack())})
			c.fail("panic: %v", p)
			res.Violation, res.Stats, res.Trace = c.violation, c.stats, c.trace.lines()
			_, _, info := c.history.Check(o.CheckTimeout)
			res.linearization = &info
		}
	}()
	inj := newInjector(c)
	for c.now < o.Ticks && c.violation == nil {
		inj.step()
		c.liveness.observe()
		c.tick()
	}
	c.stats.LongestWatched = c.liveness.longest
	if c.violation == nil {
		c.healAll()
		c.violation = c.awaitLiveness(o.LivenessTicks)
	}
	for i := range c.replicas {
		c.countInstalls(i)
	}
	res.Stats = c.stats
	if c.violation == nil {
		ok, result, info := c.history.Check(o.CheckTimeout)
		res.Linearizable = ok
		res.Inconclusive = !ok && result == porcupine.Unknown
		if !ok && !res.Inconclusive {
			c.violation = fmt.Errorf("the client history is not linearizable")
			res.linearization = &info
		}
	}
	res.Violation = c.violation
	if res.Violation != nil {
		res.Trace = c.trace.lines()
		if res.linearization == nil {
			// The history up to the violation, for the visualisation.
			_, _, info := c.history.Check(o.CheckTimeout)
			res.linearization = &info
		}
	}
	return res
}

// healAll ends the faults: the network becomes reliable and whole, and every
// crashed replica restarts.
func (c *Cluster) healAll() {
	c.faulty = false
	c.Heal()
	for i, r := range c.replicas {
		if r == nil {
			if err := c.Restart(i); err != nil {
				c.fail("%v", err)
			}
		}
	}
	c.trace.add(event{tick: c.now, what: "healed", note: "faults stop"})
}

// awaitLiveness runs the heal phase: clients finish what they started (and
// start nothing new), then replicas must converge.
func (c *Cluster) awaitLiveness(limit int) error {
	for _, cl := range c.clients {
		cl.budget = false
	}
	deadline := c.now + limit
	for c.now < deadline && c.violation == nil {
		c.tick()
		if c.idle() && c.checkConverged() == nil {
			return nil
		}
	}
	if c.violation != nil {
		return c.violation
	}
	for _, cl := range c.clients {
		if cl.op >= 0 {
			return fmt.Errorf("liveness: client %d's operation started at t=%d was not done %d ticks after faults healed",
				cl.k, cl.since, limit)
		}
	}
	if err := c.checkConverged(); err != nil {
		return fmt.Errorf("liveness: replicas did not converge %d ticks after faults healed: %w", limit, err)
	}
	return nil
}

func (c *Cluster) idle() bool {
	for _, cl := range c.clients {
		if cl.op >= 0 {
			return false
		}
	}
	return true
}
