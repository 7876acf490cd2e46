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
