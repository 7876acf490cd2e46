package sim

import (
	"fmt"

	"github.com/vsrgo/vsr/vsr"
)

// injector decides, tick by tick, which partitions, crashes and restarts
// happen in the safety phase. Without disks it never lets more than f
// replicas be down or recovering at once: beyond that, VR without stable
// storage may lawfully lose data, which is not a bug to look for. With
// disks the whole group may crash at once, since the disks keep what the
// group acknowledged; then never more than f disks carry a fault.
type injector struct {
	c          *Cluster
	mix        Faults
	healAt     int         // when the current partition ends; 0: none
	restartAt  map[int]int // crashed replica -> tick it restarts
	partitions []func()
	gray       gray // a long gray failure under way, if any
	forger     *forger
}

func newInjector(c *Cluster) *injector {
	inj := &injector{c: c, mix: c.faults, restartAt: map[int]int{}, forger: newForger(c)}
	inj.partitions = []func(){inj.symmetric, inj.asymmetric, inj.isolatePrimary, inj.minorityMajority}
	return inj
}

func (inj *injector) step() {
	c := inj.c
	if inj.healAt > 0 && c.now >= inj.healAt {
		inj.healAt = 0
		c.Heal()
	}
	for i := 0; i < c.n; i++ { // in index order: map order would break replay
		if at, ok := inj.restartAt[i]; ok && c.now >= at {
			delete(inj.restartAt, i)
			if err := c.Restart(i); err != nil {
				c.fail("%v", err)
			}
		}
	}
	inj.stepGray()
	if c.n > 1 && inj.healAt == 0 && !inj.gray.active() && c.rng.Float64() < inj.mix.Partition {
		kind := c.rng.IntN(len(inj.partitions))
		inj.partitions[kind]()
		inj.healAt = c.now + 1 + c.rng.IntN(inj.mix.PartitionTicks)
	}
	// Crashes come ten times as often while a view change or a recovery is
	// under way: that is where a crash finds the protocol half-way.
	crash := inj.mix.Crash
	if c.changingViews() {
		crash *= 10
	}
	if c.f > 0 && c.rng.Float64() < crash && c.down() < c.f {
		inj.crash()
	}
	if c.durable && c.rng.Float64() < inj.mix.GroupCrash && c.down() == 0 {
		inj.groupCrash()
	}
	if inj.mix.Forge > 0 && c.rng.Float64() < inj.mix.Forge {
		inj.forger.forge()
	}
	if inj.mix.Replay > 0 && c.rng.Float64() < inj.mix.Replay {
		inj.replay()
	}
	if c.n > 1 && c.rng.Float64() < inj.mix.Partition {
		inj.hint()
	}
}

// hint gives a replica a membership hint that some replica is down, true or
// not, as a transport that lost (or wrongly thinks it lost) a connection
// would. Hints must never decide safety: a wrong one costs a view change.
func (inj *injector) hint() {
	c := inj.c
	i, j := c.rng.IntN(c.n), c.rng.IntN(c.n)
	if r := c.replicas[i]; r != nil && !c.paused[i] {
		truth := "false"
		if c.replicas[j] == nil {
			truth = "true"
		}
		c.stats.Faults["hint-"+truth]++
		c.trace.add(event{tick: c.now, what: "hint", note: fmt.Sprintf("r%d told r%d is down (%s)", i, j, truth)})
		c.process(i, r.SuspectDown(j))
	}
}

// crash stops a live replica, the primary more often than the others.
func (inj *injector) crash() {
	c := inj.c
	victim := c.Primary()
	if victim < 0 || c.rng.IntN(2) == 0 {
		victim = c.rng.IntN(c.n)
	}
	if c.replicas[victim] == nil {
		return
	}
	c.Crash(victim)
	inj.restartAt[victim] = c.now + 1 + c.rng.IntN(inj.mix.RestartTicks)
}

// groupCrash crashes every replica at once, as a power cut would: only
// their disks carry the group's state across it. Each restarts on its own
// within RestartTicks.
func (inj *injector) groupCrash() {
	c := inj.c
	c.stats.Faults["group-crash"]++
	c.trace.add(event{tick: c.now, what: "group-crash"})
	for i := 0; i < c.n; i++ {
		c.Crash(i)
		inj.restartAt[i] = c.now + 1 + c.rng.IntN(inj.mix.RestartTicks)
	}
}

// symmetric splits the replicas into two random groups.
func (inj *injector) symmetric() {
	c := inj.c
	var a, b []int
	for i := 0; i < c.n; i++ {
		if c.rng.IntN(2) == 0 {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
	}
	c.stats.Faults["partition-symmetric"]++
	c.Partition(a, b)
}

// asymmetric cuts a few links one way only: a replica can hear another that
// cannot hear it.
func (inj *injector) asymmetric() {
	c := inj.c
	cuts := 1 + c.rng.IntN(c.n)
	var note string
	for k := 0; k < cuts; k++ {
		a, b := c.rng.IntN(c.n), c.rng.IntN(c.n)
		if a != b {
			c.net.cut(a, b)
			note += fmt.Sprintf(" r%d-/->r%d", a, b)
		}
	}
	c.stats.Faults["partition-asymmetric"]++
	c.trace.add(event{tick: c.now, what: "partition", note: "asymmetric" + note})
}

// isolatePrimary cuts the primary off from everyone.
func (inj *injector) isolatePrimary() {
	c := inj.c
	p := c.Primary()
	if p < 0 {
		p = c.rng.IntN(c.n)
	}
	var rest []int
	for i := 0; i < c.n; i++ {
		if i != p {
			rest = append(rest, i)
		}
	}
	c.stats.Faults["partition-primary-isolated"]++
	c.Partition([]int{p}, rest)
}

// minorityMajority splits off a random minority of f replicas.
func (inj *injector) minorityMajority() {
	c := inj.c
	order := c.rng.Perm(c.n)
	c.stats.Faults["partition-minority"]++
	c.Partition(order[:c.f], order[c.f:])
}

// changingViews reports whether some live replica is changing views or
// recovering.
func (c *Cluster) changingViews() bool {
	for _, r := range c.replicas {
		if r != nil && r.Status() != vsr.StatusNormal {
			return true
		}
	}
	return false
}
