package sim

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/vsrgo/vsr/vsr"
)

// FailoverOptions describe one failover measurement. The zero value is a
// reliable network with one-tick delivery, the default workload and bounds.
type FailoverOptions struct {
	// Drop is the chance that any message is lost, exactly this rate for
	// every seed (the random driver draws a rate per seed below its bound;
	// here it is fixed, so that seeds are comparable). At most 0.3.
	Drop float64
	// MaxDelay is the largest delivery delay in ticks; each message takes
	// between 1 and MaxDelay. Zero or one: every message takes one tick.
	MaxDelay int
	// Clients and Keys shape the closed-loop workload (4 and 3 if zero).
	Clients, Keys int
	// WarmupTicks is how long the clients write before the primary is
	// crashed (300 if zero).
	WarmupTicks int
	// LimitTicks bounds the measurement after the crash (2000 if zero): a
	// seed that has not elected a new primary, or served a write, by then is
	// reported as such.
	LimitTicks int
	// DrawnBounds keeps the history bounds newCluster draws per seed (tiny
	// checkpoint intervals, pipelines, messages and session tables, Prepare
	// batches of 1 to 64, slow checkpoint encoding). Without it every
	// replica runs the core's defaults, as a deployment would, so that the
	// figures measure the view change and not, say, a session table too
	// small for the clients (which expires writes and so delays the first
	// one served).
	DrawnBounds bool
}

// Defaults of FailoverOptions' zero fields.
const (
	DefaultFailoverWarmup = 300
	DefaultFailoverLimit  = 2000
)

func (o FailoverOptions) withDefaults() FailoverOptions {
	if o.MaxDelay == 0 {
		o.MaxDelay = 1
	}
	if o.Clients == 0 {
		o.Clients = 4
	}
	if o.Keys == 0 {
		o.Keys = 3
	}
	if o.WarmupTicks == 0 {
		o.WarmupTicks = DefaultFailoverWarmup
	}
	if o.LimitTicks == 0 {
		o.LimitTicks = DefaultFailoverLimit
	}
	return o
}

// Validate reports the first thing wrong with o (after defaults).
func (o FailoverOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Drop < 0 || o.Drop > 0.3:
		return fmt.Errorf("%w: drop %.2f not in [0, 0.3]", ErrFaults, o.Drop)
	case o.MaxDelay < 1 || o.MaxDelay > 1000:
		return fmt.Errorf("%w: max delay %d not in [1, 1000]", ErrFaults, o.MaxDelay)
	case o.Clients < 1 || o.Keys < 1:
		return errors.New("sim: failover needs at least one client and one key")
	case o.WarmupTicks < 1 || o.LimitTicks < 1:
		return errors.New("sim: failover warm-up and limit must be positive")
	}
	return nil
}

// FailoverResult is what one failover measurement found. Times are in ticks
// after the crash: the crash happens between two ticks, and an event seen at
// the end of the k-th tick after it took k ticks.
type FailoverResult struct {
	Seed     uint64
	Replicas int
	// Crashed is the primary that was crashed, at tick CrashedAt, in view
	// OldView.
	Crashed   int
	CrashedAt int
	OldView   uint64
	// Elected is whether some replica became normal primary in a view above
	// OldView within the limit; NewPrimary (-1 if not), NewView and
	// NewPrimaryTicks say which, where and when.
	Elected         bool
	NewPrimary      int
	NewView         uint64
	NewPrimaryTicks int
	// Served is whether a write (put, cas or put-if-absent) invoked after the
	// crash completed at its client within the limit; FirstWriteTicks is
	// when the first one did (-1 if none).
	Served          bool
	FirstWriteTicks int
	// FirstOpTicks is when the first operation of any kind (reads
	// included) invoked after the crash completed, or -1.
	FirstOpTicks int
	// Ticks is the whole run's length, warm-up included.
	Ticks int
}

