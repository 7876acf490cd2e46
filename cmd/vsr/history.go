package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/cluster"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
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

// ---- in-process group ----

type inprocTarget struct {
	g    *supervisor.Group
	c, p *actors.Client
}

func startInproc(o historyOptions, factory statemachine.Factory) (*inprocTarget, error) {
	g, err := supervisor.StartGroup(supervisor.GroupConfig{ClusterID: 1, Replicas: 3, NewStateMachine: factory, Timing: o.timing()})
	if err != nil {
		return nil, err
	}
	t := &inprocTarget{g: g}
	if t.c, err = g.NewClient(o.clients); err == nil {
		t.p, err = g.NewClient(1)
	}
	if err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

func (t *inprocTarget) writer() historyWriter { return t.c }
func (t *inprocTarget) probe() historyWriter  { return t.p }
func (t *inprocTarget) heapPerReplica() bool  { return false }
func (t *inprocTarget) kill(i int) error      { return t.g.Kill(i) }
func (t *inprocTarget) restart(i int) error   { return t.g.Restart(i) }

func (t *inprocTarget) figures(withMemory, withDigest bool, timeout time.Duration) []replicaFigures {
	var heap uint64
	if withMemory {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapInuse
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var st []supervisor.ReplicaStatus
	if withDigest {
		st = t.g.Status(ctx)
	} else {
		st = t.g.StatusWithoutDigest(ctx)
	}
	out := make([]replicaFigures, len(st))
	for i, s := range st {
		if s.Down {
			continue
		}
		out[i] = replicaFigures{Up: true, Normal: s.Status == vsr.StatusNormal, View: s.View, Primary: s.Primary,
			Op: s.OpNumber, Commit: s.CommitNumber, LogBase: s.LogBase, Checkpoint: s.CheckpointOpNumber,
			Largest: s.LargestMessage, Heap: heap, Installed: s.CheckpointsInstalled, Oversized: s.Oversized,
			CPFailures: s.CheckpointFailures, Sessions: s.Sessions}
		if withDigest {
			out[i].Digest = append([]byte(nil), s.Digest[:]...)
		}
	}
	return out
}

func (t *inprocTarget) stop() {
	if t.c != nil {
		t.c.Close()
	}
	if t.p != nil {
		t.p.Close()
	}
	t.g.Stop()
}

// ---- node processes on loopback ----

type loopbackTarget struct {
	bin   string
	addrs []string
	root  string
	extra []string
	mu    sync.Mutex
	procs []*exec.Cmd
	outs  []*historyBuffer
	marks []int // each node's output length at its latest start
	c, p  *cluster.Client
	sig   chan os.Signal
}

// historyBuffer keeps a node's output for when something goes wrong.
type historyBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *historyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *historyBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startLoopback(o historyOptions) (*loopbackTarget, error) {
	bin := o.nodeBinary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	root, err := os.MkdirTemp("", "vsr-history-")
	if err != nil {
		return nil, err
	}
	t := &loopbackTarget{bin: bin, root: root, procs: make([]*exec.Cmd, 3), outs: make([]*historyBuffer, 3), marks: make([]int, 3)}
	// A Ctrl-C must not leave the nodes running.
	t.sig = make(chan os.Signal, 1)
	signal.Notify(t.sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		if _, ok := <-t.sig; ok {
			t.stop()
			os.Exit(130)
		}
	}()
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.stop()
			return nil, err
		}
		t.addrs = append(t.addrs, l.Addr().String())
		_ = l.Close()
	}
	if o.checkpointInterval != 0 {
		t.extra = append(t.extra, "-checkpoint-interval", fmt.Sprint(o.checkpointInterval))
	}
	if o.trailingOps != 0 {
		t.extra = append(t.extra, "-trailing-ops", fmt.Sprint(o.trailingOps))
	}
	if o.pipelineMax != 0 {
		t.extra = append(t.extra, "-pipeline-max", fmt.Sprint(o.pipelineMax))
	}
	for i := range 3 {
		if err := t.restart(i); err != nil {
			t.stop()
			return nil, err
		}
	}
	cfg := cluster.Config{ClusterID: 1, Replicas: t.addrs}
	if t.c, err = cluster.NewClient(cfg, cluster.ClientOptions{Sessions: o.clients}); err == nil {
		t.p, err = cluster.NewClient(cfg, cluster.ClientOptions{Sessions: 1})
	}
	if err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

func (t *loopbackTarget) writer() historyWriter { return t.c }
func (t *loopbackTarget) probe() historyWriter  { return t.p }
func (t *loopbackTarget) heapPerReplica() bool  { return true }

// restart starts node i, the first time or again on the same address and
// data directory, where its marker file makes it recover.
func (t *loopbackTarget) restart(i int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	args := append([]string{"node", "-replicas", strings.Join(t.addrs, ","), "-index", fmt.Sprint(i),
		"-data-dir", filepath.Join(t.root, fmt.Sprint(i))}, t.extra...)
	cmd := exec.Command(t.bin, args...)
	if t.outs[i] == nil {
		t.outs[i] = &historyBuffer{}
	}
	cmd.Stdout, cmd.Stderr = t.outs[i], t.outs[i]
	t.marks[i] = len(t.outs[i].String())
	if err := cmd.Start(); err != nil {
		return err
	}
	t.procs[i] = cmd
	return nil
}

// kill kills node i with SIGKILL, as a crash would, and reaps it.
func (t *loopbackTarget) kill(i int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	cmd := t.procs[i]
	if cmd == nil {
		return fmt.Errorf("node %d is not running", i)
	}
	t.procs[i] = nil
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_ = cmd.Wait()
	return nil
}

func (t *loopbackTarget) figures(withMemory, withDigest bool, timeout time.Duration) []replicaFigures {
	var st []*actors.StatusReply
	switch {
	case withDigest:
		st = t.c.Status(timeout)
	case withMemory:
		st = t.c.StatusWithMemory(timeout)
	default:
		st = t.c.StatusWithoutDigest(timeout)
	}
	out := make([]replicaFigures, len(st))
	for i, s := range st {
		if s == nil {
			continue
		}
		out[i] = replicaFigures{Up: true, Normal: s.Status == vsr.StatusNormal.String(), View: s.View, Primary: int(s.Primary),
			Op: s.OpNumber, Commit: s.CommitNumber, LogBase: s.LogBase, Checkpoint: s.CheckpointOpNumber,
			Largest: int(s.LargestMessage), Heap: s.HeapInUse, Installed: s.CheckpointsInstalled, Oversized: s.Oversized,
			CPFailures: s.CheckpointFailures, Sessions: int(s.Sessions), Digest: s.Digest}
	}
	return out
}

func (t *loopbackTarget) stop() {
	if t.c != nil {
		t.c.Close()
	}
	if t.p != nil {
		t.p.Close()
	}
	for i := range t.procs {
		_ = t.kill(i)
	}
	if t.sig != nil {
		signal.Stop(t.sig)
		close(t.sig)
		t.sig = nil
	}
	_ = os.RemoveAll(t.root)
}

// timeline is what node i has printed since its latest start, on its own
// clock (seconds since its main began), one event per line.
func (t *loopbackTarget) timeline(i int) string {
	t.mu.Lock()
	from := t.marks[i]
	t.mu.Unlock()
	var parts []string
	for _, line := range strings.Split(t.outs[i].String()[from:], "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			parts = append(parts, fmt.Sprintf("%s %s", f[0], strings.Join(f[1:], " ")))
		}
	}
	return strings.Join(parts, "; ")
}

