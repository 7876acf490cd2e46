package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// vsr sim runs the seeds it is asked for and prints a summary with zero
// violations, exiting 0.
func TestSimCommandSummarisesACleanRun(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "-seeds", "3", "-replicas", "3,5", "-quiet"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	out := stdout.String()
	require.Contains(t, out, "runs:             12 ", "3 seeds, 2 replica counts, plain and reconfiguration runs")
	require.Contains(t, out, "violations:       0")
	require.Contains(t, out, "faults injected:")
	require.Contains(t, out, "reconfigure-", "the reconfiguration runs changed members")
}

// Bad flags are refused with exit status 2 and a reason.
func TestSimCommandRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "-replicas", "4"},
		{"sim", "-drop", "0.9"},
		{"sim", "-bugs", "no-such-bug"},
		{"sim", "-runs", "sideways"},
		{"sim", "-no-such-flag"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, run(args, &stdout, &stderr), strings.Join(args, " "))
		require.NotEmpty(t, stderr.String(), strings.Join(args, " "))
	}
}

func TestUnknownCommandIsRefused(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, run([]string{"frobnicate"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "unknown command")
	require.Equal(t, 2, run(nil, &stdout, &stderr))
}
