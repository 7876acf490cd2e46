package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// vsr failover prints one summary per replica count, with every seed
// measured and the ones that did not fail over in time counted.
func TestFailoverCommandSummarises(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"failover", "-seeds", "5", "-replicas", "3,5", "-drop", "0.05"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String()+stdout.String())
	out := stdout.String()
	for _, n := range []string{"n=3 new primary p50 ", "n=5 new primary p50 "} {
		require.Contains(t, out, n)
	}
	require.Contains(t, out, "ticks (5 seeds)")
	require.Contains(t, out, " ms; first write p50 ")
	require.Contains(t, out, "no new primary within 2000 ticks: 0 seeds")
	require.NotContains(t, out, "ERROR")
}

// The same flags give the same figures.
func TestFailoverCommandIsDeterministic(t *testing.T) {
	figures := func() string {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, run([]string{"failover", "-seeds", "4", "-replicas", "3", "-workers", "3"}, &stdout, &stderr))
		lines := strings.Split(stdout.String(), "\n")
		return strings.Join(lines[:3], "\n") // the last line carries the wall time
	}
	require.Equal(t, figures(), figures())
}

func TestFailoverCommandRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"failover", "-replicas", "1"},
		{"failover", "-replicas", "4"},
		{"failover", "-drop", "0.9"},
		{"failover", "-seeds", "0"},
		{"failover", "-no-such-flag"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, run(args, &stdout, &stderr), strings.Join(args, " "))
		require.NotEmpty(t, stderr.String(), strings.Join(args, " "))
	}
}

func TestPercentilesTakeTheNearestRank(t *testing.T) {
	xs := make([]int, 100)
	for i := range xs {
		xs[i] = 100 - i // 1..100, unsorted
	}
	require.Equal(t, failoverStats{50, 90, 99, 100}, percentiles(xs))
	require.Equal(t, failoverStats{7, 7, 7, 7}, percentiles([]int{7}))
	require.Equal(t, failoverStats{-1, -1, -1, -1}, percentiles(nil))
}
