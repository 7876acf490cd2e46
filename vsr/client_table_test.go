package vsr

// Client sessions: opened by a registration through the log, refused to
// clients without one, expired by op numbers (idle too long, or the least
// recently used past MaxSessions) the same way on every replica, and carried
// by checkpoints.

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// countApplies puts a countingSM in front of every replica's store.
func (nw *network) countApplies() []*countingSM {
	counters := make([]*countingSM, len(nw.replicas))
	for i, r := range nw.replicas {
		counters[i] = &countingSM{StateMachine: nw.stores[i]}
		r.sm = counters[i]
	}
	return counters
}

func TestSessions_UnregisteredWriteIsRefusedAndNeverExecuted(t *testing.T) {
	nw := newNetwork(t, 3)
	counters := nw.countApplies()
	for _, i := range []int{0, 1} { // at the primary, and forwarded by a backup
		number := uint64(1 + i)
		nw.step(i, request(9, number, kv.PutOp("a", []byte("1"))))
		nw.deliver()
		rep := nw.replyFor(9, number)
		require.NotNil(t, rep, "sent to replica %d", i)
		assert.Equal(t, messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED, rep.Error)
		assert.Equal(t, uint32(0), rep.Replica, "the primary refuses it")
	}
	nw.run(DefaultHeartbeatTicks)
	for i, r := range nw.replicas {
		assert.Equal(t, uint64(0), r.OpNumber(), "replica %d: nothing in the log", i)
		assert.Zero(t, counters[i].applies)
		assert.Equal(t, "<absent>", nw.value(i, "a"))
	}

	// An entry of a client without a session that reaches the log anyway
	// (a primary that appended it wrongly) is committed but not executed, on
	// every replica alike.
	b, sm := uBareReplica(t, 3, 1)
	out := uStep(t, b, uPrepare(0, 0, 1, uEntry(1, 0)))
	require.Len(t, out.Committed, 1)
	assert.Zero(t, sm.applies)
	assert.Equal(t, 0, b.Sessions())
}

func TestSessions_RegistrationOpensTheSessionOnEveryReplicaThroughTheLog(t *testing.T) {
	nw := newNetwork(t, 3)
	counters := nw.countApplies()
	nw.register(1, 5) // sent to a backup, forwarded
	nw.run(DefaultHeartbeatTicks)
	for i, r := range nw.replicas {
		assert.Equal(t, 1, r.Sessions(), "replica %d", i)
		assert.NotNil(t, r.clientTable.executed(5))
		assert.Zero(t, counters[i].applies, "a registration executes nothing")
		e := r.Entry(1)
		require.NotNil(t, e)
		assert.True(t, e.Register)
	}
	nw.put(0, 5, regNumber+1, "a", "1")
	require.NotNil(t, nw.replyFor(5, regNumber+1))
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, nw.replyFor(5, regNumber+1).Error)
	assert.Equal(t, "1", nw.value(0, "a"))
}

func TestSessions_IdleSessionExpiresOnEveryReplicaAtTheSameOpAndItsRetryIsNotExecuted(t *testing.T) {
	const idle = 3
	nw := newNetwork(t, 3, func(c *Config) { c.SessionIdleOps = idle })
	nw.register(0, 1, 2)           // ops 1, 2
	nw.put(0, 1, 2, "a", "from 1") // op 3: client 1 last executes here
	nw.run(DefaultHeartbeatTicks)
	counters := nw.countApplies()

	// Client 2 writes one op at a time; client 1's session must outlive op
	// 3+idle and be gone after op 3+idle+1, on every replica.
	for op := uint64(4); op <= 3+idle+1; op++ {
		nw.put(0, 2, op-1, "b", "from 2")
		nw.run(DefaultHeartbeatTicks)
		for i, r := range nw.replicas {
			require.Equal(t, op, r.CommitNumber(), "replica %d", i)
			alive := r.clientTable.executed(1) != nil
			require.Equal(t, op <= 3+idle, alive, "replica %d after op %d: session of client 1", i, op)
			require.NotNil(t, r.clientTable.executed(2), "client 2 keeps its session by using it")
		}
	}

	nw.put(0, 2, 3+idle+1, "a", "from 2") // someone else changes a
	nw.run(DefaultHeartbeatTicks)
	before := counters[0].applies
	nw.replies = nil
	nw.put(0, 1, 2, "a", "from 1") // client 1 retries its last request
	rep := nw.replyFor(1, 2)
	require.NotNil(t, rep)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED, rep.Error)
	nw.run(DefaultHeartbeatTicks)
	for i := range nw.replicas {
		assert.Equal(t, "from 2", nw.value(i, "a"), "replica %d: the retry did not run again", i)
	}
	assert.Equal(t, before, counters[0].applies)
}

