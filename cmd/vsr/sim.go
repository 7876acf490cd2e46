package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vsrgo/vsr/sim"
	"github.com/vsrgo/vsr/vsr"
)

// simCommand runs seeds through the simulator, in parallel, and exits 1 on
// any violation, after printing the command that replays it and writing its
// trace and porcupine's visualisation.
func simCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vsr sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := sim.DefaultOptions(0)
	var (
		seed     = fs.Uint64("seed", 0, "run this one seed (overrides -seeds and -first)")
		seeds    = fs.Int("seeds", 100, "number of seeds to run for each replica count")
		first    = fs.Uint64("first", 1, "first seed")
		replicas = fs.String("replicas", "3,5", "comma-separated replica counts (odd: 1, 3, 5, 7, ...)")
		clients  = fs.Int("clients", def.Clients, "concurrent clients")
		keys     = fs.Int("keys", def.Keys, "keys the clients share")
		ticks    = fs.Int("ticks", def.Ticks, "ticks of the safety phase (with faults)")
		liveness = fs.Int("liveness", def.LivenessTicks, "ticks allowed, once faults heal, for every operation to finish and replicas to converge")
		drop     = fs.Float64("drop", def.Faults.Drop, "largest message drop rate (<= 0.3); each seed draws its own below it")
		dup      = fs.Float64("dup", def.Faults.Duplicate, "largest duplication rate (<= 0.5)")
		delay    = fs.Int("delay", def.Faults.MaxDelay, "largest message delay in ticks")
		part     = fs.Float64("partition", def.Faults.Partition, "largest chance per tick that a partition starts")
		partT    = fs.Int("partition-ticks", def.Faults.PartitionTicks, "longest partition in ticks")
		crash    = fs.Float64("crash", def.Faults.Crash, "largest chance per tick that a replica crashes")
		restartT = fs.Int("restart-ticks", def.Faults.RestartTicks, "longest time a crashed replica stays down")
		skew     = fs.Float64("skew", def.Faults.ClockSkew, "largest chance that a replica misses a tick")
		grayP    = fs.Float64("gray", def.Faults.Gray, "largest chance per tick that a long gray failure starts (deaf primary, mute or deaf backup, flapping replica); on in about half the seeds")
		grayT    = fs.Int("gray-ticks", def.Faults.GrayTicks, "longest gray failure in ticks")
		forge    = fs.Float64("forge", def.Faults.Forge, "largest chance per tick that a forged message with extreme fields is sent; on in about half the seeds")
		hold     = fs.Float64("hold", def.Faults.Hold, "largest chance that a message is held back for up to -hold-ticks (<= 0.1); on in about half the seeds")
		holdT    = fs.Int("hold-ticks", def.Faults.HoldTicks, "longest hold-back in ticks")
		replay   = fs.Float64("replay", def.Faults.Replay, "largest chance per tick that an old message of another view than its receiver's is delivered again; on in about half the seeds")
		durable  = fs.Float64("durable", def.Faults.Durable, "share of seeds whose replicas keep disks (0: memory only, 1: always disks)")
		diskF    = fs.Float64("disk-fault", def.Faults.DiskFault, "largest chance that a crash tears a write or a restart finds a record corrupted, a file missing or the disk wiped (at most f disks at once)")
		groupC   = fs.Float64("group-crash", def.Faults.GroupCrash, "largest chance per tick that the whole group crashes at once (seeds with disks only)")
		bugs     = fs.String("bugs", "", "re-introduce known bugs (build with -tags vsrbugs): "+bugNames())
		out      = fs.String("out", "sim-failures", "directory for the trace and visualisation of a failing seed")
		traceN   = fs.Int("trace", def.TraceEvents, "events of a failing run to keep in its trace")
		workers  = fs.Int("workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
		quiet    = fs.Bool("quiet", false, "no progress line")
		runs     = fs.String("runs", "plain,reconfig", "kinds of run per seed and replica count: plain (a fixed group) and reconfig (an operator replaces members, grows 3 to 5 and shrinks 5 to 3; counts of 3 or more)")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	counts, err := parseCounts(*replicas)
	if err != nil {
		fmt.Fprintf(stderr, "vsr sim: %v\n", err)
		return 2
	}
	bugSet, err := parseBugs(*bugs)
	if err != nil {
		fmt.Fprintf(stderr, "vsr sim: %v\n", err)
		return 2
	}
	base := sim.Options{Clients: *clients, Keys: *keys, Ticks: *ticks, LivenessTicks: *liveness,
		Faults: sim.Faults{Drop: *drop, Duplicate: *dup, MaxDelay: *delay, Partition: *part,
			PartitionTicks: *partT, Crash: *crash, RestartTicks: *restartT, ClockSkew: *skew,
			Gray: *grayP, GrayTicks: *grayT, Forge: *forge, Hold: *hold, HoldTicks: *holdT, Replay: *replay,
			Durable: *durable, DiskFault: *diskF, GroupCrash: *groupC},
		Bugs: bugSet, TraceEvents: *traceN, CheckTimeout: def.CheckTimeout}
	kinds, err := parseRuns(*runs)
	if err != nil {
		fmt.Fprintf(stderr, "vsr sim: %v\n", err)
		return 2
	}
	var jobs []sim.Options
	for _, reconfig := range kinds {
		for _, n := range counts {
			if reconfig && n < 3 {
				continue
			}
			if *seed != 0 {
				o := base
				o.Seed, o.Replicas, o.Reconfigure = *seed, n, reconfig
				jobs = append(jobs, o)
				continue
			}
			for s := 0; s < *seeds; s++ {
				o := base
				o.Seed, o.Replicas, o.Reconfigure = *first+uint64(s), n, reconfig
				jobs = append(jobs, o)
			}
		}
	}
	if len(jobs) > 0 {
		if err := jobs[0].Validate(); err != nil {
			fmt.Fprintf(stderr, "vsr sim: %v\n", err)
			return 2
		}
	}
	sum := runJobs(jobs, max(*workers, 1), *quiet, stderr)
	sum.print(stdout)
	if len(sum.failures) == 0 {
		return 0
	}
	for _, f := range sum.failures {
		report(f, *out, stdout)
	}
	return 1
}

type summary struct {
	seeds, ops, unknown, inconclusive  int
	faults                             map[string]int
	failures                           []sim.Result
	elapsed                            time.Duration
	ticks, delivered, batches          int
	checkpoints, installed, maxMessage int
	watched, longestWatched            int
}

func runJobs(jobs []sim.Options, workers int, quiet bool, stderr io.Writer) *summary {
	sum := &summary{faults: map[string]int{}}
	start := time.Now()
	var mu sync.Mutex
	next := make(chan sim.Options)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range next {
				run := sim.Run
				if o.Reconfigure {
					run = sim.RunReconfig
				}
				res := run(o)
				mu.Lock()
				sum.add(res)
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	if !quiet {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					mu.Lock()
					fmt.Fprintf(stderr, "\rseeds %d/%d  ops %d  violations %d  %.0f seeds/min   ",
						sum.seeds, len(jobs), sum.ops, len(sum.failures), float64(sum.seeds)/time.Since(start).Minutes())
					mu.Unlock()
				}
			}
		}()
	}
	for _, o := range jobs {
		next <- o
	}
	close(next)
	wg.Wait()
	close(done)
	if !quiet {
		fmt.Fprintln(stderr)
	}
	sum.elapsed = time.Since(start)
	sort.Slice(sum.failures, func(a, b int) bool {
		fa, fb := sum.failures[a].Options, sum.failures[b].Options
		if fa.Reconfigure != fb.Reconfigure {
			return !fa.Reconfigure
		}
		return fa.Replicas < fb.Replicas || (fa.Replicas == fb.Replicas && fa.Seed < fb.Seed)
	})
	return sum
}

