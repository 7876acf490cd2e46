package vsr

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

func uClient(t *testing.T, mod ...func(*ClientConfig)) *Client {
	t.Helper()
	cfg := ClientConfig{ClusterID: uCluster, ClientID: 9, ReplicaCount: 3, ReplyTo: uAddr, RetryTicks: 4}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := NewClient(cfg)
	require.NoError(t, err)
	return c
}

// The tests of this file are about the client core's mechanics (numbers,
// views, retries) and submit reads, which need no session; the session a
// write needs is client_session_test.go's business.

func uReply(client, number, view uint64, replica int) *messages.Reply {
	return &messages.Reply{ClientId: client, RequestNumber: number, View: view, Replica: uint32(replica)}
}

func TestNewClient_RejectsBadConfig(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*ClientConfig)
		also   error
	}{
		{"client ID 0", func(c *ClientConfig) { c.ClientID = 0 }, nil},
		{"even n", func(c *ClientConfig) { c.ReplicaCount = 2 }, ErrReplicaCount},
		{"n=0", func(c *ClientConfig) { c.ReplicaCount = 0 }, ErrReplicaCount},
		{"no reply address", func(c *ClientConfig) { c.ReplyTo = nil }, nil},
		{"negative retry", func(c *ClientConfig) { c.RetryTicks = -1 }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ClientConfig{ClusterID: uCluster, ClientID: 9, ReplicaCount: 3, ReplyTo: uAddr}
			tc.modify(&cfg)
			c, err := NewClient(cfg)
			assert.Nil(t, c)
			assert.True(t, errors.Is(err, ErrClientConfig), "got %v", err)
			if tc.also != nil {
				assert.True(t, errors.Is(err, tc.also), "got %v", err)
			}
		})
	}
}

func TestClient_DefaultsRetryTicksAndFirstRequestNumber(t *testing.T) {
	c := uClient(t, func(c *ClientConfig) { c.RetryTicks = 0 })
	assert.Equal(t, 20, c.cfg.RetryTicks)
	_, err := c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), c.RequestNumber())

	c = uClient(t, func(c *ClientConfig) { c.FirstRequestNumber = 50 })
	_, err = c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	assert.Equal(t, uint64(50), c.RequestNumber(), "a restarted client continues after its old numbers")
}

