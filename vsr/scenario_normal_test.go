package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// A write sent to the primary is prepared, committed on a quorum, executed on
// every replica and answered once by the primary.
func TestNormalOperationReplicatesAndRepliesOnce(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		nw := newNetwork(t, n)
		nw.register(0, 1)
		nw.put(0, 1, 2, "a", "1")
		require.NotNil(t, nw.replyFor(1, 2), "n=%d", n)
		require.Equal(t, 1, nw.repliesFor(1, 2))
		nw.run(DefaultHeartbeatTicks) // the commit reaches backups on the heartbeat
		for i := 0; i < n; i++ {
			require.Equal(t, "1", nw.value(i, "a"), "n=%d replica %d", n, i)
		}
		nw.requireConverged()
	}
}

// Pitfall 6 and review item 7. A backup that misses a Prepare does not
// accept the next one past the gap: it asks for the missing state, fills the
// gap in order, and only then acknowledges, so its PrepareOK(n) still means
// it holds every op up to n.
func TestPrepareAfterGapTriggersStateTransferNotAHole(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1) // op 1, held by everyone
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("1"))))
	nw.deliverIf(func(p packet) bool { return p.to != 2 }) // 2 misses op 2
	nw.deliver()
	nw.step(0, request(1, 3, kv.PutOp("b", []byte("2"))))
	var sawGetState bool
	nw.deliverIf(func(p packet) bool { return true }) // 2 sees op 3 first
	for _, p := range nw.inflight {
		if p.from == 2 {
			require.IsType(t, &messages.GetState{}, p.msg, "the backup past a gap asks for state, never acknowledges")
			sawGetState = true
		}
	}
	require.True(t, sawGetState)
	require.Equal(t, uint64(1), nw.replicas[2].OpNumber(), "no hole: op 3 is not appended without op 2")
	nw.deliver()
	require.Equal(t, uint64(3), nw.replicas[2].OpNumber())
	nw.run(DefaultHeartbeatTicks)
	nw.requireConverged()
}

// A backup that missed the last Prepares learns of them from the primary's
// Commit heartbeat and fetches them.
func TestCommitBeyondLogTriggersStateTransfer(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("1"))))
	nw.deliverIf(func(p packet) bool { return p.to != 2 })
	nw.deliver()
	require.Equal(t, uint64(1), nw.replicas[2].OpNumber())
	nw.run(2 * DefaultHeartbeatTicks)
	nw.requireConverged()
	require.Equal(t, "1", nw.value(2, "a"))
}

// Pitfall 7 and review item 4. A request retried to every replica after a
// view change is executed once: the new primary answers it from the client
// table; backups forward it with the client's own reply address instead of
// answering, so the reply reaches the client and not a replica.
func TestRetryAfterViewChangeExecutesOnceAndOnlyPrimaryReplies(t *testing.T) {
	for _, n := range []int{3, 5} {
		nw := newNetwork(t, n)
		counters := make([]*countingSM, n)
		for i := range nw.replicas {
			counters[i] = &countingSM{StateMachine: nw.stores[i]}
			nw.replicas[i].sm = counters[i]
		}
		nw.register(0, 1)
		nw.put(0, 1, 2, "a", "1")
		nw.run(DefaultHeartbeatTicks)
		nw.replies = nil // the reply was lost
		nw.isolate(0)
		nw.run(DefaultInactivityTicks+5, 0)
		p := nw.primary()
		for i := 1; i < n; i++ {
			nw.step(i, request(1, 2, kv.PutOp("a", []byte("1"))))
		}
		nw.deliver()
		require.Equal(t, n-1, nw.repliesFor(1, 2), "n=%d: the new primary answers each copy from its client table", n)
		for _, r := range nw.replies {
			require.Equal(t, uint32(p), r.Replica, "only the primary replies")
		}
		for i := 1; i < n; i++ {
			require.Equal(t, 1, counters[i].applies, "n=%d replica %d executed the request once", n, i)
		}
	}
}

