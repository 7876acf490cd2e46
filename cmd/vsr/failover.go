package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/sim"
)

const failoverUsage = `usage: vsr failover [flags]

Measures, in the deterministic simulator, how long a group takes to get over
the crash of its primary. For each seed and replica count: closed-loop clients
write for -warmup ticks on a network with no faults but -drop and -delay, the
primary is crashed (and stays down), and two times are taken, in ticks after
the crash: until some replica is normal primary in a higher view, and until
the first write invoked after the crash is acknowledged to its client. It
prints their p50, p90, p99 and max per replica count, in ticks and in
milliseconds at the actor layer's tick (actors.DefaultTickInterval), and
counts the seeds that did not get there within -limit ticks. Replicas run
the core's default history bounds unless -drawn-bounds. The same flags
give the same figures, so a protocol change can be measured before and after.

flags:
`

// failoverCommand runs the failover measurement over seeds and prints one
// summary per replica count. It exits 1 if a seed could not be measured (a
// violation or panic in the simulator), not for seeds that failed to fail
// over in time: those are reported in the summary.
func failoverCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vsr failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, failoverUsage)
		fs.PrintDefaults()
	}
	var (
		seeds    = fs.Int("seeds", 500, "number of seeds to run for each replica count")
		first    = fs.Uint64("first", 1, "first seed")
		replicas = fs.String("replicas", "3,5", "comma-separated replica counts (odd, at least 3)")
		drop     = fs.Float64("drop", 0, "chance that a message is lost (<= 0.3), the same for every seed")
		delay    = fs.Int("delay", 1, "largest message delay in ticks")
		clients  = fs.Int("clients", 4, "closed-loop clients")
		keys     = fs.Int("keys", 3, "keys the clients share")
		warmup   = fs.Int("warmup", sim.DefaultFailoverWarmup, "ticks the clients write before the primary is crashed")
		limit    = fs.Int("limit", sim.DefaultFailoverLimit, "ticks after the crash within which a new primary and a served write must come")
		drawn    = fs.Bool("drawn-bounds", false, "keep the simulator's per-seed history bounds (tiny checkpoints, pipelines, session tables) instead of the core's defaults")
		workers  = fs.Int("workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
		verbose  = fs.Bool("v", false, "print every seed's figures")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	counts, err := parseCounts(*replicas)
	if err == nil {
		for _, n := range counts {
			if n < 3 {
				err = fmt.Errorf("replica count %d: a failover needs at least 3", n)
			}
		}
	}
	if err == nil && *seeds < 1 {
		err = fmt.Errorf("-seeds must be at least 1, got %d", *seeds)
	}
	o := sim.FailoverOptions{Drop: *drop, MaxDelay: *delay, Clients: *clients, Keys: *keys,
		WarmupTicks: *warmup, LimitTicks: *limit, DrawnBounds: *drawn}
	if err == nil {
		err = o.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "vsr failover: %v\n", err)
		return 2
	}
	bounds := "core defaults"
	if *drawn {
		bounds = "drawn per seed"
	}
	fmt.Fprintf(stdout, "failover: seeds %d..%d, drop %g, delay 1..%d ticks, %d clients, warm-up %d ticks, limit %d ticks, history bounds %s, 1 tick = %s\n",
		*first, *first+uint64(*seeds)-1, *drop, max(*delay, 1), *clients, *warmup, *limit, bounds, actors.DefaultTickInterval)
	failed := false
	for _, n := range counts {
		start := time.Now()
		results, errs := measureFailovers(n, *first, *seeds, o, max(*workers, 1))
		if *verbose {
			for _, r := range results {
				fmt.Fprintf(stdout, "  n=%d seed=%d crashed r%d view %d at t=%d: new primary r%d view %d after %d ticks, first write after %d ticks, first op after %d\n",
					n, r.Seed, r.Crashed, r.OldView, r.CrashedAt, r.NewPrimary, r.NewView, r.NewPrimaryTicks, r.FirstWriteTicks, r.FirstOpTicks)
			}
		}
		printFailoverSummary(stdout, n, results, len(errs), *limit, time.Since(start))
		for _, e := range errs {
			fmt.Fprintf(stdout, "  ERROR %v\n", e)
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

// measureFailovers runs seeds first..first+seeds-1 for n replicas in
// parallel and returns the results in seed order, and the errors of the seeds
// that could not be measured.
func measureFailovers(n int, first uint64, seeds int, o sim.FailoverOptions, workers int) ([]sim.FailoverResult, []error) {
	results := make([]sim.FailoverResult, seeds)
	errs := make([]error, seeds)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				results[s], errs[s] = sim.MeasureFailover(first+uint64(s), n, o)
			}
		}()
	}
	for s := 0; s < seeds; s++ {
		next <- s
	}
	close(next)
	wg.Wait()
	var ok []sim.FailoverResult
	var bad []error
	for s := range results {
		if errs[s] != nil {
			bad = append(bad, fmt.Errorf("n=%d seed=%d: %w", n, first+uint64(s), errs[s]))
			continue
		}
		ok = append(ok, results[s])
	}
	return ok, bad
}

