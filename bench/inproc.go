package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
)

// runRaft puts a durable 3-replica vsr group and a durable 3-node
// hashicorp/raft cluster side by side in one process: closed-loop writers
// put 16-byte values to random keys, and each system is measured for
// throughput and for the latency of one acknowledged write. Rounds
// alternate the two systems so that machine noise falls on both.
func runRaft(args []string) int {
	fl := flag.NewFlagSet("raft", flag.ContinueOnError)
	rounds := fl.Int("rounds", 3, "rounds; each runs both systems at every client count once")
	duration := fl.Duration("duration", 5*time.Second, "measured time per system per client count per round")
	warmup := fl.Duration("warmup", time.Second, "unmeasured time before each measurement")
	clientsFlag := fl.String("clients", "1,64", "closed-loop writer counts, comma-separated")
	keys := fl.Int("keys", 65536, "distinct keys, written uniformly at random")
	storeKind := fl.String("raft-store", "boltdb", "hashicorp/raft log and stable store: boltdb (raft-boltdb/v2) or wal (raft-wal)")
	timeout := fl.Duration("raft-timeout", 100*time.Millisecond, "hashicorp/raft HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout")
	cache := fl.Int("raft-cache", 0, "if > 0, wrap raft's log store in a write-through raft.LogCache of this many entries")
	dirFlag := fl.String("dir", "", "parent of the scratch directory (default: os.TempDir(), or the working directory when that is tmpfs)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	clients, err := parseInts(*clientsFlag)
	if err != nil || *rounds < 1 || *duration <= 0 || *warmup < 0 || *keys < 1 || *timeout < 5*time.Millisecond {
		fmt.Fprintln(os.Stderr, "raft: bad -clients, -rounds, -duration, -warmup or -keys")
		return 2
	}
	if *storeKind != "boltdb" && *storeKind != "wal" {
		fmt.Fprintf(os.Stderr, "raft: unknown -raft-store %q (have boltdb, wal)\n", *storeKind)
		return 2
	}

	parent, note := scratchParent(*dirFlag)
	base, err := os.MkdirTemp(parent, "vsr-raftbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "raft:", err)
		return 1
	}
	defer os.RemoveAll(base)
	fsDesc := describeFS(base)
	fmt.Printf("scratch dir %s on %s%s\n", base, fsDesc, note)
	if strings.Contains(fsDesc, "tmpfs") || strings.Contains(fsDesc, "ramfs") {
		fmt.Println("WARNING: this file system is in memory: fsync costs nothing there, and the numbers say nothing about a disk")
	}

	raftName := "hashicorp-raft"
	storeDesc := "raft-boltdb/v2 " + depVersion("github.com/hashicorp/raft-boltdb/v2")
	fsyncDesc := "raft-boltdb fsyncs each StoreLogs commit (bolt default NoSync=false)"
	if *storeKind == "wal" {
		storeDesc = "raft-wal " + depVersion("github.com/hashicorp/raft-wal")
		fsyncDesc = "raft-wal fsyncs each StoreLogs append"
	}
	cacheDesc := "no LogCache"
	if *cache > 0 {
		cacheDesc = fmt.Sprintf("LogCache of %d entries", *cache)
	}
	fmt.Printf("vsr: 3-replica group (supervisor.StartGroup, kv state machine, defaults) in one actor system, a FileStore per replica\n")
	fmt.Printf("  fsync: vsr FileStore fsyncs every group commit before any acknowledgement leaves\n")
	fmt.Printf("%s %s: 3 nodes on InmemTransport, %s as LogStore and StableStore (%s), FileSnapshotStore;\n",
		raftName, depVersion("github.com/hashicorp/raft"), storeDesc, cacheDesc)
	fmt.Printf("  MaxAppendEntries 64, BatchApplyCh, heartbeat/election/leader-lease timeouts %v, snapshots at defaults (threshold 8192, checked every 120-240s)\n", *timeout)
	fmt.Printf("  fsync: %s\n", fsyncDesc)
	fmt.Printf("workload: closed-loop writers, each one put outstanding, 16-byte values to %d keys; clients %v\n", *keys, clients)
	fmt.Printf("latency: the writer's call to its acknowledgement (vsr: Client.Execute returns; raft: Apply().Error() returns on the leader)\n")
	fmt.Printf("%d rounds alternating vsr and raft, %v measured per system and client count after %v warm-up; GOMAXPROCS %d\n\n",
		*rounds, *duration, *warmup, runtime.GOMAXPROCS(0))

	keyNames := make([]string, *keys)
	for i := range keyNames {
		keyNames[i] = "k" + strconv.Itoa(i)
	}
	systems := []sysDef{
		{"vsr", startVSR},
		{raftName, func(dir string, c int) (*sut, error) { return startRaft(dir, *storeKind, *cache, *timeout) }},
	}
	type key struct {
		sys     string
		clients int
	}
	results := map[key][]runResult{}
	for r := range *rounds {
		for _, c := range clients {
			for i := range systems {
				def := systems[(i+r)%len(systems)] // alternate who goes first
				dir := filepath.Join(base, fmt.Sprintf("%s-c%d-r%d", def.name, c, r))
				res, err := measureSystem(def, dir, c, keyNames, *warmup, *duration, uint64(r))
				if err != nil {
					fmt.Fprintf(os.Stderr, "raft: %s, %d clients: %v\n", def.name, c, err)
					return 1
				}
				k := key{def.name, c}
				results[k] = append(results[k], res)
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, *rounds)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tsystem\tops/s\tp50\tp99\tround ops/s\tround spread\terrors\telections\tsnapshots\t")
	med := map[key]runResult{}
	for _, c := range clients {
		for _, def := range systems {
			rs := results[key{def.name, c}]
			m := medianResult(rs)
			med[key{def.name, c}] = m
			var per []string
			errs, elections, snaps := 0, uint64(0), int64(0)
			for _, r := range rs {
				per = append(per, fmt.Sprintf("%.0f", r.opsPerSec))
				errs += r.errors
				elections += r.elections
				snaps += r.snapshots
			}
			snapStr := "-"
			if def.name != "vsr" {
				snapStr = strconv.FormatInt(snaps, 10)
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n", c, def.name, m.opsPerSec,
				fmtDur(m.p50), fmtDur(m.p99), strings.Join(per, " "), spreadOf(rs), errs, elections, snapStr)
		}
	}
	tw.Flush()
	fmt.Println("(ops/s, p50 and p99 are medians over rounds; elections: view changes (vsr) or term changes (raft) inside the measured windows, all rounds; snapshots: raft FSM snapshots persisted, all nodes and rounds)")
	hi, lo := slices.Max(clients), slices.Min(clients)
	fmt.Printf("\ndurable throughput ratio vsr/hashicorp-raft (in-process, %s): %.2f\n", plural(hi, "client"),
		med[key{"vsr", hi}].opsPerSec/med[key{raftName, hi}].opsPerSec)
	fmt.Printf("durable p99 ratio vsr/hashicorp-raft (in-process, %s): %.2f\n", plural(lo, "client"),
		float64(med[key{"vsr", lo}].p99)/float64(med[key{raftName, lo}].p99))
	return 0
}

// sut is a started system under test.
type sut struct {
	// encode builds the operation for a put, outside the timed call.
	encode func(key string, value []byte) []byte
	// do submits one operation and returns when it is acknowledged.
	do func(ctx context.Context, op []byte) error
	// elections counts view or term changes so far; snapshots, raft's
	// persisted snapshots so far (0 for vsr).
	elections func() uint64
	snapshots func() int64
	stop      func() error
}

type sysDef struct {
	name  string
	start func(dir string, clients int) (*sut, error)
}

func startVSR(dir string, clients int) (*sut, error) {
	var view atomic.Uint64
	g, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID: 1, Replicas: 3, NewStateMachine: kv.New, DataDir: dir,
		OnEvent: func(e actors.Event) {
			for v := view.Load(); e.View > v && !view.CompareAndSwap(v, e.View); v = view.Load() {
			}
		},
	})
	if err != nil {
		return nil, err
	}
	// One client with a session per writer: a session has one request in
	// flight, and a call waits for a free session.
	cl, err := g.NewClient(clients)
	if err != nil {
		g.Stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Execute(ctx, kv.PutOp("k0", make([]byte, 16))); err != nil {
		cl.Close()
		g.Stop()
		return nil, fmt.Errorf("first write: %w", err)
	}
	return &sut{
		encode: kv.PutOp,
		do: func(ctx context.Context, op []byte) error {
			_, err := cl.Execute(ctx, op)
			return err
		},
		elections: view.Load,
		snapshots: func() int64 { return 0 },
		stop: func() error {
			cl.Close()
			g.Stop()
			return nil
		},
	}, nil
}

// runResult is one measured window of one system at one client count.
type runResult struct {
	opsPerSec float64
	p50, p99  time.Duration
	errors    int
	elections uint64
	snapshots int64
}

// measureSystem starts def on a new dir, runs clients closed-loop writers
// for warmup and then d, and counts the calls acknowledged within d.
func measureSystem(def sysDef, dir string, clients int, keys []string, warmup, d time.Duration, seed uint64) (runResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return runResult{}, err
	}
	defer os.RemoveAll(dir)
	runtime.GC()
	s, err := def.start(dir, clients)
	if err != nil {
		return runResult{}, fmt.Errorf("start: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	begin := time.Now().Add(warmup)
	end := begin.Add(d)
	lats := make([][]time.Duration, clients)
	errCounts := make([]int, clients)
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			value := make([]byte, 16)
			mine := make([]time.Duration, 0, 1<<14)
			for {
				select {
				case <-stop:
					lats[w] = mine
					return
				default:
				}
				k := keys[rng.IntN(len(keys))]
				for j := 0; j < 16; j += 8 {
					v := rng.Uint64()
					for b := range 8 {
						value[j+b] = byte(v >> (8 * b))
					}
				}
				op := s.encode(k, value)
				t0 := time.Now()
				err := s.do(ctx, op)
				t1 := time.Now()
				if err != nil {
					if ctx.Err() != nil {
						continue // stopping
					}
					errCounts[w]++
					firstErr.CompareAndSwap(nil, &err)
					time.Sleep(10 * time.Millisecond) // e.g. no leader yet
					continue
				}
				if !t1.Before(begin) && t1.Before(end) {
					mine = append(mine, t1.Sub(t0))
				}
			}
		})
	}
	time.Sleep(time.Until(begin))
	e0, s0 := s.elections(), s.snapshots()
	time.Sleep(time.Until(end))
	e1, s1 := s.elections(), s.snapshots()
	close(stop)
	cancel()
	wg.Wait()
	stopErr := s.stop()

	all := slices.Concat(lats...)
	slices.Sort(all)
	res := runResult{
		opsPerSec: float64(len(all)) / d.Seconds(),
		p50:       pct(all, 0.50),
		p99:       pct(all, 0.99),
		elections: e1 - e0,
		snapshots: s1 - s0,
	}
	for _, n := range errCounts {
		res.errors += n
	}
	if len(all) == 0 {
		if p := firstErr.Load(); p != nil {
			return res, fmt.Errorf("no write acknowledged: %w", *p)
		}
		return res, fmt.Errorf("no write acknowledged")
	}
	if stopErr != nil {
		return res, fmt.Errorf("stop: %w", stopErr)
	}
	return res, nil
}

// pct is the nearest-rank percentile of sorted latencies.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// medianResult takes the median of each figure over rounds separately.
func medianResult(rs []runResult) runResult {
	var ops []float64
	var p50s, p99s []time.Duration
	for _, r := range rs {
		ops = append(ops, r.opsPerSec)
		p50s = append(p50s, r.p50)
		p99s = append(p99s, r.p99)
	}
	return runResult{opsPerSec: median(ops), p50: median(p50s), p99: median(p99s)}
}

func median[T float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spreadOf is (max-min)/mean of the rounds' throughput.
func spreadOf(rs []runResult) string {
	if len(rs) < 2 {
		return "-"
	}
	var v []float64
	var sum float64
	for _, r := range rs {
		v = append(v, r.opsPerSec)
		sum += r.opsPerSec
	}
	return fmt.Sprintf("%.0f%%", 100*(slices.Max(v)-slices.Min(v))/(sum/float64(len(v))))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// depVersion is the version of module path this binary was built with.
func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				return m.Version
			}
		}
	}
	return "(unknown version)"
}