func (s *summary) add(r sim.Result) {
	s.seeds++
	s.ops += r.Stats.OpsOK
	s.unknown += r.Stats.OpsUnknown
	s.ticks += r.Stats.Ticks
	s.delivered += r.Stats.Delivered
	s.batches += r.Stats.Batches
	s.checkpoints += r.Stats.Checkpoints
	s.installed += r.Stats.Installed
	s.maxMessage = max(s.maxMessage, r.Stats.MaxMessage)
	s.watched += r.Stats.Watched
	s.longestWatched = max(s.longestWatched, r.Stats.LongestWatched)
	for k, v := range r.Stats.Faults {
		s.faults[k] += v
	}
	if r.Inconclusive {
		s.inconclusive++
	}
	if r.Violation != nil {
		s.failures = append(s.failures, r)
	}
}

func (s *summary) print(w io.Writer) {
	mins := s.elapsed.Minutes()
	fmt.Fprintf(w, "runs:             %d (seeds x replica counts x kinds) in %s (%.0f runs/min, %.0f simulated ops/s)\n",
		s.seeds, s.elapsed.Round(time.Millisecond), float64(s.seeds)/mins, float64(s.ops)/s.elapsed.Seconds())
	fmt.Fprintf(w, "ops checked:      %d completed, %d with unknown outcome\n", s.ops, s.unknown)
	fmt.Fprintf(w, "ticks simulated:  %d\n", s.ticks)
	fmt.Fprintf(w, "messages:         %d delivered to replicas, %d batches of several stepped together\n", s.delivered, s.batches)
	fmt.Fprintf(w, "checkpoints:      %d encoded, %d fetched from a peer in chunks; largest message %d bytes\n",
		s.checkpoints, s.installed, s.maxMessage)
	fmt.Fprintf(w, "live under faults: %d ops started while a quorum was stable, the slowest done in %d ticks (bound %d)\n",
		s.watched, s.longestWatched, sim.ServeTicks)
	var kinds []string
	for k := range s.faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "faults injected:")
	for _, k := range kinds {
		fmt.Fprintf(w, " %s=%d", k, s.faults[k])
	}
	fmt.Fprintln(w)
	if s.inconclusive > 0 {
		fmt.Fprintf(w, "inconclusive:     %d histories the checker could not decide in time\n", s.inconclusive)
	}
	fmt.Fprintf(w, "violations:       %d\n", len(s.failures))
}

