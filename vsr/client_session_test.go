package vsr

// The client core's session: it registers before its first write, retries
// after BUSY, and after SESSION_EXPIRED reports ErrSessionExpired and
// registers again before its next write.

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

func sentRequest(t *testing.T, out ClientOutput) *messages.Request {
	t.Helper()
	require.NotEmpty(t, out.Messages)
	return out.Messages[0].Msg.(*messages.Request)
}

// uRegisteredClient is a client core whose registration (request 1) has been
// answered and whose first write (request 2, put a=1) is pending.
func uRegisteredClient(t *testing.T) (*Client, *messages.Request) {
	t.Helper()
	c := uClient(t)
	reg := sentRequest(t, mustSubmit(t, c, kv.PutOp("a", []byte("1")), messages.ReadMode_READ_MODE_LOG))
	require.True(t, reg.Register)
	write := sentRequest(t, c.Step(uReply(9, reg.RequestNumber, 0, 0)))
	return c, write
}

func mustSubmit(t *testing.T, c *Client, op []byte, mode messages.ReadMode) ClientOutput {
	t.Helper()
	out, err := c.Submit(op, mode)
	require.NoError(t, err)
	return out
}

func TestClientSession_RegistersBeforeItsFirstWriteOnly(t *testing.T) {
	c := uClient(t)
	op := kv.PutOp("a", []byte("1"))
	out := mustSubmit(t, c, op, messages.ReadMode_READ_MODE_LOG)
	require.Len(t, out.Messages, 1)
	reg := sentRequest(t, out)
	assert.True(t, reg.Register)
	assert.Empty(t, reg.Operation)
	assert.Equal(t, messages.ReadMode_READ_MODE_LOG, reg.ReadMode)
	assert.Equal(t, 0, out.Messages[0].To)
	assert.True(t, c.Pending())

	done := c.Step(uReply(9, reg.RequestNumber, 0, 0))
	assert.Nil(t, done.Done, "the registration is the client's own business")
	write := sentRequest(t, done)
	assert.False(t, write.Register)
	assert.Equal(t, op, write.Operation)
	assert.Greater(t, write.RequestNumber, reg.RequestNumber, "a session opened at s refuses requests numbered s or below")

	rep := uReply(9, write.RequestNumber, 0, 0)
	rep.Result = []byte("ok")
	res := c.Step(rep).Done
	require.NotNil(t, res)
	assert.Equal(t, write.RequestNumber, res.RequestNumber)
	assert.Equal(t, []byte("ok"), res.Value)
	assert.NoError(t, res.Err)

	next := sentRequest(t, mustSubmit(t, c, kv.PutOp("b", []byte("2")), messages.ReadMode_READ_MODE_LOG))
	assert.False(t, next.Register, "registered once, for every later write")
	assert.Equal(t, write.RequestNumber+1, next.RequestNumber)

	reader := uClient(t)
	read := sentRequest(t, mustSubmit(t, reader, kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE))
	assert.False(t, read.Register, "reads need no session")
}

func TestClientSession_RetriesAfterBusy(t *testing.T) {
	c, write := uRegisteredClient(t) // RetryTicks 4
	busy := uReply(9, write.RequestNumber, 0, 0)
	busy.Error = messages.ReplyError_REPLY_ERROR_BUSY
	out := c.Step(busy)
	assert.Nil(t, out.Done, "BUSY is not an outcome")
	assert.Empty(t, out.Messages, "not at once")
	assert.True(t, c.Pending())
	assert.Empty(t, c.Tick().Messages)
	out = c.Tick()
	require.Len(t, out.Messages, 1, "after half the retry time, to the primary only")
	assert.Equal(t, 0, out.Messages[0].To, "the primary of view 0, which answered BUSY")
	assert.Equal(t, write.RequestNumber, out.Messages[0].Msg.(*messages.Request).RequestNumber, "the same request")
	res := c.Step(uReply(9, write.RequestNumber, 0, 0)).Done
	require.NotNil(t, res)
	assert.NoError(t, res.Err)

	// BUSY during the registration is retried the same way.
	c2 := uClient(t)
	reg := sentRequest(t, mustSubmit(t, c2, kv.PutOp("a", []byte("1")), messages.ReadMode_READ_MODE_LOG))
	busy = uReply(9, reg.RequestNumber, 0, 0)
	busy.Error = messages.ReplyError_REPLY_ERROR_BUSY
	assert.Nil(t, c2.Step(busy).Done)
	c2.Tick()
	again := sentRequest(t, c2.Tick())
	assert.True(t, again.Register)
	assert.Equal(t, reg.RequestNumber, again.RequestNumber)
}

func TestClientSession_ReportsSessionExpiredAndRegistersAgainOnTheNextWrite(t *testing.T) {
	c, write := uRegisteredClient(t)
	expired := uReply(9, write.RequestNumber, 0, 0)
	expired.Error = messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED
	res := c.Step(expired).Done
	require.NotNil(t, res)
	assert.ErrorIs(t, res.Err, ErrSessionExpired)
	assert.Equal(t, write.RequestNumber, res.RequestNumber)
	assert.False(t, c.Pending())

	reg := sentRequest(t, mustSubmit(t, c, kv.PutOp("b", []byte("2")), messages.ReadMode_READ_MODE_LOG))
	assert.True(t, reg.Register, "a new session first")
	assert.Greater(t, reg.RequestNumber, write.RequestNumber)
	next := sentRequest(t, c.Step(uReply(9, reg.RequestNumber, 0, 0)))
	assert.Greater(t, next.RequestNumber, reg.RequestNumber)
	assert.Equal(t, kv.PutOp("b", []byte("2")), next.Operation)
}

