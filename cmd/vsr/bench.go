package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vsrgo/vsr/cluster"
	"github.com/vsrgo/vsr/internal/latency"
	"github.com/vsrgo/vsr/internal/procstats"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
)

const benchUsage = `usage: vsr bench -replicas A0,A1,A2 [flags]
       vsr bench -config cluster.json [flags]
       vsr bench [-in-process] [-data-dir DIR] [flags]

Measures throughput and latency of a group of key-value stores with closed-loop
workers (one client, one session per worker), each putting random keys and, with
-reads, reading them linearizably. Without -replicas or -config it starts a group
of 3 replicas in this process (in memory, or durable under -data-dir).

flags:
`

// benchTarget is what the workers call: *cluster.Client and *actors.Client.
type benchTarget interface {
	Execute(ctx context.Context, op []byte) ([]byte, error)
	Read(ctx context.Context, op []byte) ([]byte, error)
}

type benchParams struct {
	clients, valueSize, keys    int
	reads                       float64
	duration, warmup, opTimeout time.Duration
}

func benchCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vsr bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	var cf clusterFlags
	cf.register(fs)
	inProcess := fs.Bool("in-process", false, "start a group of 3 replicas in this process (the default without -replicas or -config)")
	dataDir := fs.String("data-dir", "", "in-process: keep replica i's state durable under DIR/replica-<i> (default: memory)")
	bind := fs.String("bind", "127.0.0.1:0", "host:port the client listens on for replies; the replicas must reach it")
	var p benchParams
	fs.IntVar(&p.clients, "clients", 16, "closed-loop workers (sessions of one client)")
	fs.IntVar(&p.valueSize, "value-size", 16, "bytes per value written")
	fs.IntVar(&p.keys, "keys", 65536, "distinct keys, chosen uniformly")
	fs.Float64Var(&p.reads, "reads", 0, "fraction of operations that are linearizable reads (0 to 1)")
	fs.DurationVar(&p.duration, "duration", 10*time.Second, "how long to measure")
	fs.DurationVar(&p.warmup, "warmup", time.Second, "how long to run before measuring")
	fs.DurationVar(&p.opTimeout, "op-timeout", 5*time.Second, "give up on one operation after this long (counted as an error)")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of the text report, and no progress")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vsr bench: "+format+"\n", a...)
		return 2
	}
	remote := cf.config != "" || cf.replicas != ""
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case p.clients < 1:
		return bad("-clients must be at least 1, got %d", p.clients)
	case p.valueSize < 0:
		return bad("-value-size must not be negative, got %d", p.valueSize)
	case p.keys < 1:
		return bad("-keys must be at least 1, got %d", p.keys)
	case !(p.reads >= 0 && p.reads <= 1):
		return bad("-reads must be a fraction between 0 and 1, got %v", p.reads)
	case p.duration <= 0:
		return bad("-duration must be positive, got %v", p.duration)
	case p.warmup < 0:
		return bad("-warmup must not be negative, got %v", p.warmup)
	case p.opTimeout <= 0:
		return bad("-op-timeout must be positive, got %v", p.opTimeout)
	case remote && (*inProcess || *dataDir != ""):
		return bad("-in-process and -data-dir start a group here; they do not go with -replicas or -config")
	}

	var target benchTarget
	var name string
	if remote {
		cfg, err := cf.load()
		if err != nil {
			return bad("%v", err)
		}
		c, err := cluster.NewClient(cfg, cluster.ClientOptions{Bind: *bind, Sessions: p.clients})
		if err != nil {
			fmt.Fprintf(stderr, "vsr bench: %v\n", err)
			return 1
		}
		defer c.Close()
		target, name = c, strings.Join(cfg.Replicas, ",")
	} else {
		g, err := supervisor.StartGroup(supervisor.GroupConfig{ClusterID: 1, Replicas: 3, NewStateMachine: kv.New, DataDir: *dataDir})
		if err != nil {
			fmt.Fprintf(stderr, "vsr bench: starting the group: %v\n", err)
			return 1
		}
		defer g.Stop()
		c, err := g.NewClient(p.clients)
		if err != nil {
			fmt.Fprintf(stderr, "vsr bench: %v\n", err)
			return 1
		}
		defer c.Close()
		target, name = c, "in-process, 3 replicas, memory"
		if *dataDir != "" {
			name = "in-process, 3 replicas, durable in " + *dataDir
		}
	}

	var progress io.Writer
	if !*jsonOut {
		progress = stderr
	}
	rep, err := runBench(target, p, progress)
	if err != nil {
		fmt.Fprintf(stderr, "vsr bench: %v\n", err)
		return 1
	}
	rep.Target = name
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "vsr bench: %v\n", err)
			return 1
		}
		return 0
	}
	rep.print(stdout)
	return 0
}

// benchWorker is one worker's own figures, merged at the end: index 0 is
// writes, 1 reads.
type benchWorker struct {
	hist [2]latency.Hist
	errs [2]uint64
}

// benchRun is the state the workers share.
type benchRun struct {
	p        benchParams
	ops      atomic.Uint64 // operations that succeeded, warmup included
	errs     atomic.Uint64 // operations that failed, warmup included
	everOK   atomic.Bool
	failLim  uint64
	cancel   context.CancelFunc
	mu       sync.Mutex
	msgs     []string // the first distinct error messages in the window
	abortErr error
}

