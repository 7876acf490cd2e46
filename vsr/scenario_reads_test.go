package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// Scenario tests of reads without the log (review item 5).

func readRequest(client, number uint64, key string, mode messages.ReadMode) *messages.Request {
	req := request(client, number, kv.GetOp(key))
	req.ReadMode = mode
	return req
}

func readValue(t *testing.T, r *messages.Reply) string {
	t.Helper()
	require.NotNil(t, r)
	res, err := kv.DecodeResult(r.Result)
	require.NoError(t, err)
	if !res.Found {
		return "<absent>"
	}
	return string(res.Value)
}

// A linearizable read sees every write acknowledged before it, and creates
// no log entry.
func TestLinearizableReadSeesAcknowledgedWrites(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		nw := newNetwork(t, n)
		nw.register(0, 1)
		nw.put(0, 1, 2, "a", "1")
		op := nw.replicas[0].OpNumber()
		nw.step(0, readRequest(2, 1, "a", messages.ReadMode_READ_MODE_LINEARIZABLE))
		nw.deliver()
		require.Equal(t, "1", readValue(t, nw.replyFor(2, 1)), "n=%d", n)
		require.False(t, nw.replyFor(2, 1).Stale)
		require.Equal(t, op, nw.replicas[0].OpNumber(), "n=%d: a read is not a log entry", n)
	}
}

// A primary cut off from the rest is deposed by a view change it does not
// hear of. A linearizable read it receives must never be answered from its
// old state, though a write has since changed the value.
func TestDeposedPrimaryNeverServesLinearizableRead(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.put(0, 1, 2, "a", "old")
	nw.isolate(0)
	nw.run(DefaultInactivityTicks+5, 0)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.put(1, 1, 3, "a", "new")
	require.True(t, nw.replicas[0].IsPrimary(), "replica 0 still believes it is primary of view 0")

	nw.step(0, readRequest(2, 1, "a", messages.ReadMode_READ_MODE_LINEARIZABLE))
	nw.run(3*DefaultHeartbeatTicks, 1, 2)
	require.Nil(t, nw.replyFor(2, 1), "the cut-off primary cannot confirm its view")

	// Healed, its ConfirmView reaches replicas of view 1, which ignore it,
	// and it learns of view 1 from their heartbeats and gives the read up.
	nw.heal()
	nw.run(3 * DefaultHeartbeatTicks)
	for _, r := range nw.replies {
		if r.ClientId == 2 {
			require.NotEqual(t, uint32(0), r.Replica, "no answer from the deposed primary")
		}
	}
	require.False(t, nw.replicas[0].IsPrimary())
}

// A read arriving at a primary that has uncommitted writes in its log waits
// for them: it is answered only after they commit, and sees them.
func TestLinearizableReadWaitsForReadIndexToCommit(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("1"))))
	nw.dropAll() // the Prepares are lost: op 2 is not committed
	nw.step(0, readRequest(2, 1, "a", messages.ReadMode_READ_MODE_LINEARIZABLE))
	nw.deliver() // the view is confirmed, but op 2 is still not committed
	require.Nil(t, nw.replyFor(2, 1))
	nw.run(2 * DefaultHeartbeatTicks) // the heartbeat after next resends the Prepares
	require.Equal(t, "1", readValue(t, nw.replyFor(2, 1)))
}

// A stale read is answered by a backup from its own state, may miss a
// committed write, and says that it is stale.
func TestStaleReadIsServedByBackupAndMarkedStale(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("1"))))
	nw.deliverIf(func(p packet) bool { return true })
	nw.deliverIf(func(p packet) bool { return true })
	require.Equal(t, uint64(2), nw.replicas[0].CommitNumber())
	nw.dropAll()

	nw.step(2, readRequest(2, 1, "a", messages.ReadMode_READ_MODE_STALE))
	r := nw.replyFor(2, 1)
	require.True(t, r.Stale)
	require.Equal(t, uint32(2), r.Replica)
	require.Equal(t, "<absent>", readValue(t, r), "the backup has not executed op 2 yet")
}