func TestClientSession_FailedRegistrationIsReportedAsTheCallersRequest(t *testing.T) {
	for _, code := range []messages.ReplyError{messages.ReplyError_REPLY_ERROR_INVALID_REQUEST,
		messages.ReplyError_REPLY_ERROR_TOO_LARGE} {
		c := uClient(t)
		reg := sentRequest(t, mustSubmit(t, c, kv.PutOp("a", []byte("1")), messages.ReadMode_READ_MODE_LOG))
		rep := uReply(9, reg.RequestNumber, 0, 0)
		rep.Error = code
		res := c.Step(rep).Done
		require.NotNil(t, res, "%v", code)
		assert.Error(t, res.Err)
		assert.Equal(t, reg.RequestNumber+1, res.RequestNumber, "the caller's request, not the registration")
		assert.False(t, c.Pending())
	}
}

// clientOn runs a client core against a network: its messages are stepped
// into the replicas, and the replicas' replies to it are handed back.
type clientOn struct {
	nw    *network
	c     *Client
	seen  int // replies of nw already handed over
	steps int
}

func (cn *clientOn) send(out ClientOutput) *Result {
	cn.nw.t.Helper()
	for {
		for _, env := range out.Messages {
			cn.nw.step(env.To, env.Msg)
		}
		cn.nw.deliver()
		out = ClientOutput{}
		for ; cn.seen < len(cn.nw.replies); cn.seen++ {
			next := cn.c.Step(cn.nw.replies[cn.seen])
			if next.Done != nil {
				return next.Done
			}
			out.Messages = append(out.Messages, next.Messages...)
		}
		if len(out.Messages) == 0 {
			cn.nw.run(1)
			out = cn.c.Tick()
		}
		cn.steps++
		require.Less(cn.nw.t, cn.steps, 10000, "the request never completed")
	}
}

func (cn *clientOn) submit(op []byte) *Result {
	cn.nw.t.Helper()
	out, err := cn.c.Submit(op, messages.ReadMode_READ_MODE_LOG)
	require.NoError(cn.nw.t, err)
	return cn.send(out)
}

func TestClientSession_AgainstAGroupRetriesBusyRegistersAndRegistersAgainAfterExpiry(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.SessionIdleOps, c.PipelineMax = 2, 1 })
	c, err := NewClient(ClientConfig{ClusterID: testCluster, ClientID: 1, ReplicaCount: 3, ReplyTo: testClient,
		RetryTicks: 4})
	require.NoError(t, err)
	cn := &clientOn{nw: nw, c: c}

	// Client 2's write fills the pipeline (its Prepares are lost until the
	// heartbeat resends them).
	nw.register(0, 2)
	nw.step(0, request(2, 2, kv.PutOp("b", []byte("w"))))
	nw.dropAll()
	require.Equal(t, uint64(2), nw.replicas[0].OpNumber())

	res := cn.submit(kv.PutOp("a", []byte("1")))
	require.NoError(t, res.Err)
	busy := false
	for _, r := range nw.replies {
		busy = busy || r.ClientId == 1 && r.Error == messages.ReplyError_REPLY_ERROR_BUSY
	}
	assert.True(t, busy, "the client was told BUSY, and retried")
	assert.Equal(t, "1", nw.value(0, "a"))
	e3, e4 := nw.replicas[0].Entry(3), nw.replicas[0].Entry(4)
	require.NotNil(t, e4)
	assert.True(t, e3.Register, "the registration, then the write")
	assert.Equal(t, uint64(1), e4.ClientId)

	// Another client's ops make client 1's session expire (idle past op 6).
	for number := uint64(3); number <= 5; number++ {
		nw.put(0, 2, number, "b", "x")
	}
	nw.run(DefaultHeartbeatTicks)
	require.Nil(t, nw.replicas[0].clientTable.executed(1))

	res = cn.submit(kv.PutOp("a", []byte("2")))
	assert.ErrorIs(t, res.Err, ErrSessionExpired)
	assert.Equal(t, "1", nw.value(0, "a"))
	res = cn.submit(kv.PutOp("a", []byte("3")))
	require.NoError(t, res.Err, "registered again")
	assert.Equal(t, "3", nw.value(0, "a"))
}

// The registration's reply names the session; the client puts that name on
// every later request, the write queued behind the registration included,
// and takes the new name when it registers again after an expiry.
func TestClientSession_RequestsCarryTheSessionTheRegistrationOpened(t *testing.T) {
	c := uClient(t)
	reg := sentRequest(t, mustSubmit(t, c, kv.PutOp("a", []byte("1")), messages.ReadMode_READ_MODE_LOG))
	rep := uReply(9, reg.RequestNumber, 0, 0)
	rep.Session = 17
	write := sentRequest(t, c.Step(rep))
	assert.Equal(t, uint64(17), write.Session, "the write queued behind the registration")
	ok := uReply(9, write.RequestNumber, 0, 0)
	require.NotNil(t, c.Step(ok).Done)
	next := sentRequest(t, mustSubmit(t, c, kv.PutOp("b", []byte("2")), messages.ReadMode_READ_MODE_LOG))
	assert.Equal(t, uint64(17), next.Session)

	expired := uReply(9, next.RequestNumber, 0, 0)
	expired.Error = messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED
	require.ErrorIs(t, c.Step(expired).Done.Err, ErrSessionExpired)
	again := sentRequest(t, mustSubmit(t, c, kv.PutOp("c", []byte("3")), messages.ReadMode_READ_MODE_LOG))
	require.True(t, again.Register)
	assert.Zero(t, again.Session, "a registration names no session")
	rep = uReply(9, again.RequestNumber, 0, 0)
	rep.Session = 40
	assert.Equal(t, uint64(40), sentRequest(t, c.Step(rep)).Session, "the new session's name")
}
