package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A write sent to the primary is prepared, committed on a quorum, executed on
// every replica and answered once by the primary.
func TestNormalOperationReplicatesAndRepliesOnce(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		nw := newNetwork(t, n)
		nw.put(0, 1, 1, "a", "1")
		require.NotNil(t, nw.replyFor(1, 1), "n=%d", n)
		require.Equal(t, 1, nw.repliesFor(1, 1))
		nw.run(DefaultHeartbeatTicks) // the commit reaches backups on the heartbeat
		for i := 0; i < n; i++ {
			require.Equal(t, "1", nw.value(i, "a"), "n=%d replica %d", n, i)
		}
		nw.requireConverged()
	}
}
