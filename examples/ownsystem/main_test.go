package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRun runs the example as `go run ./examples/ownsystem` would, and
// checks what it printed: the group served in the program's system and
// stopped without stopping it, and the replica that panicked under the
// program's parent was restarted by the parent's strategy and came back
// through recovery.
func TestRun(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(&out))
	require.Equal(t, `group "orders" in the program's system: greeting = hello
group stopped; the program's system still runs: true
replica 1 panicked and was restarted: recovering
replica 1 came back through VR recovery: normal
replicas under the program's parent: greeting = hello again; restarts by its strategy: 1
`, out.String())
}