// nodeOutput is the tail of every node's output, for an error report.
func (t *loopbackTarget) nodeOutput() string {
	var b strings.Builder
	for i, o := range t.outs {
		if o == nil {
			continue
		}
		s := o.String()
		if len(s) > 2000 {
			s = "..." + s[len(s)-2000:]
		}
		fmt.Fprintf(&b, "--- node %d ---\n%s", i, s)
	}
	return b.String()
}

// ---- the closed-loop load ----

type mark struct {
	n  int64
	at time.Time
}

type historyLoad struct {
	cl         historyWriter
	keys       []string
	value      int
	opTimeout  time.Duration
	counting   atomic.Bool
	counted    atomic.Int64
	uncounted  atomic.Int64
	retries    atomic.Int64
	rejected   atomic.Int64
	killedAt   atomic.Int64 // UnixNano of a kill, 0 if none pending
	firstAfter atomic.Int64 // UnixNano of the first load write sent after it and acknowledged
	isMark     func(int64) bool
	marks      chan mark
	lat        [][]time.Duration // per client, when recording
	acks       [][]time.Time     // per client, when recording
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func historyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%08d", i)
	}
	return keys
}

// start runs clients closed-loop writers: each sends one write, waits for
// its answer (resending it after an error), and sends the next.
func (l *historyLoad) start(clients int, record bool) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.counting.Store(true)
	if record {
		l.lat = make([][]time.Duration, clients)
		l.acks = make([][]time.Time, clients)
	}
	for k := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(k), uint64(time.Now().UnixNano())))
			val := bytes.Repeat([]byte{'v'}, l.value)
			for seq := uint64(0); ctx.Err() == nil; seq++ {
				binary.BigEndian.PutUint64(val[:min(8, len(val))], seq<<8|uint64(k&0xff))
				op := kv.PutOp(l.keys[rng.IntN(len(l.keys))], val)
				sent := time.Now()
				ok := false
				for ctx.Err() == nil {
					c, cancel := context.WithTimeout(ctx, l.opTimeout)
					_, err := l.cl.Execute(c, op)
					cancel()
					if err == nil {
						ok = true
						break
					}
					if errors.Is(err, actors.ErrRejected) || errors.Is(err, actors.ErrClosed) {
						l.rejected.Add(1)
						break
					}
					if ctx.Err() == nil {
						l.retries.Add(1)
					}
				}
				if !ok {
					continue
				}
				now := time.Now()
				if at := l.killedAt.Load(); at != 0 && sent.UnixNano() > at {
					l.firstAfter.CompareAndSwap(0, now.UnixNano())
				}
				if !l.counting.Load() {
					l.uncounted.Add(1)
					continue
				}
				n := l.counted.Add(1)
				if record {
					l.lat[k] = append(l.lat[k], now.Sub(sent))
					l.acks[k] = append(l.acks[k], now)
				}
				if l.isMark != nil && l.isMark(n) {
					l.marks <- mark{n: n, at: now}
				}
			}
		}()
	}
}

