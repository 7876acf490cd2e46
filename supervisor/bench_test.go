package supervisor_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/metrics"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
)

// Benchmarks of a 3-replica group in one actor system. Run them with, e.g.,
//
//	go test ./supervisor/ -run xxx -bench 'Writes|Reads' -benchtime=3s
//	go test ./supervisor/ -run xxx -bench Failover -benchtime=5x
//
// Each reports ops/s and the p50 and p99 latency of one call in
// microseconds, or for failover the mean time in milliseconds from killing
// the primary to the first write a new primary acknowledges.

var concurrency = []int{1, 64}

const benchKeys = 1024

func BenchmarkWrites(b *testing.B) {
	value := []byte("0123456789abcdef")
	benchmarkCalls(b, nil, func(ctx context.Context, c *actors.Client, i int) error {
		_, err := c.Execute(ctx, kv.PutOp(fmt.Sprintf("k%d", i%benchKeys), value))
		return err
	})
}

// BenchmarkObserver measures what the observer hook costs writes: with no
// Observer (the hook's only cost is a nil check), with one that does
// nothing (the cost of building the observations), and with one that counts
// them by kind under a mutex (a cheap real consumer), and with the
// Prometheus metrics of package metrics. Compare the ops/s of
// the three in one run:
//
//	go test ./supervisor/ -run xxx -bench Observer -benchtime=3s
func BenchmarkObserver(b *testing.B) {
	value := []byte("0123456789abcdef")
	write := func(ctx context.Context, c *actors.Client, i int) error {
		_, err := c.Execute(ctx, kv.PutOp(fmt.Sprintf("k%d", i%benchKeys), value))
		return err
	}
	var mu sync.Mutex
	counts := map[actors.ObservationKind]int{}
	observers := []struct {
		name string
		obs  actors.Observer
	}{
		{"none", nil},
		{"noop", actors.ObserverFunc(func(actors.Observation) {})},
		{"counting", actors.ObserverFunc(func(o actors.Observation) { mu.Lock(); counts[o.Kind]++; mu.Unlock() })},
		{"metrics", metrics.New()},
	}
	for _, o := range observers {
		b.Run("observer="+o.name, func(b *testing.B) {
			benchmarkCalls(b, nil, write, func(cfg *supervisor.GroupConfig) { cfg.Observer = o.obs })
		})
	}
}

func BenchmarkLinearizableReads(b *testing.B) {
	preload := func(b *testing.B, c *actors.Client) {
		for i := range benchKeys {
			put(b, c, fmt.Sprintf("k%d", i), "0123456789abcdef")
		}
	}
	benchmarkCalls(b, preload, func(ctx context.Context, c *actors.Client, i int) error {
		_, err := c.Read(ctx, kv.GetOp(fmt.Sprintf("k%d", i%benchKeys)))
		return err
	})
}

// benchmarkCalls runs b.N calls spread over each concurrency level, every
// goroutine with its own session of one shared Client.
func benchmarkCalls(b *testing.B, setup func(*testing.B, *actors.Client), call func(context.Context, *actors.Client, int) error,
	configure ...func(*supervisor.GroupConfig)) {
	for _, clients := range concurrency {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			g := startGroup(b, 3, configure...)
			c := newClient(b, g, clients)
			if setup != nil {
				setup(b, c)
			}
			latencies := make([][]time.Duration, clients)
			var next atomic.Int64
			var failed atomic.Pointer[error]
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mine := make([]time.Duration, 0, b.N/clients+1)
					for {
						i := int(next.Add(1) - 1)
						if i >= b.N || failed.Load() != nil {
							break
						}
						ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
						t0 := time.Now()
						err := call(ctx, c, i)
						mine = append(mine, time.Since(t0))
						cancel()
						if err != nil {
							failed.CompareAndSwap(nil, &err)
							break
						}
					}
					latencies[w] = mine
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
			all := slices.Concat(latencies...)
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
			b.ReportMetric(float64(percentile(all, 50).Microseconds()), "p50-us")
			b.ReportMetric(float64(percentile(all, 99).Microseconds()), "p99-us")
		})
	}
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := (len(sorted)*p + 99) / 100
	return sorted[max(k-1, 0)]
}

// BenchmarkFailover: each iteration starts a group, writes once, kills the
// primary and measures the time until a write is acknowledged by a new
// primary. With the group's default timing a backup suspects a silent
// primary after 300-450 ms; the client adds up to one retry interval, the
// time it waits before resending a request to every replica (default 200
// ms), so the benchmark runs with the default client and with a client that
// retries every 25 ms (its tick).
func BenchmarkFailover(b *testing.B) {
	for _, retry := range []time.Duration{0, 25 * time.Millisecond} {
		name := "client-retry=default"
		if retry > 0 {
			name = fmt.Sprintf("client-retry=%v", retry)
		}
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				g, err := supervisor.StartGroup(supervisor.GroupConfig{ClusterID: testClusterID, Replicas: 3, NewStateMachine: kv.New})
				if err != nil {
					b.Fatal(err)
				}
				c, err := actors.NewClient(g.System(), actors.ClientConfig{ClusterID: testClusterID, Replicas: g.Peers(), RetryInterval: retry})
				if err != nil {
					b.Fatal(err)
				}
				put(b, c, "k", "before")
				p, view := waitPrimary(b, g, -1)

				b.StartTimer()
				killed := time.Now()
				if err := g.Kill(p); err != nil {
					b.Fatal(err)
				}
				put(b, c, "k", "after")
				d := time.Since(killed)
				b.StopTimer()

				np, _ := waitPrimary(b, g, int64(view), p)
				if got, _ := read(b, c, "k"); got != "after" {
					b.Fatalf("read %q after failover to replica %d", got, np)
				}
				total += d
				c.Close()
				g.Stop()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "failover-ms")
		})
	}
}
