package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// demoCommand starts a group in one process, runs a kv workload, kills the
// primary, shows the view change and the new primary serving, restarts the
// killed replica and shows it recovering, and ends by checking that every
// replica holds the same state and that no acknowledged write was lost.
func demoCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vsr demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("replicas", 3, "replicas in the group (odd)")
	workers := fs.Int("clients", 4, "concurrent clients writing")
	phase := fs.Duration("phase", time.Second, "how long each phase of the workload runs")
	verbose := fs.Bool("verbose", false, "show Proto.Actor's own log (at INFO)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	d := &demo{out: stdout, start: time.Now(), events: make(chan actors.Event, 1024)}
	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	g, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID: 1, Replicas: *n, NewStateMachine: kv.New, Logger: logger,
		OnEvent: func(e actors.Event) {
			select {
			case d.events <- e:
			default: // never block a replica
			}
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "vsr demo: %v\n", err)
		return 2
	}
	defer g.Stop()
	printed := make(chan struct{})
	go d.printEvents(printed)
	code := d.run(g, *n, *workers, *phase)
	g.Stop()
	close(d.events)
	<-printed
	return code
}

type demo struct {
	out    io.Writer
	mu     sync.Mutex
	start  time.Time
	events chan actors.Event
}

func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "%7.3fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) printEvents(done chan struct{}) {
	defer close(done)
	for e := range d.events {
		d.say("%s", describeEvent(e))
	}
}

// workload writes, from each worker, increasing values to the worker's own
// key, and remembers the last value each worker had acknowledged.
type workload struct {
	client *actors.Client
	acked  []atomic.Int64
	ops    atomic.Int64
	failed atomic.Int64
	// killedAt is when the primary was gone; firstAfter, when the first
	// write sent after that was acknowledged (by the new primary).
	killedAt   atomic.Int64
	firstAfter atomic.Int64
}

func (w *workload) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for k := 0; k < workers; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for v := w.acked[k].Load() + 1; ctx.Err() == nil; v++ {
				sent := time.Now().UnixNano()
				opCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := w.client.Execute(opCtx, kv.PutOp(fmt.Sprintf("key-%d", k), []byte(fmt.Sprint(v))))
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						w.failed.Add(1)
					}
					v-- // write the same value again: it may or may not have happened
					continue
				}
				w.acked[k].Store(v)
				w.ops.Add(1)
				if at := w.killedAt.Load(); at != 0 && sent > at {
					w.firstAfter.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}(k)
	}
	wg.Wait()
}

func (d *demo) run(g *supervisor.Group, n, workers int, phase time.Duration) int {
	ctx := context.Background()
	d.say("started %d replicas of a key-value store in one actor system (f = %d)", n, (n-1)/2)
	client, err := g.NewClient(workers)
	if err != nil {
		d.say("cannot make a client: %v", err)
		return 1
	}
	defer client.Close()
	w := &workload{client: client, acked: make([]atomic.Int64, workers)}
	runFor := func(dur time.Duration) {
		c, cancel := context.WithTimeout(ctx, dur)
		defer cancel()
		w.run(c, workers)
	}

	d.say("%d clients write to their own keys for %s", workers, phase)
	runFor(phase)
	d.say("%d writes acknowledged", w.ops.Load())

	primary := g.Primary(ctx)
	if primary < 0 {
		d.say("no primary: giving up")
		return 1
	}
	d.say("killing the primary, replica %d, while the clients keep writing", primary)
	var wg sync.WaitGroup
	wg.Add(1)
	before := w.ops.Load()
	go func() { defer wg.Done(); runFor(2 * phase) }()
	time.Sleep(phase / 4)
	if err := g.Kill(primary); err != nil {
		d.say("cannot kill replica %d: %v", primary, err)
		return 1
	}
	killed := time.Now()
	w.killedAt.Store(killed.UnixNano())
	wg.Wait()
	failover := time.Duration(w.firstAfter.Load() - killed.UnixNano())
	newPrimary := g.Primary(ctx)
	d.say("replica %d is down; replica %d serves as primary; first write acknowledged %s after the kill; %d writes since",
		primary, newPrimary, failover.Round(time.Millisecond), w.ops.Load()-before)

	d.say("restarting replica %d", primary)
	if err := g.Restart(primary); err != nil {
		d.say("cannot restart replica %d: %v", primary, err)
		return 1
	}
	runFor(phase)
	return d.check(g, w, workers, n)
}

// check waits for the replicas to converge, then verifies that they hold the
// same state and that every acknowledged write is there.
func (d *demo) check(g *supervisor.Group, w *workload, workers, n int) int {
	ctx := context.Background()
	var st []supervisor.ReplicaStatus
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Poll without digests, which cost every replica an encoding of its
		// whole state machine, and compare digests once the rest agrees.
		late := time.Now().After(deadline)
		if late || agreed(g.StatusWithoutDigest(ctx), false) {
			st = g.Status(ctx)
			if late || agreed(st, true) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range st {
		d.say("replica %d: %-11s view %d  op %d  commit %d  state %x", s.Replica, s.Status, s.View, s.OpNumber, s.CommitNumber, s.Digest[:6])
	}
	ok := agreed(st, true)
	// Each worker writes increasing values to its own key and resends a
	// value whose answer it lost, so its key must hold its last
	// acknowledged value, or the one after it if that write's answer was
	// lost: anything else means an acknowledged write was lost.
	lost := 0
	for k := 0; k < workers; k++ {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := w.client.Read(c, kv.GetOp(fmt.Sprintf("key-%d", k)))
		cancel()
		got := int64(-1)
		if r, derr := kv.DecodeResult(res); err == nil && derr == nil {
			got, _ = strconv.ParseInt(string(r.Value), 10, 64)
		}
		if acked := w.acked[k].Load(); got < acked || got > acked+1 {
			d.say("key-%d holds %d, but %d was acknowledged", k, got, acked)
			lost++
		}
	}
	d.say("summary: %d writes acknowledged, %d retried after a timeout, %d replicas %s, %d acknowledged writes lost",
		w.ops.Load(), w.failed.Load(), n, map[bool]string{true: "hold the same state", false: "DIFFER"}[ok], lost)
	if !ok || lost > 0 {
		return 1
	}
	return 0
}

// agreed reports whether every replica is up, normal in one view, with the
// same commit number and, if digests is set, the same state digest.
func agreed(st []supervisor.ReplicaStatus, digests bool) bool {
	for _, s := range st {
		if s.Down || s.Status != vsr.StatusNormal || s.View != st[0].View ||
			s.CommitNumber != st[0].CommitNumber || (digests && s.Digest != st[0].Digest) {
			return false
		}
	}
	return true
}