const benchMaxMessages = 5

// runBench runs p.clients closed-loop workers for p.warmup then p.duration
// and reports the operations that started and ended within the duration.
// It fails if nothing succeeds, early if the first failures (one per
// worker, at least 3) come before any success.
func runBench(t benchTarget, p benchParams, progress io.Writer) (*benchReport, error) {
	// The workers' histograms are allocated before the allocation count
	// starts, so that process_allocs charges the operations and not this
	// benchmark's own bookkeeping.
	workers := make([]*benchWorker, p.clients)
	for i := range workers {
		workers[i] = new(benchWorker)
	}
	allocs0, allocBytes0 := procstats.Allocs()
	start := time.Now()
	from := start.Add(p.warmup)
	end := from.Add(p.duration)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	r := &benchRun{p: p, failLim: uint64(max(p.clients, 3)), cancel: cancel}
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { r.work(ctx, t, uint64(i), w, from, end) })
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		if progress != nil {
			r.progress(progress, start, from, stop)
		}
	}()
	wg.Wait()
	allocs1, allocBytes1 := procstats.Allocs()
	peakRSS := processPeakRSS()
	close(stop)
	<-stopped

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.abortErr != nil {
		return nil, r.abortErr
	}
	var all latency.Hist
	var kinds [2]latency.Hist
	var errs [2]uint64
	for _, w := range workers {
		for k := range 2 {
			kinds[k].Merge(&w.hist[k])
			all.Merge(&w.hist[k])
			errs[k] += w.errs[k]
		}
	}
	if all.Count() == 0 {
		msg := "none"
		if len(r.msgs) > 0 {
			msg = r.msgs[0]
		}
		return nil, fmt.Errorf("no operation succeeded within the %v measured (%d errors; first: %s)", p.duration, errs[0]+errs[1], msg)
	}
	secs := p.duration.Seconds()
	rep := &benchReport{Clients: p.clients, ValueSize: p.valueSize, Keys: p.keys, ReadFraction: p.reads,
		WarmupSec: p.warmup.Seconds(), DurationSec: secs, ErrorMessages: r.msgs,
		latencyReport: makeLatencyReport(&all, errs[0]+errs[1], secs),
		TotalOps:      r.ops.Load(), ProcessAllocs: allocs1 - allocs0, ProcessAllocBytes: allocBytes1 - allocBytes0,
		ProcessPeakRSS: peakRSS}
	if p.reads > 0 && p.reads < 1 {
		w, rd := makeLatencyReport(&kinds[0], errs[0], secs), makeLatencyReport(&kinds[1], errs[1], secs)
		rep.Writes, rep.Reads = &w, &rd
	}
	return rep, nil
}

func (r *benchRun) work(ctx context.Context, t benchTarget, id uint64, w *benchWorker, from, end time.Time) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), id))
	value := make([]byte, r.p.valueSize)
	for i := range value {
		value[i] = 'a' + byte(rng.IntN(26))
	}
	for ctx.Err() == nil {
		key := "key-" + strconv.Itoa(rng.IntN(r.p.keys))
		kind := 0
		if r.p.reads > 0 && rng.Float64() < r.p.reads {
			kind = 1
		}
		opCtx, cancel := context.WithTimeout(ctx, r.p.opTimeout)
		t0 := time.Now()
		var err error
		if kind == 0 {
			_, err = t.Execute(opCtx, kv.PutOp(key, value))
		} else {
			_, err = t.Read(opCtx, kv.GetOp(key))
		}
		t1 := time.Now()
		cancel()
		if err != nil && ctx.Err() != nil {
			return // cut off by the end of the run (or an abort): not counted
		}
		inWindow := !t0.Before(from) && !t1.After(end)
		if err == nil {
			r.everOK.Store(true)
			r.ops.Add(1)
			if inWindow {
				w.hist[kind].Record(uint64(t1.Sub(t0)))
			}
			continue
		}
		r.failed(err, inWindow)
		if inWindow {
			w.errs[kind]++
		}
		// Do not spin on an error that comes back at once.
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// failed counts an error, notes its message, and aborts the run once the
// first failLim operations have failed with none succeeding.
func (r *benchRun) failed(err error, inWindow bool) {
	n := r.errs.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := err.Error()
	if inWindow && len(r.msgs) < benchMaxMessages && !slices.Contains(r.msgs, msg) {
		r.msgs = append(r.msgs, msg)
	}
	if !r.everOK.Load() && n >= r.failLim && r.abortErr == nil {
		r.abortErr = fmt.Errorf("cannot reach the group: the first %d operations failed and none succeeded (last error: %s)", n, msg)
		r.cancel()
	}
}

// processPeakRSS is this process's peak resident set in bytes, VmHWM of
// /proc/self/status, or 0 where there is no such file (not Linux). A
// parent cannot read it from the rusage of wait4 instead: on Linux a child
// started by vfork (as Go starts them) inherits its parent's high-water
// mark into ru_maxrss.
func processPeakRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