func TestClient_SubmitSendsOneRequestToBelievedPrimary(t *testing.T) {
	c := uClient(t)
	op := kv.PutOp("a", []byte("1"))
	out, err := c.Submit(op, messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	require.Len(t, out.Messages, 1)
	assert.Equal(t, 0, out.Messages[0].To)
	req := out.Messages[0].Msg.(*messages.Request)
	assert.Equal(t, uCluster, req.ClusterId)
	assert.Equal(t, uint64(9), req.ClientId)
	assert.Equal(t, uint64(1), req.RequestNumber)
	assert.Equal(t, op, req.Operation)
	assert.Equal(t, uAddr, req.ReplyTo)
	assert.Equal(t, messages.ReadMode_READ_MODE_LINEARIZABLE, req.ReadMode)
	assert.True(t, c.Pending())
}

func TestClient_SubmitWhileInFlightFails(t *testing.T) {
	c := uClient(t)
	_, err := c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	out, err := c.Submit(kv.GetOp("b"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	assert.ErrorIs(t, err, ErrRequestInFlight)
	assert.Empty(t, out.Messages)
	assert.Equal(t, uint64(1), c.RequestNumber(), "a refused submit uses no request number")
}

func TestClient_SubmitEmptyOperationFails(t *testing.T) {
	c := uClient(t)
	_, err := c.Submit(nil, messages.ReadMode_READ_MODE_LINEARIZABLE)
	assert.ErrorIs(t, err, ErrEmptyOperation)
	assert.False(t, c.Pending())
}

func TestClient_ReplyCompletesRequestAndTeachesHigherView(t *testing.T) {
	c := uClient(t)
	_, err := c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	rep := uReply(9, 1, 4, 1)
	rep.Result = []byte("x")
	out := c.Step(rep)
	require.NotNil(t, out.Done)
	assert.Equal(t, &Result{RequestNumber: 1, Value: []byte("x"), View: 4, Replica: 1}, out.Done)
	assert.False(t, c.Pending())
	assert.Equal(t, uint64(4), c.View())
	assert.Equal(t, 1, c.Primary(), "view 4 mod 3")

	out, err = c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	assert.Equal(t, 1, out.Messages[0].To, "the next request goes to the new primary")
}

func TestClient_NeverLearnsALowerViewOrAStaleReplyView(t *testing.T) {
	c := uClient(t)
	c.Step(uReply(9, 0, 4, 1))
	require.Equal(t, uint64(4), c.View())
	c.Step(uReply(9, 0, 2, 2))
	assert.Equal(t, uint64(4), c.View(), "a lower view is not learned")
	stale := uReply(9, 0, 8, 2)
	stale.Stale = true
	c.Step(stale)
	assert.Equal(t, uint64(4), c.View(), "a stale read's view is not learned")
}

func TestClient_IgnoresUnrelatedReplies(t *testing.T) {
	c := uClient(t)
	_, err := c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	assert.Nil(t, c.Step(nil).Done)
	assert.Nil(t, c.Step(uReply(8, 1, 0, 0)).Done, "another client's reply")
	assert.Equal(t, uint64(0), c.View(), "another client's reply teaches nothing")
	assert.Nil(t, c.Step(uReply(9, 2, 0, 0)).Done, "a reply to another request")
	assert.True(t, c.Pending())
}

func TestClient_TickResendsToAllAfterRetryTicks(t *testing.T) {
	c := uClient(t)
	assert.Empty(t, c.Tick().Messages, "nothing pending, nothing to resend")
	_, err := c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	for k := 1; k < 4; k++ {
		assert.Empty(t, c.Tick().Messages, "tick %d", k)
	}
	out := c.Tick()
	require.Len(t, out.Messages, 3)
	for j, env := range out.Messages {
		assert.Equal(t, j, env.To)
		assert.Equal(t, uint64(1), env.Msg.(*messages.Request).RequestNumber, "the same request, not a new one")
	}
	assert.Empty(t, c.Tick().Messages, "the wait starts again")
}

func TestClient_CancelDropsPendingAndIgnoresLateReply(t *testing.T) {
	c := uClient(t)
	_, err := c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	c.Cancel()
	assert.False(t, c.Pending())
	assert.Nil(t, c.Step(uReply(9, 1, 0, 0)).Done)
	assert.Empty(t, c.Tick().Messages)
	out, err := c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_LINEARIZABLE)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), out.Messages[0].Msg.(*messages.Request).RequestNumber,
		"the next request never reuses the cancelled one's number")
}

func TestClient_MapsReplyErrors(t *testing.T) {
	cases := []struct {
		code  messages.ReplyError
		want  error
		stale bool
	}{
		{messages.ReplyError_REPLY_ERROR_NONE, nil, false},
		{messages.ReplyError_REPLY_ERROR_NOT_READ_ONLY, ErrNotReadOnly, true},
		{messages.ReplyError_REPLY_ERROR_INVALID_REQUEST, ErrInvalidRequest, false},
	}
	for _, tc := range cases {
		c := uClient(t)
		_, err := c.Submit(kv.GetOp("a"), messages.ReadMode_READ_MODE_STALE)
		require.NoError(t, err)
		rep := uReply(9, 1, 0, 2)
		rep.Error, rep.Stale = tc.code, tc.stale
		out := c.Step(rep)
		require.NotNil(t, out.Done)
		assert.Equal(t, tc.want, out.Done.Err, "%v", tc.code)
		assert.Equal(t, tc.stale, out.Done.Stale)
	}
}
