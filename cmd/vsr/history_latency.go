package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// The checkpoint stall measurement of vsr history -checkpoint-latency: write
// latency across checkpoints of a large state, with and without
// statemachine.Checkpointer.

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
		isMark: func(n int64) bool { return n == o.ops }, marks: done, endAtMark: true}
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