// MeasureFailover runs one seed: n replicas and closed-loop clients on a
// network with no faults but o's message drop and delay, a warm-up in which
// the clients write, then a crash of the primary, which stays down. It
// measures the ticks until some replica is normal primary in a higher view
// and until the first write invoked after the crash is served. The same
// arguments give the same result.
//
// The error is for a run that cannot measure: bad options, no primary after
// the warm-up, a safety violation or a panic in the core.
func MeasureFailover(seed uint64, n int, o FailoverOptions) (res FailoverResult, err error) {
	if err := o.Validate(); err != nil {
		return res, err
	}
	o = o.withDefaults()
	if n < 3 || n%2 == 0 {
		return res, fmt.Errorf("sim: failover needs an odd replica count of at least 3, got %d", n)
	}
	res = FailoverResult{Seed: seed, Replicas: n, Crashed: -1, NewPrimary: -1,
		NewPrimaryTicks: -1, FirstWriteTicks: -1, FirstOpTicks: -1}
	mix := Faults{Drop: o.Drop, MaxDelay: o.MaxDelay}
	c, err := newCluster(seed, n, o.Clients, o.Keys, 0, mix, 0)
	if err != nil {
		return res, err
	}
	if err := c.onlyFaults(mix); err != nil {
		return res, err
	}
	// The open-loop writers newCluster may add stay idle: the workload is
	// the closed-loop clients alone, the same in every seed and as before
	// the writers existed, so that figures compare across versions.
	c.writePeriod = 0
	if !o.DrawnBounds {
		if err := c.defaultBounds(); err != nil {
			return res, err
		}
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sim: failover seed %d n=%d: t=%d: panic: %v\n%s", seed, n, c.now, p, debug.Stack())
		}
		res.Ticks = c.now
	}()
	for c.now < o.WarmupTicks && c.violation == nil {
		c.tick()
	}
	if c.violation != nil {
		return res, fmt.Errorf("sim: failover seed %d n=%d: warm-up: %w", seed, n, c.violation)
	}
	old := c.Primary()
	if old < 0 {
		return res, fmt.Errorf("sim: failover seed %d n=%d: no primary after %d ticks of warm-up", seed, n, o.WarmupTicks)
	}
	res.Crashed, res.CrashedAt, res.OldView = old, c.now, c.replicas[old].View()
	c.Crash(old)
	since := c.history.Len() // ops invoked from here on were invoked after the crash
	for k := 1; k <= o.LimitTicks && (!res.Elected || !res.Served); k++ {
		c.tick()
		if c.violation != nil {
			return res, fmt.Errorf("sim: failover seed %d n=%d: %w", seed, n, c.violation)
		}
		if !res.Elected {
			if p := c.Primary(); p >= 0 && c.replicas[p].View() > res.OldView {
				res.Elected, res.NewPrimary, res.NewView, res.NewPrimaryTicks = true, p, c.replicas[p].View(), k
			}
		}
		if res.FirstOpTicks < 0 {
			if at, ok := c.history.firstReturnSince(since, false); ok {
				res.FirstOpTicks = int(at) - res.CrashedAt
			}
		}
		if !res.Served {
			if at, ok := c.history.firstReturnSince(since, true); ok {
				res.Served, res.FirstWriteTicks = true, int(at)-res.CrashedAt
			}
		}
	}
	return res, nil
}

// onlyFaults replaces the rates newCluster drew for this seed by exactly
// mix (which has no partitions, crashes or clock skew), and sizes the
// network's delivery ring for mix's largest delay. Call it before the first
// tick, while nothing is in flight.
func (c *Cluster) onlyFaults(mix Faults) error {
	c.faults = mix // the network reads the rates through a pointer to this field
	if need := mix.MaxDelay + 2; len(c.net.due) < need {
		for _, slot := range c.net.due {
			if len(slot) > 0 {
				return errors.New("sim: failover: messages in flight before the first tick")
			}
		}
		c.net.due = make([][]packet, need)
	}
	return nil
}

// defaultBounds replaces the history bounds and batch limit newCluster drew
// by the core's defaults, and rebuilds the replicas with them. Call it before
// the first tick.
func (c *Cluster) defaultBounds() error {
	c.bounds = historyBounds{
		checkpointInterval: vsr.DefaultCheckpointInterval,
		trailingOps:        vsr.DefaultTrailingOps,
		pipelineMax:        vsr.DefaultPipelineMax,
		maxMessageBytes:    vsr.DefaultMaxMessageBytes,
		sessionIdleOps:     vsr.DefaultSessionIdleOps,
		maxSessions:        vsr.DefaultMaxSessions,
	}
	c.maxBatch = vsr.DefaultMaxBatch
	for i := 0; i < c.n; i++ {
		if err := c.start(i, false); err != nil {
			return err
		}
	}
	return nil
}

// firstReturnSince is the earliest return time of the ops with id from on
// that completed with a known outcome, writes only if writes is set.
func (h *History) firstReturnSince(from int, writes bool) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var best int64
	found := false
	for _, r := range h.ops[min(from, len(h.ops)):] {
		if !r.completed || r.out.Unknown || (writes && r.in.Kind == OpGet) {
			continue
		}
		if !found || r.ret < best {
			best, found = r.ret, true
		}
	}
	return best, found
}