// report prints a failing seed's replay command and writes its artifacts.
func report(r sim.Result, dir string, w io.Writer) {
	o := r.Options
	kind := ""
	if o.Reconfigure {
		kind = "reconfig "
	}
	fmt.Fprintf(w, "\nVIOLATION (%sn=%d seed=%d): %v\n  replay: %s\n", kind, o.Replicas, o.Seed, r.Violation, o.Command())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(w, "  cannot write artifacts: %v\n", err)
		return
	}
	stem := filepath.Join(dir, fmt.Sprintf("%sn%d-seed%d", strings.TrimSpace(strings.ReplaceAll(kind, " ", "-")), o.Replicas, o.Seed))
	trace := strings.Join(r.Trace, "\n") + "\n"
	if err := os.WriteFile(stem+".trace.txt", []byte(trace), 0o644); err == nil {
		fmt.Fprintf(w, "  trace of the last %d events: %s.trace.txt\n", len(r.Trace), stem)
	}
	if ok, err := r.WriteVisualization(stem + ".html"); ok && err == nil {
		fmt.Fprintf(w, "  history visualisation: %s.html\n", stem)
	}
}

// parseRuns reads -runs: for each kind named, whether it reconfigures.
func parseRuns(s string) ([]bool, error) {
	var kinds []bool
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "plain":
			kinds = append(kinds, false)
		case "reconfig":
			kinds = append(kinds, true)
		default:
			return nil, fmt.Errorf("-runs: unknown kind %q (plain, reconfig)", f)
		}
	}
	return kinds, nil
}

func parseCounts(s string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n%2 == 0 {
			return nil, fmt.Errorf("replica count %q: must be odd and at least 1", f)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

func bugNames() string {
	var names []string
	for _, b := range vsr.AllBugs {
		names = append(names, b.Name)
	}
	return strings.Join(names, ", ")
}

func parseBugs(s string) (vsr.Bug, error) {
	var set vsr.Bug
	if s == "" {
		return 0, nil
	}
	for _, name := range strings.Split(s, ",") {
		found := false
		for _, b := range vsr.AllBugs {
			if b.Name == strings.TrimSpace(name) {
				set |= b.Bug
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown bug %q (known: %s)", name, bugNames())
		}
	}
	return set, nil
}
