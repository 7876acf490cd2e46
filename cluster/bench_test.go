package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/statemachine/kv"
)

// BenchmarkRemoteWrites measures writes over loopback remoting: three nodes
// (one actor system and one remote each, in this process), in memory or
// durable, and a client with its own remote, for 1 and 64 concurrent
// clients.
//
//	go test ./cluster -run '^$' -bench RemoteWrites -benchtime 20000x
func BenchmarkRemoteWrites(b *testing.B) {
	for _, mode := range []struct {
		name   string
		memory bool
	}{{"memory", true}, {"durable", false}} {
		for _, clients := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", mode.name, clients), func(b *testing.B) {
				benchmarkRemoteWrites(b, mode.memory, clients)
			})
		}
	}
}

func benchmarkRemoteWrites(b *testing.B, memory bool, clients int) {
	cfg, nodes := startBenchNodes(b, memory)
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
	}()
	c, err := NewClient(cfg, ClientOptions{Sessions: clients})
	require.NoError(b, err)
	defer c.Close()
	ctx := context.Background()
	_, err = c.Execute(ctx, kv.PutOp("warm", []byte("up")))
	require.NoError(b, err)
	lat := make([]time.Duration, b.N)
	var next sync.Mutex
	i := 0
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= b.N {
					return
				}
				t0 := time.Now()
				if _, err := c.Execute(ctx, kv.PutOp(fmt.Sprintf("k%d", w), []byte("v"))); err != nil {
					b.Error(err)
					return
				}
				lat[k] = time.Since(t0)
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(lat[b.N/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[b.N*99/100].Microseconds()), "p99-us")
}

func startBenchNodes(b *testing.B, memory bool) (Config, []*Node) {
	var addrs []string
	for i := 0; i < 3; i++ {
		port, err := freePort("127.0.0.1")
		require.NoError(b, err)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	cfg := Config{ClusterID: 1, Replicas: addrs}
	dir := b.TempDir()
	var nodes []*Node
	for i := range addrs {
		n, err := StartNode(NodeConfig{Config: cfg, Index: i, DataDir: filepath.Join(dir, fmt.Sprint(i)), Memory: memory,
			NewStateMachine: kv.New})
		require.NoError(b, err)
		nodes = append(nodes, n)
	}
	return cfg, nodes
}

// BenchmarkFailoverKill9 measures, over node processes on loopback, the time
// from kill -9 of the primary to the first write sent after the kill being
// acknowledged by the new primary: with the membership hint (the transport's
// endpoint event starts the view change at once) and without it (the
// inactivity timeout alone).
//
//	go test ./cluster -run '^$' -bench FailoverKill9 -benchtime 5x
func BenchmarkFailoverKill9(b *testing.B) {
	for _, mode := range []struct {
		name  string
		extra []string
	}{{"hint", nil}, {"timeout", []string{"-no-hints"}}} {
		b.Run(mode.name, func(b *testing.B) {
			var total time.Duration
			for n := 0; n < b.N; n++ {
				total += failoverOnce(b, mode.extra)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "failover-ms")
		})
	}
}

func failoverOnce(b *testing.B, extra []string) time.Duration {
	var addrs []string
	for i := 0; i < 3; i++ {
		port, err := freePort("127.0.0.1")
		require.NoError(b, err)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	dir := b.TempDir()
	procs := make([]*nodeProc, 3)
	for i := range procs {
		procs[i] = startNodeProc(b, nil, strings.Join(addrs, ","), i, filepath.Join(dir, fmt.Sprint(i)), extra...)
	}
	defer func() {
		for _, p := range procs {
			p.kill9()
		}
	}()
	// A short client retry, so that the figure is the group's failover, not
	// the client's patience.
	c, err := NewClient(Config{ClusterID: 1, Replicas: addrs}, ClientOptions{RetryInterval: 25 * time.Millisecond})
	require.NoError(b, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Writes keep the connections between all nodes up.
	for k := 0; k < 50; k++ {
		_, err := c.Execute(ctx, kv.PutOp("warm", []byte("up")))
		require.NoError(b, err)
	}
	p := primaryOf(c.StatusWithoutDigest(time.Second)) // not always 0: a node that starts late can cost a view change
	require.GreaterOrEqual(b, p, 0)
	procs[p].kill9()
	killed := time.Now()
	_, err = c.Execute(ctx, kv.PutOp("after", []byte("kill")))
	require.NoError(b, err)
	return time.Since(killed)
}