func TestSessions_MaxSessionsEvictsTheLeastRecentlyUsed(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxSessions = 2 })
	nw.register(0, 1, 2)
	nw.put(0, 1, 2, "a", "1") // client 1 is now the more recently used
	nw.register(0, 3)         // a third session: client 2 must go
	nw.run(DefaultHeartbeatTicks)
	for i, r := range nw.replicas {
		assert.Equal(t, 2, r.Sessions(), "replica %d", i)
		assert.NotNil(t, r.clientTable.executed(1), "replica %d", i)
		assert.Nil(t, r.clientTable.executed(2), "replica %d: the least recently used is evicted", i)
		assert.NotNil(t, r.clientTable.executed(3), "replica %d", i)
	}
	nw.put(0, 2, 2, "b", "2")
	rep := nw.replyFor(2, 2)
	require.NotNil(t, rep)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED, rep.Error)
	assert.Equal(t, "<absent>", nw.value(0, "b"))
}

// uPutIn is uPut in the session opened by a registration at op session.
func uPutIn(client, session, number uint64, v []byte) *messages.Request {
	m := uPut(client, number, v)
	m.Session = session
	return m
}

// A write taken while its client had a session, whose session expired
// before it executed, is answered SESSION_EXPIRED and not executed; a retry
// of it is refused at once rather than waited for.
func TestSessions_WriteWhoseSessionExpiresInThePipelineIsNotExecuted(t *testing.T) {
	p, sm := uBareReplica(t, 3, 0, func(c *Config) { c.SessionIdleOps = 2 })
	uStep(t, p, uRegistration(1, 1)) // op 1: client 1's last op
	uStep(t, p, uRegistration(2, 1)) // op 2
	uStep(t, p, uPrepareOK(0, 2, 1))
	require.Equal(t, 2, p.Sessions())
	uStep(t, p, uPutIn(2, 2, 2, []byte("x"))) // op 3
	uStep(t, p, uPutIn(2, 2, 3, []byte("y"))) // op 4: after it client 1 is idle past 2 ops
	uStep(t, p, uPutIn(1, 1, 2, []byte("z"))) // op 5, taken while client 1 still has a session
	require.Equal(t, uint64(5), p.OpNumber())

	out := uStep(t, p, uPrepareOK(0, 5, 1))
	require.Len(t, out.Replies, 3)
	last := out.Replies[2].Reply
	assert.Equal(t, uint64(1), last.ClientId)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED, last.Error)
	assert.Equal(t, 2, sm.applies, "only client 2's writes ran")
	assert.Equal(t, "<absent>", uValue(sm, "k1"))

	out = uStep(t, p, uPutIn(1, 1, 2, []byte("z")))
	require.Len(t, out.Replies, 1, "the retry is answered, not taken for a request still in the log")
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED, out.Replies[0].Reply.Error)
	assert.Equal(t, uint64(5), p.OpNumber())
}