func (l *historyLoad) stop() {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
}

// ---- the history run ----

type historyRow struct {
	ops        int64
	rate       float64
	st         []replicaFigures
	afterKills int // failovers before this row
}

type failoverResult struct {
	at                       int64
	killed, newPrimary       int
	failover, firstLoadWrite time.Duration
	viewChange               time.Duration // until a status poll saw the new primary
	reachable                time.Duration // restart until the restarted replica first answered a status
	recovery                 time.Duration
	recovered                bool
	installed                uint64
	st                       replicaFigures
	probeErr                 error
	timeline                 string   // the restarted node's own events (loopback)
	trace                    []string // with -trace-recovery
}

func runHistory(mode string, o historyOptions, stdout, stderr io.Writer) int {
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	var t historyTarget
	var err error
	started := time.Now()
	switch mode {
	case "inproc":
		var it *inprocTarget
		it, err = startInproc(o, kv.New)
		t = it
	case "loopback":
		var lt *loopbackTarget
		lt, err = startLoopback(o)
		t = lt
	}
	if err != nil {
		fmt.Fprintf(stderr, "vsr history: %s: %v\n", mode, err)
		return 1
	}
	defer t.stop()
	fail := func(format string, a ...any) int {
		say("%s: FAILED: %s", mode, fmt.Sprintf(format, a...))
		if lt, ok := t.(*loopbackTarget); ok {
			fmt.Fprint(stderr, lt.nodeOutput())
		}
		return 1
	}
	if waitPrimary(t, 20*time.Second, -1) < 0 {
		return fail("no primary within 20s of starting")
	}
	// The probe client registers its session now, so that the write it
	// sends after a kill is one request, as the load's are.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err = t.probe().Execute(ctx, kv.PutOp("history-failover-probe", []byte("0")))
	cancel()
	if err != nil {
		return fail("the first write: %v", err)
	}
	where := map[string]string{"inproc": "3 replicas in this process", "loopback": "3 'vsr node' processes on 127.0.0.1"}[mode]
	say("%s: %s; %d clients write %d-byte values to %d keys until %d writes are acknowledged", mode, where, o.clients, o.value, o.keys, o.ops)
	say("%s: checkpoint every %d ops, trailing ops %s, pipeline max %s, max message %d KiB; kill the primary at %v",
		mode, o.interval(), orDefault(o.trailingOps, vsr.DefaultTrailingOps), orDefault(o.pipelineMax, vsr.DefaultPipelineMax),
		vsr.DefaultMaxMessageBytes>>10, o.failoverAt)

	failovers := map[int64]bool{}
	for _, f := range o.failoverAt {
		if f <= o.ops {
			failovers[f] = true
		}
	}
	isMark := func(n int64) bool { return n <= o.ops && (n%o.every == 0 || n == o.ops || failovers[n]) }
	marks := int(o.ops/o.every) + len(failovers) + 2
	l := &historyLoad{cl: t.writer(), keys: historyKeys(o.keys), value: o.value, opTimeout: o.opTimeout,
		isMark: isMark, marks: make(chan mark, marks)}
	l.start(o.clients, false)
	defer l.stop()

	heapCols := 1
	if t.heapPerReplica() {
		heapCols = 3
	}
	header := formatHeader(mode, heapCols)
	say("%s", header)
	var rows []historyRow
	var fos []failoverResult
	baseN, baseT := int64(0), time.Now()
	for {
		var m mark
		select {
		case m = <-l.marks:
		case <-time.After(o.stallTimeout):
			return fail("no progress for %s at %d acknowledged writes (%d retries); status: %s",
				o.stallTimeout, l.counted.Load(), l.retries.Load(), describeFigures(t.figures(false, false, 2*time.Second)))
		}
		if m.n%o.every == 0 || m.n == o.ops {
			rate := float64(m.n-baseN) / m.at.Sub(baseT).Seconds()
			st := t.figures(true, false, 5*time.Second)
			row := historyRow{ops: m.n, rate: rate, st: st, afterKills: len(fos)}
			rows = append(rows, row)
			say("%s", formatRow(mode, row, heapCols))
			baseN, baseT = l.counted.Load(), time.Now()
		}
		if failovers[m.n] {
			fo, err := failover(t, l, m.n, o)
			if err != nil {
				return fail("failover at %d: %v", m.n, err)
			}
			fos = append(fos, fo)
			say("%s", formatFailover(mode, fo))
			if !fo.recovered {
				return fail("replica %d did not catch up within %s of its restart: %s", fo.killed, o.recoverTimeout,
					describeFigures(t.figures(false, false, 2*time.Second)))
			}
			if m.n < o.ops {
				say("%s", header)
			}
			baseN, baseT = l.counted.Load(), time.Now()
		}
		if m.n >= o.ops {
			break
		}
	}
	l.stop()
	say("%s: %d writes acknowledged and counted in %s, %d more during failovers; %d resent after an error, %d refused",
		mode, l.counted.Load(), time.Since(started).Round(time.Second), l.uncounted.Load(), l.retries.Load(), l.rejected.Load())
	final, converged := converge(t, 30*time.Second)
	for i, s := range final {
		say("%s: replica %d: %s view %d commit %d log base %d checkpoint %d sessions %d largest msg %d B checkpoints installed %d oversized %d checkpoint failures %d state %x",
			mode, i, statusWord(s), s.View, s.Commit, s.LogBase, s.Checkpoint, s.Sessions, s.Largest, s.Installed, s.Oversized, s.CPFailures, first6(s.Digest))
	}
	if converged {
		say("%s: the 3 replicas converged: same commit number and the same state digest", mode)
	} else {
		say("%s: the replicas DID NOT CONVERGE within 30s", mode)
	}
	printHistorySummary(say, mode, rows, fos, heapCols)
	if !converged {
		return 1
	}
	return 0
}

