package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/vsrgo/vsr/internal/latency"
	"github.com/vsrgo/vsr/internal/procstats"
)

// sut is a started system under test, as the load generator sees it.
type sut struct {
	// encode builds the operation for a put, outside the timed call.
	encode func(key string, value []byte) []byte
	// do submits one operation and returns when it is acknowledged.
	do func(ctx context.Context, op []byte) error
	// elections counts view or term changes so far.
	elections func() uint64
	stop      func() error
}

// loadParams is one run of closed-loop writers.
type loadParams struct {
	clients          int
	keys             []string
	warmup, duration time.Duration
	seed             uint64
}

// loadResult is what one run of the load generator saw.
type loadResult struct {
	// window holds the latency of every write that started and ended
	// inside the measured window (as `vsr bench` counts them); its count
	// over the window's length is the throughput.
	window latency.Hist
	// totalOps counts every acknowledged write, warm-up included; acked
	// those acknowledged inside the window whenever they started (the
	// divisor for the window's allocations).
	totalOps, acked uint64
	// errors counts writes that failed inside the window; firstErr is the
	// first failure of the run.
	errors   uint64
	firstErr error
	// allocs and allocBytes are this process's heap allocations (objects,
	// bytes) inside the window.
	allocs, allocBytes uint64
	// runAllocs and runAllocBytes are this process's heap allocations over
	// the whole run, warm-up included (the load generator's own bookkeeping
	// allocated before it starts), for the loopback settings, which charge
	// allocations over the whole run to totalOps.
	runAllocs, runAllocBytes uint64
	// elections counts view or term changes inside the window.
	elections uint64
}

func (r *loadResult) opsPerSec(d time.Duration) float64 {
	return float64(r.window.Count()) / d.Seconds()
}

// keyNames are the names of n keys, made once so that no run pays for them.
func keyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	return keys
}

// loadWorker is one writer's own figures, merged at the end so that the
// writers share no counter.
type loadWorker struct {
	hist               latency.Hist
	total, acked, errs uint64
	firstErr           error
}

// runLoad runs p.clients closed-loop writers against s, each with one put of
// a 16-byte random value to a random key outstanding, for p.warmup and then
// p.duration, and reads the process's allocations at the window's edges.
func runLoad(s *sut, p loadParams) loadResult {
	// The workers' histograms are allocated before the run so that they
	// are not charged to the system under test.
	workers := make([]*loadWorker, p.clients)
	for w := range workers {
		workers[w] = new(loadWorker)
	}
	ra0, rb0 := procstats.Allocs()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	begin := time.Now().Add(p.warmup)
	end := begin.Add(p.duration)
	var wg sync.WaitGroup
	for w, me := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(p.seed, uint64(w)))
			value := make([]byte, 16)
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := p.keys[rng.IntN(len(p.keys))]
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
						return // stopping
					}
					if me.firstErr == nil {
						me.firstErr = err
					}
					if !t1.Before(begin) && t1.Before(end) {
						me.errs++
					}
					// Back off from an error that comes back at once (no
					// leader yet, say) instead of spinning on it.
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				me.total++
				if !t1.Before(begin) && t1.Before(end) {
					me.acked++
				}
				if !t0.Before(begin) && !t1.After(end) {
					me.hist.Record(uint64(max(t1.Sub(t0), 0)))
				}
			}
		})
	}
	var res loadResult
	time.Sleep(time.Until(begin))
	e0 := s.elections()
	a0, b0 := procstats.Allocs()
	time.Sleep(time.Until(end))
	a1, b1 := procstats.Allocs()
	res.elections = s.elections() - e0
	res.allocs, res.allocBytes = a1-a0, b1-b0
	close(stop)
	cancel()
	wg.Wait()
	ra1, rb1 := procstats.Allocs()
	res.runAllocs, res.runAllocBytes = ra1-ra0, rb1-rb0
	for _, w := range workers {
		res.window.Merge(&w.hist)
		res.totalOps += w.total
		res.acked += w.acked
		res.errors += w.errs
		if res.firstErr == nil {
			res.firstErr = w.firstErr
		}
	}
	return res
}

// check fails a run in which nothing was acknowledged.
func (r *loadResult) check() error {
	if r.window.Count() > 0 {
		return nil
	}
	if r.firstErr != nil {
		return fmt.Errorf("no write acknowledged in the window: %w", r.firstErr)
	}
	return fmt.Errorf("no write acknowledged in the window")
}