// The client table travels in the checkpoint: a replica that caught up by
// checkpoint transfer holds the same sessions, and as the new primary it
// answers a retry of an executed request from them without running it again.
func TestSessions_ClientTableSurvivesACheckpointTransfer(t *testing.T) {
	nw := laggingBackup(t)
	nw.run(3 * DefaultHeartbeatTicks)
	nw.requireConverged()
	r2 := nw.replicas[2]
	_, installed := r2.CheckpointStats()
	require.Equal(t, uint64(1), installed)
	assert.Equal(t, nw.replicas[0].clientTable.rows(), r2.clientTable.rows())

	last := nw.nextRequest(1) - 1
	lastOp := r2.clientTable.executed(1).lastOp
	assert.LessOrEqual(t, lastOp, r2.CheckpointOpNumber()+3)

	// Replica 2 becomes the primary of view 2.
	nw.isolate(0)
	nw.do(1, func(r *Replica) { r.startViewChange(2) })
	nw.do(2, func(r *Replica) { r.startViewChange(2) })
	nw.deliver()
	require.True(t, r2.IsPrimary())
	counter := &countingSM{StateMachine: nw.stores[2]}
	r2.sm = counter
	nw.replies = nil
	nw.step(2, request(1, last, kv.PutOp("key0", []byte("again"))))
	nw.deliver()
	rep := nw.replyFor(1, last)
	require.NotNil(t, rep)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, rep.Error, "answered from the client table")
	assert.Zero(t, counter.applies)
}

func TestClientTable_RowsAreOrderedByLastOpAndRestoreKeepsTheOrder(t *testing.T) {
	tab := newClientTable(100, 10)
	tab.record(7, 1, 1, nil)
	tab.record(8, 1, 2, nil)
	tab.record(7, 2, 3, []byte("r"))
	rows := tab.rows()
	require.Len(t, rows, 2)
	assert.Equal(t, uint64(8), rows[0].ClientId, "least recently executed first")
	assert.Equal(t, uint64(7), rows[1].ClientId)
	assert.Equal(t, uint64(3), rows[1].LastOp)

	other := newClientTable(100, 10)
	other.record(99, 1, 1, nil)
	other.restore([]*messages.ClientSession{rows[1], rows[0]}) // in any order
	assert.Equal(t, rows, other.rows())
	assert.Nil(t, other.executed(99), "restore replaces the table")

	other.expire(2 + 100 + 1) // client 8 idle since op 2
	assert.Nil(t, other.executed(8))
	assert.NotNil(t, other.executed(7))
}

// A registration delayed in the network and delivered after its client's
// session expired opens a new session, named by its own op number: the
// client's old write, delayed too, names the old session and is refused,
// not run a second time. With sessions told apart by request numbers alone,
// the late registration reopened the session at its old number and the old
// write looked new (the simulator's durability oracle found the late
// registrations in the log).
func TestSessions_LateRegistrationAfterExpiryDoesNotReviveOldRequests(t *testing.T) {
	const idle = 2
	nw := newNetwork(t, 3, func(c *Config) { c.SessionIdleOps = idle })
	nw.register(0, 1, 2) // ops 1, 2
	lateRegistration := registration(1, regNumber)
	lateWrite := request(1, regNumber+1, kv.PutOp("a", []byte("from 1")))
	lateWrite.Session = nw.sessions[1]
	nw.step(0, lateWrite) // op 3
	nw.deliver()
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, nw.replyFor(1, regNumber+1).GetError())

	for k := uint64(1); k <= idle+1; k++ { // client 2 writes until client 1's session expires
		nw.put(0, 2, regNumber+k, "b", "x")
	}
	nw.put(0, 2, regNumber+idle+2, "a", "from 2")
	nw.run(DefaultHeartbeatTicks)
	for i, r := range nw.replicas {
		require.Nil(t, r.clientTable.executed(1), "replica %d: client 1's session expired", i)
	}

	nw.replies = nil
	nw.step(0, lateRegistration)
	nw.deliver()
	nw.step(0, lateWrite)
	nw.deliver()
	nw.run(DefaultHeartbeatTicks)
	for i, r := range nw.replicas {
		assert.Equal(t, "from 2", nw.value(i, "a"), "replica %d: the old write did not run again", i)
		s := r.clientTable.executed(1)
		require.NotNil(t, s, "replica %d: the late registration opened a session", i)
		assert.NotEqual(t, lateWrite.Session, s.session, "replica %d: a new session, not the old one", i)
	}
	rep := nw.replyFor(1, regNumber+1)
	require.NotNil(t, rep)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED, rep.Error)
}