func orDefault(v, def int) string {
	if v == 0 {
		return fmt.Sprint(def)
	}
	return fmt.Sprint(v)
}

func statusWord(s replicaFigures) string {
	switch {
	case !s.Up:
		return "down"
	case s.Normal:
		return "normal"
	}
	return "not-normal"
}

func first6(b []byte) []byte {
	if len(b) > 6 {
		return b[:6]
	}
	return b
}

func kib(b int) float64    { return float64(b) / 1024 }
func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func describeFigures(st []replicaFigures) string {
	var parts []string
	for i, s := range st {
		parts = append(parts, fmt.Sprintf("r%d %s view %d primary %d op %d commit %d", i, statusWord(s), s.View, s.Primary, s.Op, s.Commit))
	}
	return strings.Join(parts, "; ")
}

// The columns of a report line: the cells of each group are joined by a
// space, and a header names each group over its cells.
func rowGroups(r historyRow, heapCols int) []string {
	var heap, largest, commit, base, cp []string
	for i, s := range r.st {
		if i < heapCols {
			heap = append(heap, cell(s.Up, fmt.Sprintf("%7.1f", mib(s.Heap))))
		}
		largest = append(largest, cell(s.Up, fmt.Sprintf("%8d", s.Largest)))
		commit = append(commit, cell(s.Up, fmt.Sprintf("%8d", s.Commit)))
		base = append(base, cell(s.Up, fmt.Sprintf("%8d", s.LogBase)))
		cp = append(cp, cell(s.Up, fmt.Sprintf("%8d", s.Checkpoint)))
	}
	return []string{fmt.Sprintf("%9d %8.0f", r.ops, r.rate), strings.Join(heap, " "), strings.Join(largest, " "),
		strings.Join(commit, " "), strings.Join(base, " "), strings.Join(cp, " ")}
}

var rowTitles = []string{"", "heap MiB", "largest msg B", "commit", "log base", "checkpoint"}

func formatRow(mode string, r historyRow, heapCols int) string {
	return mode + ": " + strings.Join(rowGroups(r, heapCols), " | ")
}

func formatHeader(mode string, heapCols int) string {
	st := make([]replicaFigures, 3)
	for i := range st {
		st[i].Up = true
	}
	groups := rowGroups(historyRow{st: st}, heapCols)
	titles := []string{fmt.Sprintf("%9s %8s", "ops", "ops/s")}
	for i, g := range groups[1:] {
		titles = append(titles, fmt.Sprintf("%*s", len(g), rowTitles[i+1]))
	}
	return mode + ": " + strings.Join(titles, " | ")
}

func cell(up bool, s string) string {
	if up {
		return s
	}
	return fmt.Sprintf("%*s", len(s), "-")
}