// failoverStats are the percentiles of one measure over the seeds that got
// there.
type failoverStats struct{ p50, p90, p99, max int }

// percentiles uses the nearest rank: the p-th percentile is the smallest
// value that at least p% of the values do not exceed.
func percentiles(xs []int) failoverStats {
	if len(xs) == 0 {
		return failoverStats{-1, -1, -1, -1}
	}
	s := append([]int(nil), xs...)
	sort.Ints(s)
	rank := func(p int) int { return s[(p*len(s)+99)/100-1] }
	return failoverStats{rank(50), rank(90), rank(99), s[len(s)-1]}
}

func (s failoverStats) ticks() string {
	if s.max < 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %d p90 %d p99 %d max %d ticks", s.p50, s.p90, s.p99, s.max)
}

func (s failoverStats) millis() string {
	if s.max < 0 {
		return "none"
	}
	ms := func(t int) int64 { return (time.Duration(t) * actors.DefaultTickInterval).Milliseconds() }
	return fmt.Sprintf("p50 %d p90 %d p99 %d max %d ms", ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max))
}

func printFailoverSummary(w io.Writer, n int, results []sim.FailoverResult, unmeasured, limit int, took time.Duration) {
	var elected, served []int
	var noPrimary, noWrite []string
	for _, r := range results {
		if r.Elected {
			elected = append(elected, r.NewPrimaryTicks)
		} else {
			noPrimary = append(noPrimary, fmt.Sprint(r.Seed))
		}
		if r.Served {
			served = append(served, r.FirstWriteTicks)
		} else {
			noWrite = append(noWrite, fmt.Sprint(r.Seed))
		}
	}
	p, fw := percentiles(elected), percentiles(served)
	fmt.Fprintf(w, "n=%d new primary %s; first write %s (%d seeds)\n", n, p.ticks(), fw.ticks(), len(results))
	fmt.Fprintf(w, "    in ms:       new primary %s; first write %s\n", p.millis(), fw.millis())
	fmt.Fprintf(w, "    no new primary within %d ticks: %d seeds%s; no write served within %d ticks: %d seeds%s; not measured (errors): %d; took %s\n",
		limit, len(noPrimary), seedList(noPrimary), limit, len(noWrite), seedList(noWrite), unmeasured, took.Round(time.Millisecond))
}

// seedList names up to ten seeds, for replay.
func seedList(seeds []string) string {
	if len(seeds) == 0 {
		return ""
	}
	if len(seeds) > 10 {
		return " (seeds " + strings.Join(seeds[:10], ",") + ", ...)"
	}
	return " (seeds " + strings.Join(seeds, ",") + ")"
}