// Pitfall 7, the harder case: the request is in the log but not committed
// when the primary fails. The new primary must not append the retry again;
// when the op commits it is executed once and answered.
func TestRetryOfUncommittedRequestAfterViewChangeIsNotAppendedTwice(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("1"))))
	nw.deliverIf(func(p packet) bool { return p.to == 1 }) // 1 holds op 2; its PrepareOK is lost
	nw.dropAll()
	nw.isolate(0)
	nw.step(1, request(1, 2, kv.PutOp("a", []byte("1")))) // a retry at the backup
	nw.dropAll()
	nw.run(DefaultInactivityTicks+5, 0)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.step(1, request(1, 2, kv.PutOp("a", []byte("1"))))
	nw.deliver()
	nw.run(DefaultHeartbeatTicks, 0)
	require.Equal(t, uint64(2), nw.replicas[1].OpNumber(), "the retry is not a second log entry")
	require.NotNil(t, nw.replyFor(1, 2))
	nw.requireConverged(1, 2)
}

// The client table is checked again when an op executes, so even a request
// that reached the log twice runs once.
func TestDuplicateLogEntryOfARequestRunsOnce(t *testing.T) {
	nw := newNetwork(t, 3)
	counter := &countingSM{StateMachine: nw.stores[0]}
	nw.replicas[0].sm = counter
	nw.register(0, 1)
	nw.put(0, 1, 2, "a", "1")
	nw.do(0, func(r *Replica) {
		// Append the executed request a second time, as a primary that
		// forgot it had would.
		r.appendEntry(&messages.Entry{OpNumber: r.opNumber() + 1, View: r.viewNumber, ClientId: 1,
			RequestNumber: 2, Operation: kv.PutOp("a", []byte("1")), ReplyTo: testClient})
	})
	nw.deliver()
	require.Equal(t, uint64(3), nw.replicas[0].CommitNumber())
	require.Equal(t, 1, counter.applies)
}

// Pitfall 11. The commit quorum comes from the configuration: with three of
// five replicas cut off, the primary and one backup are no quorum, however
// few replicas are reachable.
func TestQuorumComesFromConfigurationNotReachability(t *testing.T) {
	nw := newNetwork(t, 5)
	nw.register(0, 1)
	nw.isolate(2)
	nw.isolate(3)
	nw.isolate(4)
	nw.put(0, 1, 2, "a", "1")
	nw.run(3*DefaultHeartbeatTicks, 2, 3, 4)
	require.Nil(t, nw.replyFor(1, 2), "2 of 5 is no quorum")
	require.Equal(t, uint64(1), nw.replicas[0].CommitNumber())

	nw.heal()
	nw.cut[0][3], nw.cut[3][0] = true, true
	nw.cut[0][4], nw.cut[4][0] = true, true
	nw.run(DefaultHeartbeatTicks, 3, 4)
	require.NotNil(t, nw.replyFor(1, 2), "3 of 5 is")
}

// Pitfall 12. An operation that is not read-only never runs on one replica
// alone: sent as a stale or linearizable read it is refused, and sent to a
// backup it is forwarded to the primary, not executed there.
func TestWritesAlwaysGoThroughTheLog(t *testing.T) {
	nw := newNetwork(t, 3)
	for _, mode := range []messages.ReadMode{messages.ReadMode_READ_MODE_STALE, messages.ReadMode_READ_MODE_LINEARIZABLE} {
		req := request(1, 1, kv.PutOp("a", []byte("1")))
		req.ReadMode = mode
		nw.step(1, req)
		nw.deliver()
		r := nw.replyFor(1, 1)
		require.NotNil(t, r, mode.String())
		require.Equal(t, messages.ReplyError_REPLY_ERROR_NOT_READ_ONLY, r.Error, mode.String())
		nw.replies = nil
	}
	require.Equal(t, "<absent>", nw.value(1, "a"))
	require.Equal(t, "<absent>", nw.value(0, "a"))

	out := nw.replicas[1].Step(request(1, 2, kv.PutOp("a", []byte("1"))))
	require.Len(t, out.Messages, 1)
	require.Equal(t, 0, out.Messages[0].To, "a backup forwards a write to the primary")
	require.Empty(t, out.Replies)
	require.Equal(t, "<absent>", nw.value(1, "a"))
}

// countingSM counts the operations applied through the log.
type countingSM struct {
	statemachine.StateMachine
	applies int
}

func (c *countingSM) Apply(op []byte) []byte {
	if !c.ReadOnly(op) {
		c.applies++
	}
	return c.StateMachine.Apply(op)
}