// waitPrimary waits until some replica other than not is the normal primary.
func waitPrimary(t historyTarget, within time.Duration, not int) int {
	deadline := time.Now().Add(within)
	for {
		if p := primaryOf(t.figures(false, false, 2*time.Second)); p >= 0 && p != not {
			return p
		}
		if time.Now().After(deadline) {
			return -1
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failover stops counting the load's writes, kills the primary, times the
// first write acknowledged after the kill (a probe sent at once, retried by
// its client until the new primary answers), restarts the killed replica and
// waits until it is normal with a commit number that has caught up with the
// primary's, then counts the load again. The load keeps running throughout.
func failover(t historyTarget, l *historyLoad, at int64, o historyOptions) (failoverResult, error) {
	l.counting.Store(false)
	defer l.counting.Store(true)
	fo := failoverResult{at: at}
	p := waitPrimary(t, 10*time.Second, -1)
	if p < 0 {
		return fo, errors.New("no primary to kill")
	}
	fo.killed = p
	if err := t.kill(p); err != nil {
		return fo, err
	}
	killed := time.Now()
	l.firstAfter.Store(0)
	l.killedAt.Store(killed.UnixNano())
	// Meanwhile, poll for the new primary: when the view change is done,
	// as the replicas report it.
	viewChange := make(chan time.Duration, 1)
	go func() {
		for time.Since(killed) < time.Minute {
			if q := primaryOf(t.figures(false, false, 25*time.Millisecond)); q >= 0 && q != p {
				viewChange <- time.Since(killed)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		viewChange <- 0
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err := t.probe().Execute(ctx, kv.PutOp("history-failover-probe", []byte(fmt.Sprint(at))))
	cancel()
	fo.failover = time.Since(killed)
	if err != nil {
		fo.probeErr = err
		return fo, fmt.Errorf("the probe write after the kill failed after %s: %w", fo.failover, err)
	}
	if fa := l.firstAfter.Load(); fa != 0 {
		fo.firstLoadWrite = time.Duration(fa - killed.UnixNano())
	}
	l.killedAt.Store(0)
	fo.viewChange = <-viewChange
	fo.newPrimary = waitPrimary(t, 10*time.Second, p)

	if err := t.restart(p); err != nil {
		return fo, err
	}
	restarted := time.Now()
	deadline := restarted.Add(o.recoverTimeout)
	var primaryCommit uint64
	var last string
	for time.Now().Before(deadline) {
		st := t.figures(false, false, 2*time.Second)
		s := st[p]
		if s.Up && fo.reachable == 0 {
			fo.reachable = time.Since(restarted)
		}
		if o.traceRecovery {
			mine := fmt.Sprintf("r%d %s op %d commit %d log base %d checkpoint %d installed %d",
				p, statusWord(s), s.Op, s.Commit, s.LogBase, s.Checkpoint, s.Installed)
			if mine != last {
				last = mine
				if q := primaryOf(st); q >= 0 {
					mine += fmt.Sprintf(" | primary r%d commit %d checkpoint %d", q, st[q].Commit, st[q].Checkpoint)
				}
				fo.trace = append(fo.trace, fmt.Sprintf("+%s %s", time.Since(restarted).Round(time.Millisecond), mine))
			}
		}
		if s.Up && s.Normal && primaryCommit > 0 && s.Commit >= primaryCommit {
			fo.recovery, fo.recovered, fo.installed, fo.st = time.Since(restarted), true, s.Installed, s
			if lt, ok := t.(*loopbackTarget); ok {
				fo.timeline = lt.timeline(p)
			}
			return fo, nil
		}
		if q := primaryOf(st); q >= 0 && q != p {
			primaryCommit = st[q].Commit
		}
		time.Sleep(20 * time.Millisecond)
	}
	fo.recovery = time.Since(restarted)
	return fo, nil
}

func formatFailover(mode string, fo failoverResult) string {
	load := "no load write sent after the kill was acknowledged before the probe"
	if fo.firstLoadWrite > 0 {
		load = fmt.Sprintf("the first load write sent after the kill: %s", fo.firstLoadWrite.Round(time.Millisecond))
	}
	s := fmt.Sprintf("%s: failover at %d: killed primary r%d; first write acknowledged %s after the kill (new primary r%d, seen normal by a status poll at %s; %s)\n",
		mode, fo.at, fo.killed, fo.failover.Round(time.Millisecond), fo.newPrimary, fo.viewChange.Round(time.Millisecond), load)
	if !fo.recovered {
		return s + fmt.Sprintf("%s: restarted r%d: NOT caught up after %s", mode, fo.killed, fo.recovery.Round(time.Millisecond))
	}
	how := "recovered from the log alone (checkpoints_installed = 0)"
	if fo.installed > 0 {
		how = fmt.Sprintf("recovered through chunked checkpoint transfer (checkpoints_installed = %d)", fo.installed)
	}
	s += fmt.Sprintf("%s: restarted r%d: normal and caught up %s after its restart (it first answered a status poll at %s), commit %d, log base %d, checkpoint %d; %s",
		mode, fo.killed, fo.recovery.Round(time.Millisecond), fo.reachable.Round(time.Millisecond), fo.st.Commit, fo.st.LogBase, fo.st.Checkpoint, how)
	for _, line := range fo.trace {
		s += fmt.Sprintf("\n%s: recovery trace: %s", mode, line)
	}
	if fo.timeline != "" {
		s += fmt.Sprintf("\n%s: restarted node's own log: %s", mode, fo.timeline)
	}
	return s
}

// converge waits, with the load stopped, for every replica to be normal in
// one view with one commit number, then compares their state digests.
func converge(t historyTarget, within time.Duration) ([]replicaFigures, bool) {
	deadline := time.Now().Add(within)
	for {
		st := t.figures(false, false, 2*time.Second)
		same := true
		for _, s := range st {
			same = same && s.Up && s.Normal && s.View == st[0].View && s.Commit == st[0].Commit
		}
		if same {
			st = t.figures(false, true, 5*time.Second)
			for _, s := range st {
				same = same && s.Up && s.Commit == st[0].Commit && len(s.Digest) > 0 && bytes.Equal(s.Digest, st[0].Digest)
			}
			if same || time.Now().After(deadline) {
				return st, same
			}
		}
		if time.Now().After(deadline) {
			return st, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ratio(a, b float64) string {
	if a <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", b/a)
}

func printHistorySummary(say func(string, ...any), mode string, rows []historyRow, fos []failoverResult, heapCols int) {
	if len(rows) == 0 {
		return
	}
	first, last := rows[0], rows[len(rows)-1]
	say("%s: summary: %-34s %14s %14s %8s", mode, "", fmt.Sprintf("at %d", first.ops), fmt.Sprintf("at %d", last.ops), "ratio")
	for i := 0; i < heapCols; i++ {
		name := "heap in use (process)"
		if heapCols > 1 {
			name = fmt.Sprintf("heap in use r%d", i)
		}
		a, b := first.st[i].Heap, last.st[i].Heap
		say("%s: summary: %-34s %10.1f MiB %10.1f MiB %8s", mode, name, mib(a), mib(b), ratio(float64(a), float64(b)))
	}
	for i := range first.st {
		a, b := first.st[i].Largest, last.st[i].Largest
		say("%s: summary: %-34s %12d B %12d B %8s", mode, fmt.Sprintf("largest message sent r%d", i), a, b, ratio(float64(a), float64(b)))
	}
	maxOf := func(r historyRow, f func(replicaFigures) float64) (m float64) {
		for _, s := range r.st {
			m = max(m, f(s))
		}
		return m
	}
	heapOf := func(s replicaFigures) float64 { return float64(s.Heap) }
	largestOf := func(s replicaFigures) float64 { return float64(s.Largest) }
	windowOf := func(s replicaFigures) float64 { return float64(s.Commit - min(s.Commit, s.LogBase)) }
	if heapCols > 1 {
		a, b := maxOf(first, heapOf), maxOf(last, heapOf)
		say("%s: summary: %-34s %10.1f MiB %10.1f MiB %8s", mode, "heap in use, largest replica", a/(1<<20), b/(1<<20), ratio(a, b))
	}
	a, b := maxOf(first, largestOf), maxOf(last, largestOf)
	say("%s: summary: %-34s %12.0f B %12.0f B %8s   (bound: MaxMessageBytes %d B)", mode, "largest message, any replica", a, b, ratio(a, b), vsr.DefaultMaxMessageBytes)
	// A checkpoint transfer sends chunks of nearly MaxMessageBytes; compare
	// like with like from the first report after the first one.
	for _, r := range rows[1:] {
		if r.afterKills > 0 {
			a := maxOf(r, largestOf)
			say("%s: summary: %-34s %12.0f B %12.0f B %8s   (from the first report after a failover, at %d)", mode,
				"largest message since a transfer", a, b, ratio(a, b), r.ops)
			break
		}
	}
	a, b = maxOf(first, windowOf), maxOf(last, windowOf)
	say("%s: summary: %-34s %14.0f %14.0f %8s   (bound: about TrailingOps + CheckpointInterval + PipelineMax)", mode,
		"log window (commit - log base), max", a, b, ratio(a, b))
	if len(fos) == 0 {
		return
	}
	var at, fail, rec, inst []string
	for _, fo := range fos {
		at = append(at, fmt.Sprintf("%14s", fmt.Sprintf("at %d", fo.at)))
		fail = append(fail, fmt.Sprintf("%14s", fo.failover.Round(time.Millisecond)))
		rec = append(rec, fmt.Sprintf("%14s", fo.recovery.Round(time.Millisecond)))
		inst = append(inst, fmt.Sprintf("%14d", fo.installed))
	}
	r1, r2 := "", ""
	if len(fos) > 1 {
		a, b := fos[0], fos[len(fos)-1]
		r1 = fmt.Sprintf(" %8s", ratio(a.failover.Seconds(), b.failover.Seconds()))
		r2 = fmt.Sprintf(" %8s", ratio(a.recovery.Seconds(), b.recovery.Seconds()))
	}
	say("%s: summary: %-34s %s %8s", mode, "failover", strings.Join(at, " "), map[bool]string{true: "ratio"}[len(fos) > 1])
	say("%s: summary: %-34s %s%s", mode, "kill -> first write acknowledged", strings.Join(fail, " "), r1)
	say("%s: summary: %-34s %s%s", mode, "restart -> caught up", strings.Join(rec, " "), r2)
	say("%s: summary: %-34s %s", mode, "checkpoints installed by it", strings.Join(inst, " "))
}

// ---- checkpoint stall ----

// plainStore forwards only the StateMachine methods of a kv store, hiding
// its Checkpoint method: the core then takes each checkpoint with Snapshot,
// on the replica's goroutine.
type plainStore struct{ s *kv.Store }

func (p plainStore) Apply(op []byte) []byte        { return p.s.Apply(op) }
func (p plainStore) ReadOnly(op []byte) bool       { return p.s.ReadOnly(op) }
func (p plainStore) Snapshot() ([]byte, error)     { return p.s.Snapshot() }
func (p plainStore) Restore(snapshot []byte) error { return p.s.Restore(snapshot) }

type latencyRow struct {
	name                 string
	writes               int64
	rate                 float64
	p50, p99, p999, pmax time.Duration
	checkpoints          []uint64
	failures             uint64
	gap                  time.Duration // the longest time without any write acknowledged
	gaps100              int           // gaps of 100 ms or more
	gcs                  uint32
	gcPause              time.Duration
	heap                 uint64 // heap in use at the end, after a collection
}

func checkpointLatency(o historyOptions, stdout, stderr io.Writer) int {
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	_, has := any(kv.NewStore()).(statemachine.Checkpointer)
	say("checkpoint-latency: %d keys of %d bytes preloaded (%s), then %d writes from %d closed-loop clients; checkpoint every %d ops",
		o.keys, o.value, o.preload, o.ops, o.clients, o.interval())
	if has {
		say("checkpoint-latency: kv.NewStore() implements statemachine.Checkpointer")
	} else {
		say("checkpoint-latency: kv.NewStore() does NOT implement statemachine.Checkpointer yet: both rows take checkpoints on the replica's goroutine")
	}
	keys := historyKeys(o.keys)
	var snap []byte
	if o.preload == "restore" {
		store := kv.NewStore()
		val := bytes.Repeat([]byte{'p'}, o.value)
		for _, k := range keys {
			store.Apply(kv.PutOp(k, val))
		}
		t0 := time.Now()
		var err error
		if snap, err = store.Snapshot(); err != nil {
			fmt.Fprintf(stderr, "vsr history: preload: %v\n", err)
			return 1
		}
		say("checkpoint-latency: encoding the preloaded state (Snapshot) takes %s and %.1f MiB here, once per replica per checkpoint",
			time.Since(t0).Round(time.Millisecond), mib(uint64(len(snap))))
	} else if o.preload != "log" {
		fmt.Fprintf(stderr, "vsr history: -preload must be restore or log\n")
		return 2
	}
	newStore := func() *kv.Store {
		s := kv.NewStore()
		if snap != nil {
			if err := s.Restore(snap); err != nil {
				panic(err)
			}
		}
		return s
	}
	variants := []struct {
		name    string
		factory statemachine.Factory
	}{
		{"kv store (Checkpointer)", func() statemachine.StateMachine { return newStore() }},
		{"wrapped (no Checkpointer)", func() statemachine.StateMachine { return plainStore{newStore()} }},
	}
	if !has {
		variants[0].name = "kv store (no Checkpoint method yet)"
	}
	rows := make([][]latencyRow, 2) // by variant
	for round := range max(1, o.rounds) {
		for j := range variants {
			v := (j + round) % 2 // alternate which goes first
			runtime.GC()
			row, err := latencyRun(variants[v].name, variants[v].factory, keys, o, say)
			if err != nil {
				fmt.Fprintf(stderr, "vsr history: %s: %v\n", variants[v].name, err)
				return 1
			}
			rows[v] = append(rows[v], row)
		}
	}
	r10 := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	say("checkpoint-latency: %-28s %8s %8s %9s %9s %9s %9s %9s %6s %5s %8s %8s  %s", "", "writes", "ops/s", "p50", "p99", "p999", "max",
		"ack gap", ">100ms", "GCs", "GC pause", "heap MiB", "checkpoint op per replica")
	for v := range rows {
		for _, r := range rows[v] {
			say("checkpoint-latency: %-28s %8d %8.0f %9s %9s %9s %9s %9s %6d %5d %8s %8.0f  %v", r.name, r.writes, r.rate, r10(r.p50),
				r10(r.p99), r10(r.p999), r10(r.pmax), r10(r.gap), r.gaps100, r.gcs, r.gcPause.Round(time.Millisecond), mib(r.heap), r.checkpoints)
		}
	}
	median := func(rs []latencyRow, f func(latencyRow) time.Duration) float64 {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, f(r))
		}
		slices.Sort(ds)
		return ds[len(ds)/2].Seconds()
	}
	of := func(f func(latencyRow) time.Duration) string {
		return ratio(median(rows[0], f), median(rows[1], f))
	}
	what := "p99 ratio (wrapped / kv store)"
	if o.rounds > 1 {
		what = fmt.Sprintf("p99 ratio (wrapped / kv store, medians of %d rounds)", o.rounds)
	}
	say("checkpoint-latency: %s %s; p999 ratio %s; max ratio %s; longest ack gap ratio %s", what,
		of(func(r latencyRow) time.Duration { return r.p99 }), of(func(r latencyRow) time.Duration { return r.p999 }),
		of(func(r latencyRow) time.Duration { return r.pmax }), of(func(r latencyRow) time.Duration { return r.gap }))
	return 0
}

func latencyRun(name string, factory statemachine.Factory, keys []string, o historyOptions, say func(string, ...any)) (latencyRow, error) {
	row := latencyRow{name: name}
	t0 := time.Now()
	t, err := startInproc(o, factory)
	if err != nil {
		return row, err
	}
	defer t.stop()
	if waitPrimary(t, 20*time.Second, -1) < 0 {
		return row, errors.New("no primary")
	}
	say("checkpoint-latency: %s: group started in %s", name, time.Since(t0).Round(time.Millisecond))
	if o.preload == "log" {
		t1 := time.Now()
		if err := preloadThroughLog(t.writer(), keys, o); err != nil {
			return row, err
		}
		say("checkpoint-latency: %s: %d keys written through the log in %s", name, len(keys), time.Since(t1).Round(time.Millisecond))
	}
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	done := make(chan mark, 1)
	l := &historyLoad{cl: t.writer(), keys: keys, value: o.value, opTimeout: o.opTimeout,
		isMark: func(n int64) bool { return n == o.ops }, marks: done}
	start := time.Now()
	l.start(o.clients, true)
	var m mark
	select {
	case m = <-done:
	case <-time.After(o.stallTimeout + time.Duration(o.ops)*time.Millisecond):
		l.stop()
		return row, fmt.Errorf("only %d of %d writes acknowledged", l.counted.Load(), o.ops)
	}
	l.stop()
	row.writes = l.counted.Load()
	row.rate = float64(m.n) / m.at.Sub(start).Seconds()
	var all []time.Duration
	for _, s := range l.lat {
		all = append(all, s...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	row.p50, row.p99, row.p999, row.pmax = pct(0.50), pct(0.99), pct(0.999), all[len(all)-1]
	var acks []time.Time
	for _, a := range l.acks {
		acks = append(acks, a...)
	}
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(acks); i++ {
		g := acks[i].Sub(acks[i-1])
		row.gap = max(row.gap, g)
		if g >= 100*time.Millisecond {
			row.gaps100++
		}
	}
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	row.gcs, row.gcPause = ms1.NumGC-ms0.NumGC, time.Duration(ms1.PauseTotalNs-ms0.PauseTotalNs)
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	row.heap = ms1.HeapInuse
	for _, s := range t.figures(false, false, 2*time.Second) {
		row.checkpoints = append(row.checkpoints, s.Checkpoint)
		row.failures += s.CPFailures
	}
	say("checkpoint-latency: %s: %d writes in %s (%d resent after an error)", name, row.writes,
		time.Since(start).Round(time.Millisecond), l.retries.Load())
	return row, nil
}

// preloadThroughLog writes every key once, through the group.
func preloadThroughLog(w historyWriter, keys []string, o historyOptions) error {
	var next atomic.Int64
	var failed atomic.Int64
	val := bytes.Repeat([]byte{'p'}, o.value)
	var wg sync.WaitGroup
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(keys)) {
					return
				}
				for attempt := 0; ; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), o.opTimeout)
					_, err := w.Execute(ctx, kv.PutOp(keys[i], val))
					cancel()
					if err == nil {
						break
					}
					if attempt > 10 {
						failed.Add(1)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return fmt.Errorf("preload: %d writes failed", failed.Load())
	}
	return nil
}
