package sim

import "fmt"

// Gray failures: faults that leave a replica half working for a long time.
// A partition heals within PartitionTicks; these last up to GrayTicks, long
// enough for the liveness-under-faults check (liveness.go) to see whether the
// healthy quorum keeps serving meanwhile.

type grayKind int

const (
	grayNone grayKind = iota
	// grayDeafPrimary cuts every link into the primary: it still sends
	// (Commit heartbeats reach its backups) but hears no peer.
	grayDeafPrimary
	// grayMuteBackup cuts every link out of a backup: it hears the
	// primary, and no one hears it.
	grayMuteBackup
	// grayDeafBackup cuts every link into a backup: it hears no one, and
	// its view-change probes reach replicas that still hear the primary.
	grayDeafBackup
	// grayFlapping cuts a replica off and connects it again in turn.
	grayFlapping
	numGrayKinds
)

func (k grayKind) String() string {
	return [...]string{"none", "deaf-primary", "mute-backup", "deaf-backup", "flapping"}[k]
}

type gray struct {
	kind   grayKind
	victim int
	until  int
	// period and cut drive a flapping replica: it flips every period ticks.
	period int
	flipAt int
	cutNow bool
}

func (g gray) active() bool { return g.kind != grayNone }

// stepGray starts, drives and ends the gray failure of the safety phase.
func (inj *injector) stepGray() {
	c := inj.c
	g := &inj.gray
	switch {
	case g.active() && c.now >= g.until:
		c.trace.add(event{tick: c.now, what: "gray", note: fmt.Sprintf("%s of r%d ends", g.kind, g.victim)})
		*g = gray{}
		c.Heal()
	case g.kind == grayFlapping && c.now >= g.flipAt:
		g.cutNow = !g.cutNow
		g.flipAt = c.now + g.period
		inj.isolate(g.victim, g.cutNow, g.cutNow)
	case !g.active() && c.n > 1 && inj.healAt == 0 && inj.mix.Gray > 0 && c.rng.Float64() < inj.mix.Gray:
		inj.startGray()
	}
}

func (inj *injector) startGray() {
	c := inj.c
	g := &inj.gray
	g.kind = grayKind(1 + c.rng.IntN(int(numGrayKinds)-1))
	// Long stretches: a third of GrayTicks at least, so that the quorum that
	// stays healthy is judged well past its settling time.
	g.until = c.now + 1 + inj.mix.GrayTicks/3 + c.rng.IntN(max(1, inj.mix.GrayTicks*2/3))
	p := c.Primary()
	switch g.kind {
	case grayDeafPrimary:
		if p < 0 {
			p = c.rng.IntN(c.n)
		}
		g.victim = p
		inj.isolate(p, true, false)
	case grayMuteBackup, grayDeafBackup:
		g.victim = c.rng.IntN(c.n)
		if g.victim == p {
			g.victim = (p + 1 + c.rng.IntN(c.n-1)) % c.n
		}
		inj.isolate(g.victim, g.kind == grayDeafBackup, g.kind == grayMuteBackup)
	case grayFlapping:
		g.victim = c.rng.IntN(c.n)
		g.period = 5 + c.rng.IntN(76)
		g.flipAt = c.now + g.period
		g.cutNow = true
		inj.isolate(g.victim, true, true)
	}
	c.stats.Faults["gray-"+g.kind.String()]++
	c.trace.add(event{tick: c.now, what: "gray", note: fmt.Sprintf("%s of r%d until t=%d", g.kind, g.victim, g.until)})
}

// isolate cuts (or, with both false, restores) the links into and out of
// replica v.
func (inj *injector) isolate(v int, in, out bool) {
	c := inj.c
	for j := 0; j < c.n; j++ {
		if j == v {
			continue
		}
		if in {
			c.net.cut(j, v)
		} else {
			c.net.restore(j, v)
		}
		if out {
			c.net.cut(v, j)
		} else {
			c.net.restore(v, j)
		}
	}
}
