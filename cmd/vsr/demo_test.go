package main

import (
	"bytes"
	"regexp"
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
	killed := regexp.MustCompile(`killing the primary, replica (\d)`).FindStringSubmatch(out)
	require.NotNil(t, killed, out)
	require.Regexp(t, `replica \d is the primary of view [1-9]`, out)
	require.Contains(t, out, "replica "+killed[1]+" restarted without its state: recovering from its peers")
	require.Contains(t, out, "3 replicas hold the same state, 0 acknowledged writes lost")
	require.Empty(t, stderr.String(), "Proto.Actor's log stays quiet unless asked for")
}
