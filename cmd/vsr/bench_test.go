package main

import (
	"bytes"
	"encoding/json"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every value falls in a bucket whose bounds hold it, the buckets are
// contiguous, and a bucket is at most 1/64 of its lower bound wide.
func TestHistBucketsCoverEveryValue(t *testing.T) {
	prevHi := uint64(0)
	for i := range histBuckets {
		lo, hi := histBounds(i)
		if i > 0 {
			require.Equal(t, prevHi+1, lo, "bucket %d", i)
		}
		require.LessOrEqual(t, hi-lo, lo/histSub, "bucket %d", i)
		require.Equal(t, i, histBucket(lo))
		require.Equal(t, i, histBucket(hi))
		prevHi = hi
	}
	require.Equal(t, ^uint64(0), prevHi)
}

func TestHistQuantilesOnKnownInputs(t *testing.T) {
	var h latencyHist
	require.Zero(t, h.quantile(0.5))

	// Small values are exact.
	for v := uint64(1); v <= 50; v++ {
		h.record(v)
	}
	require.Equal(t, uint64(25), h.quantile(0.5))
	require.Equal(t, uint64(50), h.quantile(0.99))
	require.Equal(t, uint64(1), h.quantile(0))
	require.Equal(t, uint64(50), h.quantile(1))

	// 1..100000: quantiles within the buckets' 1/64 relative error, never
	// below the true value, and the maximum exact.
	h = latencyHist{}
	for v := uint64(1); v <= 100000; v++ {
		h.record(v)
	}
	for _, c := range []struct {
		q    float64
		want uint64
	}{{0.5, 50000}, {0.9, 90000}, {0.99, 99000}, {0.999, 99900}} {
		got := h.quantile(c.q)
		require.GreaterOrEqual(t, got, c.want, "q=%v", c.q)
		require.LessOrEqual(t, float64(got), float64(c.want)*(1+1.0/64), "q=%v", c.q)
	}
	require.Equal(t, uint64(100000), h.quantile(1))
	require.Equal(t, uint64(100000), h.max)
	require.InDelta(t, 50000.5, h.sum/float64(h.n), 1e-6)

	// A skewed distribution: 990 at 100 µs, 10 at 50 ms.
	h = latencyHist{}
	for range 990 {
		h.record(100_000)
	}
	for range 10 {
		h.record(50_000_000)
	}
	require.InEpsilon(t, 100_000, float64(h.quantile(0.5)), 1.0/64)
	require.InEpsilon(t, 100_000, float64(h.quantile(0.99)), 1.0/64)
	require.Equal(t, uint64(50_000_000), h.quantile(0.999))

	// Merging two halves gives the same as recording everything in one.
	var a, b, whole latencyHist
	for v := uint64(1); v <= 10000; v += 7 {
		whole.record(v * 1000)
		if v%2 == 0 {
			a.record(v * 1000)
		} else {
			b.record(v * 1000)
		}
	}
	a.merge(&b)
	require.Equal(t, whole, a)

	// The printed rows are powers of two in microseconds holding every value.
	rows := h.rows()
	var total uint64
	for _, r := range rows {
		total += r.Count
		require.Equal(t, r.HighUs, max(2*r.LowUs, 1))
	}
	require.Equal(t, uint64(1000), total)
	require.Equal(t, uint64(64), rows[0].LowUs)
	require.Equal(t, uint64(65536), rows[len(rows)-1].HighUs)
}

func TestBenchInProcessJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "-duration", "1s", "-warmup", "0", "-clients", "4", "-reads", "0.25", "-json"}, &stdout, &stderr)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Empty(t, stderr.String(), "-json prints no progress")
	var rep struct {
		Ops    uint64  `json:"ops"`
		Errors uint64  `json:"errors"`
		P50    float64 `json:"p50_us"`
		P99    float64 `json:"p99_us"`
		Max    float64 `json:"max_us"`
		Writes *struct {
			Ops uint64 `json:"ops"`
		} `json:"writes"`
		Reads *struct {
			Ops uint64 `json:"ops"`
		} `json:"reads"`
		TotalOps          uint64 `json:"total_ops"`
		ProcessAllocs     uint64 `json:"process_allocs"`
		ProcessAllocBytes uint64 `json:"process_alloc_bytes"`
		ProcessPeakRSS    uint64 `json:"process_peak_rss_bytes"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	require.Positive(t, rep.Ops)
	require.Positive(t, rep.P50)
	require.GreaterOrEqual(t, rep.P99, rep.P50)
	require.GreaterOrEqual(t, rep.Max, rep.P99)
	require.NotNil(t, rep.Writes)
	require.NotNil(t, rep.Reads)
	require.Equal(t, rep.Ops, rep.Writes.Ops+rep.Reads.Ops)
	require.Positive(t, rep.Reads.Ops)
	// The totals cover the whole run, so they hold at least the window's
	// operations, and the process allocated something for them.
	require.GreaterOrEqual(t, rep.TotalOps, rep.Ops)
	require.Positive(t, rep.ProcessAllocs)
	require.Greater(t, rep.ProcessAllocBytes, rep.ProcessAllocs)
	if runtime.GOOS == "linux" {
		require.Greater(t, rep.ProcessPeakRSS, uint64(1<<20), "a Go process holding a group has more than 1 MiB resident")
	}
}

func TestBenchTextReport(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "-duration", "1500ms", "-warmup", "0", "-clients", "2", "-data-dir", t.TempDir()}, &stdout, &stderr)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	out := stdout.String()
	require.Contains(t, out, "durable in")
	require.Contains(t, out, "writes ")
	require.Contains(t, out, " p99 ")
	require.Contains(t, out, "#")
	require.Contains(t, stderr.String(), "ops/s", "a progress line a second")
}

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "-no-such-flag"},
		{"bench", "-clients", "0"},
		{"bench", "-reads", "1.5"},
		{"bench", "-duration", "0s"},
		{"bench", "-keys", "0"},
		{"bench", "-replicas", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "-data-dir", "x"},
		{"bench", "-replicas", "127.0.0.1:1,127.0.0.1:2"},
		{"bench", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, run(args, &stdout, &stderr), "%v", args)
		require.NotEmpty(t, stderr.String(), "%v", args)
	}
}

// A group nobody answers for fails the command well before -duration.
func TestBenchFailsFastWhenGroupUnreachable(t *testing.T) {
	var addrs []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addrs = append(addrs, l.Addr().String())
		require.NoError(t, l.Close())
	}
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run([]string{"bench", "-replicas", strings.Join(addrs, ","), "-op-timeout", "1s", "-duration", "30s", "-clients", "2"}, &stdout, &stderr)
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Less(t, time.Since(start), 10*time.Second)
	require.Contains(t, stderr.String(), "cannot reach the group")
}
