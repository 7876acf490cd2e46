//go:build vsrbugs

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A violation makes vsr sim exit 1, print the command that replays the seed,
// and write the trace and the history visualisation.
func TestSimCommandReportsAViolationWithReplayAndArtifacts(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "-seed", "1", "-replicas", "3", "-bugs", "ignore-client-table", "-quiet", "-out", dir}, &stdout, &stderr)
	require.Equal(t, 1, code, stderr.String())
	out := stdout.String()
	require.Contains(t, out, "VIOLATION (n=3 seed=1)")
	require.Contains(t, out, "replay: go run -tags vsrbugs ./cmd/vsr sim -seed 1 -replicas 3")
	for _, name := range []string{"n3-seed1.trace.txt", "n3-seed1.html"} {
		info, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Positive(t, info.Size())
	}
}
