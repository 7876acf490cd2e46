package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vsrgo/vsr/vsr"
)

const historyUsage = `usage: vsr history [flags]

Shows that what a replica keeps and sends does not grow with the length of
its history. Closed-loop clients write values to a fixed key set until -ops
writes are acknowledged; every -every ops it prints the ops/s of the last
interval, the heap in use, the largest message each replica has sent, and
each replica's commit number, log base and latest checkpoint. At each
-failover-at count it kills the primary, times the first write acknowledged
by the new primary, restarts the killed replica and times its recovery
(through a checkpoint transfer once the log has been trimmed). A summary
compares the first report with the last, and the failovers with each other.

  -mode inproc     3 replicas in this process (supervisor.StartGroup)
  -mode loopback   3 'vsr node' processes on 127.0.0.1, kill -9 of the primary
  -mode both       inproc, then loopback (the default)

-checkpoint-latency instead preloads -keys keys (default 1000000) into one
in-process group and measures write latency across several checkpoints,
once with the kv store as it is and once wrapped so that it does not
implement statemachine.Checkpointer (the checkpoint is then encoded on the
replica's goroutine).

flags:
`

type historyOptions struct {
	mode               string
	clients, value     int
	keys               int
	ops, every         int64
	failoverAt         []int64
	checkpointInterval int
	trailingOps        int
	pipelineMax        int
	latency            bool
	preload            string
	nodeBinary         string
	opTimeout          time.Duration
	stallTimeout       time.Duration
	recoverTimeout     time.Duration
	traceRecovery      bool
	rounds             int
}

func historyCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vsr history", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, historyUsage); fs.PrintDefaults() }
	var o historyOptions
	fs.StringVar(&o.mode, "mode", "both", "inproc, loopback or both")
	fs.IntVar(&o.clients, "clients", 64, "closed-loop clients (requests in flight at once)")
	fs.IntVar(&o.value, "value", 100, "bytes per value written")
	fs.IntVar(&o.keys, "keys", 10000, "size of the fixed key set (default 1000000 with -checkpoint-latency)")
	fs.Int64Var(&o.ops, "ops", 2_000_000, "acknowledged writes to run (default 6.5 checkpoint intervals with -checkpoint-latency)")
	fs.Int64Var(&o.every, "every", 100_000, "print one line every this many acknowledged writes")
	failoverAt := fs.String("failover-at", "100000,2000000", "kill the primary after these many acknowledged writes (comma-separated; empty: never)")
	fs.IntVar(&o.checkpointInterval, "checkpoint-interval", 0, "committed ops between checkpoints (0: the core's default, 16384)")
	fs.IntVar(&o.trailingOps, "trailing-ops", 0, "log entries kept below the latest checkpoint (0: default 4096; negative: none)")
	fs.IntVar(&o.pipelineMax, "pipeline-max", 0, "most uncommitted ops the primary holds (0: default 1024)")
	fs.BoolVar(&o.latency, "checkpoint-latency", false, "measure write latency across checkpoints, with and without statemachine.Checkpointer")
	fs.StringVar(&o.preload, "preload", "restore", "with -checkpoint-latency: how the keys are preloaded: restore (every replica starts from the same preloaded store) or log (written through the group)")
	fs.StringVar(&o.nodeBinary, "node-binary", "", "the vsr binary that loopback mode runs as 'vsr node' (default: this program)")
	fs.DurationVar(&o.opTimeout, "op-timeout", 10*time.Second, "deadline of one write attempt (a write that times out is sent again)")
	fs.DurationVar(&o.stallTimeout, "stall-timeout", 2*time.Minute, "give up when no write is acknowledged for this long")
	fs.DurationVar(&o.recoverTimeout, "recover-timeout", 2*time.Minute, "give up on a restarted replica that has not caught up after this long")
	fs.IntVar(&o.rounds, "rounds", 1, "with -checkpoint-latency: run the pair this many times, alternating which goes first")
	fs.BoolVar(&o.traceRecovery, "trace-recovery", false, "print every change of the restarted replica's status while it recovers")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range strings.Split(*failoverAt, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(f, "_", ""), 10, 64)
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "vsr history: bad -failover-at %q\n", f)
			return 2
		}
		o.failoverAt = append(o.failoverAt, n)
	}
	slices.Sort(o.failoverAt)
	o.failoverAt = slices.Compact(o.failoverAt)
	if o.clients < 1 || o.value < 1 || o.keys < 1 || o.every < 1 {
		fmt.Fprintln(stderr, "vsr history: -clients, -value, -keys and -every must be positive")
		return 2
	}
	if o.latency {
		if !set["keys"] {
			o.keys = 1_000_000
		}
		if !set["ops"] {
			o.ops = int64(6.5 * float64(o.interval()))
		}
		return checkpointLatency(o, stdout, stderr)
	}
	if o.ops < 1 {
		fmt.Fprintln(stderr, "vsr history: -ops must be positive")
		return 2
	}
	var modes []string
	switch o.mode {
	case "inproc", "loopback":
		modes = []string{o.mode}
	case "both":
		modes = []string{"inproc", "loopback"}
	default:
		fmt.Fprintf(stderr, "vsr history: -mode must be inproc, loopback or both, not %q\n", o.mode)
		return 2
	}
	code := 0
	for i, m := range modes {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		code = max(code, runHistory(m, o, stdout, stderr))
	}
	return code
}

func (o historyOptions) interval() int {
	if o.checkpointInterval > 0 {
		return o.checkpointInterval
	}
	return vsr.DefaultCheckpointInterval
}

// timing is the core configuration the options override.
func (o historyOptions) timing() vsr.Config {
	return vsr.Config{CheckpointInterval: o.checkpointInterval, TrailingOps: o.trailingOps, PipelineMax: o.pipelineMax}
}

// replicaFigures is what the history command reads from one replica.
type replicaFigures struct {
	Up, Normal                       bool
	View                             uint64
	Primary                          int
	Op, Commit, LogBase, Checkpoint  uint64
	Largest                          int
	Heap                             uint64
	Installed, Oversized, CPFailures uint64
	Sessions                         int
	Digest                           []byte
}

type historyWriter interface {
	Execute(ctx context.Context, op []byte) ([]byte, error)
}

// historyTarget is a group under test: in this process or in node
// processes.
type historyTarget interface {
	writer() historyWriter
	probe() historyWriter
	// figures reads every replica's status; withMemory adds the heap in use
	// (after a garbage collection), withDigest the state digest.
	// A replica that does not answer within timeout is reported down.
	figures(withMemory, withDigest bool, timeout time.Duration) []replicaFigures
	// heapPerReplica is false when all replicas share one process.
	heapPerReplica() bool
	kill(i int) error
	restart(i int) error
	stop()
}

func primaryOf(st []replicaFigures) int {
	best, view := -1, uint64(0)
	for i, s := range st {
		if s.Up && s.Normal && s.Primary == i && (best < 0 || s.View > view) {
			best, view = i, s.View
		}
	}
	return best
}
