package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// The demo, the README's first command, runs to the end: the primary is
// killed, another takes over, the killed replica recovers, every replica
// ends with the same state and no acknowledged write is lost.
func TestDemoSurvivesTheLossOfItsPrimary(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "-phase", "400ms"}, &stdout, &stderr)
	out := stdout.String()
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, stderr.String())
	require.Contains(t, out, "killing the primary, replica 0")
	require.Contains(t, out, "is the primary of view 1")
	require.Contains(t, out, "replica 0 restarted without its state: recovering from its peers")
	require.Contains(t, out, "3 replicas hold the same state, 0 acknowledged writes lost")
	require.Empty(t, stderr.String(), "Proto.Actor's log stays quiet unless asked for")
}
