package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// tinyHistory is the history command at a scale a test can afford: a
// checkpoint every 256 ops and 64 trailing entries, so that the replica
// restarted after the failover at 1000 must fetch a checkpoint.
var tinyHistory = []string{"-ops", "3000", "-every", "1000", "-keys", "100", "-clients", "8",
	"-failover-at", "1000", "-checkpoint-interval", "256", "-trailing-ops", "64"}

func requireHistorySummary(t *testing.T, mode, out string) {
	t.Helper()
	for _, re := range []string{
		mode + `: +1000 +\d+ \|`, // one report line per 1000 ops
		mode + `: +3000 +\d+ \|`,
		mode + `: failover at 1000: killed primary r\d; first write acknowledged \S+ after the kill`,
		mode + `: restarted r\d: normal and caught up \S+ after its restart.*recovered through chunked checkpoint transfer`,
		mode + `: the 3 replicas converged`,
		mode + `: summary: +at 1000 +at 3000 +ratio`,
		mode + `: summary: heap in use \S+ +[\d.]+ MiB +[\d.]+ MiB +[\d.]+`,
		mode + `: summary: largest message sent r2 +\d+ B +\d+ B +[\d.]+`,
		mode + `: summary: kill -> first write acknowledged +\S+`,
		mode + `: summary: restart -> caught up +\S+`,
	} {
		require.Regexp(t, re, out)
	}
}

func TestHistoryInProcess(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"history", "-mode", "inproc"}, tinyHistory...), &stdout, &stderr)
	out := stdout.String()
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, stderr.String())
	requireHistorySummary(t, "inproc", out)
	require.Empty(t, stderr.String(), "nothing from Proto.Actor is printed")
}

// Loopback mode runs 'vsr node' processes, so it needs the built binary:
// the test builds it (skipped with -short).
func TestHistoryLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/vsr and starts node processes")
	}
	bin := filepath.Join(t.TempDir(), "vsr")
	built, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", built)
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"history", "-mode", "loopback", "-node-binary", bin}, tinyHistory...), &stdout, &stderr)
	out := stdout.String()
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, stderr.String())
	requireHistorySummary(t, "loopback", out)
	require.Empty(t, stderr.String(), "nothing from Proto.Actor is printed")
}

func TestHistoryCheckpointLatency(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"history", "-checkpoint-latency", "-keys", "2000", "-ops", "2000", "-clients", "8",
		"-checkpoint-interval", "256"}, &stdout, &stderr)
	out := stdout.String()
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, stderr.String())
	require.Regexp(t, `checkpoint-latency: kv store \(.*\) +2\d{3} +\d+ +\S+ +\S+ +\S+ +\S+`, out)
	require.Regexp(t, `checkpoint-latency: wrapped \(no Checkpointer\) +2\d{3} +\d+ +\S+`, out)
	require.Regexp(t, `checkpoint-latency: p99 ratio \(wrapped / kv store\) [\d.]+`, out)
	require.Empty(t, stderr.String())
}
