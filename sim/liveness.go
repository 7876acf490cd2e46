package sim

import (
	"fmt"
	"slices"

	"github.com/vsrgo/vsr/vsr"
)

// Liveness under faults. The heal phase checks that a group comes back once
// every fault is gone; this checks that it keeps serving while faults go on:
// whenever some quorum of replicas has been up (running and done with any
// recovery: a recovering replica has no state to serve with), and connected
// to each other
// with working links both ways, for stableTicks, an operation a client
// starts then must complete within serveTicks, unless that quorum breaks
// first. Replicas outside the quorum may do anything meanwhile: be down,
// deaf, mute, flapping, or send forged messages.
//
// stableTicks gives the quorum time to settle whatever was under way when it
// formed: a backup's inactivity timeout with jitter (45 ticks), a probe and a
// view change (a few heartbeats over lossy links), one failed view change
// whose primary was outside the quorum (45 more), and a restarted member's
// recovery; 200 ticks covers that with room. serveTicks is what one
// operation may then take over links that lose up to 30% of messages: a few
// client retries (25 ticks each) and, with n = 5 or 7, one more view change;
// 300 ticks is also when a client gives up, so no watched operation is
// abandoned before it is judged.
const (
	stableTicks = 200
	serveTicks  = giveUpTicks
)

// ServeTicks is the bound on an operation started while a quorum is stable.
const ServeTicks = serveTicks

// livenessMonitor tracks, tick by tick, since when each replica has been up
// and each link has worked, and the operations it watches.
type livenessMonitor struct {
	c         *Cluster
	upSince   []int   // -1 while down or paused
	linkSince [][]int // linkSince[a][b]: -1 while a cannot reach b
	quorums   [][]int // every set of f+1 replicas
	watched   []watch
	// Longest is the longest a watched operation took.
	longest int
	// healthy is the primary that is a member of a stable quorum, and the
	// view it leads; deposed holds the ticks at which such a primary lost
	// its view while it still was.
	healthy     int
	healthyView uint64
	deposed     []int
}

type watch struct {
	client, op int
	quorum     []int
	since      int
}

func newLivenessMonitor(c *Cluster) *livenessMonitor {
	m := &livenessMonitor{c: c, upSince: make([]int, c.n), linkSince: make([][]int, c.n)}
	for i := range m.linkSince {
		m.linkSince[i] = make([]int, c.n)
	}
	m.quorums = subsets(c.n, c.f+1)
	m.healthy = -1
	return m
}

// subsets lists every k-subset of 0..n-1, in order.
func subsets(n, k int) [][]int {
	var all [][]int
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == k {
			all = append(all, append([]int(nil), cur...))
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(0, nil)
	return all
}

// observe runs once a tick, after the injector: it updates who is up and
// which links work, and judges the watched operations.
func (m *livenessMonitor) observe() {
	c := m.c
	for i := 0; i < c.n; i++ {
		r := c.replicas[i]
		m.upSince[i] = since(m.upSince[i], r != nil && !c.paused[i] && r.Status() != vsr.StatusRecovering, c.now)
		for j := 0; j < c.n; j++ {
			m.linkSince[i][j] = since(m.linkSince[i][j], i == j || c.net.links[i][j], c.now)
		}
	}
	kept := m.watched[:0]
	for _, w := range m.watched {
		cl := c.clients[w.client]
		switch {
		case cl.op != w.op: // answered (or refused for a lost session)
			m.longest = max(m.longest, c.now-w.since)
		case cl.busy:
			// Refused as busy: the quorum serves, more slowly than it is
			// asked to. That is overload, which a bound cannot judge.
			c.stats.Faults["watched-busy"]++
		case m.stableFor(w.quorum) < 0:
			// The quorum broke: no promise any more.
		case c.now-w.since >= serveTicks:
			c.fail("liveness under faults: client %d's operation started at t=%d was not done %d ticks later, "+
				"while replicas %v were up and connected both ways (since t=%d)",
				w.client, w.since, serveTicks, w.quorum, c.now-m.stableFor(w.quorum))
		default:
			kept = append(kept, w)
		}
	}
	m.watched = kept
	m.watchPrimary()
}

// Disruption. A primary that is a member of a stable quorum is healthy: the
// quorum hears it and it hears the quorum. Losing such a primary now and then
// is lawful (enough lost heartbeats in a row look like a crash), but a group
// that keeps deposing it is being disrupted, by a replica outside the quorum
// that times out and drags the others along: three such depositions within
// disruptionTicks are a violation.
const (
	disruptions     = 3
	disruptionTicks = 1000
)

func (m *livenessMonitor) watchPrimary() {
	c := m.c
	if m.healthy >= 0 {
		r := c.replicas[m.healthy]
		switch {
		case r == nil || c.paused[m.healthy]:
			m.healthy = -1 // a crash is not a disruption
		case !r.IsPrimary() || r.View() != m.healthyView:
			if m.inStableQuorum(m.healthy) {
				m.deposed = append(m.deposed, c.now)
				c.stats.Faults["healthy-primary-deposed"]++
				c.trace.add(event{tick: c.now, what: "deposed", note: fmt.Sprintf("healthy primary r%d of view %d", m.healthy, m.healthyView)})
			}
			m.healthy = -1
		}
	}
	for len(m.deposed) > 0 && m.deposed[0] <= c.now-disruptionTicks {
		m.deposed = m.deposed[1:]
	}
	if len(m.deposed) >= disruptions {
		c.fail("liveness under faults: a primary that a stable quorum heard was deposed %d times within %d ticks",
			len(m.deposed), disruptionTicks)
		m.deposed = nil
	}
	if p := c.Primary(); m.healthy < 0 && p >= 0 && m.inStableQuorum(p) {
		m.healthy, m.healthyView = p, c.replicas[p].View()
	}
}

// inStableQuorum reports whether i belongs to a quorum stable for
// stableTicks.
func (m *livenessMonitor) inStableQuorum(i int) bool {
	for _, q := range m.quorums {
		if slices.Contains(q, i) && m.stableFor(q) >= stableTicks {
			return true
		}
	}
	return false
}

func since(at int, ok bool, now int) int {
	switch {
	case !ok:
		return -1
	case at < 0:
		return now
	}
	return at
}

// stableFor is how long every member of q has been up and every link within
// q has worked both ways, or -1 if one is down.
func (m *livenessMonitor) stableFor(q []int) int {
	from := 0
	for _, a := range q {
		if m.upSince[a] < 0 {
			return -1
		}
		from = max(from, m.upSince[a])
		for _, b := range q {
			if m.linkSince[a][b] < 0 {
				return -1
			}
			from = max(from, m.linkSince[a][b])
		}
	}
	return m.c.now - from
}

// onInvoke watches an operation a client just started, if some quorum has
// been stable long enough.
func (m *livenessMonitor) onInvoke(client, op int) {
	if !m.c.faulty {
		return // the heal phase has its own check
	}
	for _, q := range m.quorums {
		if m.stableFor(q) >= stableTicks {
			m.watched = append(m.watched, watch{client: client, op: op, quorum: q, since: m.c.now})
			m.c.stats.Watched++
			return
		}
	}
}

func (w watch) String() string {
	return fmt.Sprintf("client %d op %d quorum %v", w.client, w.op, w.quorum)
}
