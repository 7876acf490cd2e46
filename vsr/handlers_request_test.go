package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

func TestOnRequest_PrimaryAppendsAndPreparesEveryBackupOnce(t *testing.T) {
	r, sm := uReplica(t, 5, 0)
	op := kv.PutOp("a", []byte("1"))
	out := uStep(t, r, uReq(1, uRegistered+1, op))

	require.Equal(t, uint64(1), r.OpNumber())
	e := r.Entry(1)
	assert.Equal(t, uint64(1), e.OpNumber)
	assert.Equal(t, uint64(0), e.View)
	assert.Equal(t, uint64(1), e.ClientId)
	assert.Equal(t, uint64(uRegistered+1), e.RequestNumber)
	assert.Equal(t, op, e.Operation)
	assert.True(t, proto.Equal(uAddr, e.ReplyTo))

	preps := uMsgs[*messages.Prepare](out)
	require.Len(t, out.Messages, 4, "one Prepare per backup and nothing else")
	assert.ElementsMatch(t, []int{1, 2, 3, 4}, uTargets(preps))
	for _, p := range preps {
		assert.Equal(t, uCluster, p.Msg.ClusterId)
		assert.Equal(t, uint64(0), p.Msg.View)
		assert.Equal(t, uint32(0), p.Msg.Replica)
		assert.Equal(t, uint64(0), p.Msg.CommitNumber)
		require.Len(t, p.Msg.Entries, 1)
		assert.Same(t, e, p.Msg.Entries[0])
	}
	assert.Empty(t, out.Replies, "not committed yet")
	assert.Equal(t, uint64(0), r.CommitNumber())
	assert.Equal(t, 0, sm.applies, "nothing executes before commit")

	out = uStep(t, r, uReq(2, uRegistered+1, kv.PutOp("b", []byte("2"))))
	preps = uMsgs[*messages.Prepare](out)
	require.Len(t, preps, 4)
	for _, p := range preps {
		require.Len(t, p.Msg.Entries, 1, "the next Prepare carries only the new entry")
		assert.Equal(t, uint64(2), p.Msg.Entries[0].OpNumber)
	}
}

func TestOnRequest_RetryOfExecutedRequestResendsStoredReplyWithoutReapplying(t *testing.T) {
	r, sm := uReplica(t, 3, 0)
	uStep(t, r, uReq(1, uRegistered+1, kv.PutOp("a", []byte("1"))))
	out := uStep(t, r, uPrepareOK(0, 1, 1))
	require.Len(t, out.Replies, 1)
	first := out.Replies[0].Reply
	require.Equal(t, 1, sm.applies)

	out = uStep(t, r, uReq(1, uRegistered+1, kv.PutOp("a", []byte("1"))))
	require.Len(t, out.Replies, 1)
	assert.Equal(t, uint64(uRegistered+1), out.Replies[0].Reply.RequestNumber)
	assert.Equal(t, first.Result, out.Replies[0].Reply.Result, "the stored result")
	assert.True(t, proto.Equal(uAddr, out.Replies[0].To))
	assert.Empty(t, out.Messages, "no new Prepare")
	assert.Equal(t, uint64(1), r.OpNumber(), "not appended again")
	assert.Equal(t, 1, sm.applies, "not applied again")
}

func TestOnRequest_RetryOfInProgressRequestIsDropped(t *testing.T) {
	r, _ := uReplica(t, 3, 0)
	uStep(t, r, uReq(1, uRegistered+1, kv.PutOp("a", []byte("1"))))
	out := uStep(t, r, uReq(1, uRegistered+1, kv.PutOp("a", []byte("1"))))
	assert.True(t, out.IsEmpty(), "got %+v", out)
	assert.Equal(t, uint64(1), r.OpNumber())
}

func TestOnRequest_OlderRequestNumberIsDropped(t *testing.T) {
	r, sm := uReplica(t, 3, 0)
	uStep(t, r, uReq(1, 5, kv.PutOp("a", []byte("5"))))
	uStep(t, r, uPrepareOK(0, 1, 1))
	require.Equal(t, uint64(1), r.CommitNumber())

	out := uStep(t, r, uReq(1, 4, kv.PutOp("a", []byte("4"))))
	assert.True(t, out.IsEmpty(), "older than the executed one: got %+v", out)

	uStep(t, r, uReq(1, 7, kv.PutOp("a", []byte("7"))))
	out = uStep(t, r, uReq(1, 6, kv.PutOp("a", []byte("6"))))
	assert.True(t, out.IsEmpty(), "older than the in-progress one: got %+v", out)
	assert.Equal(t, uint64(2), r.OpNumber())
	assert.Equal(t, 1, sm.applies)
}

func TestOnRequest_InvalidRequestGetsErrorReplyAndCountsDrop(t *testing.T) {
	cases := map[string]*messages.Request{
		"client 0":        uReq(0, 1, kv.GetOp("a")),
		"request 0":       uReq(1, 0, kv.GetOp("a")),
		"empty operation": uReq(1, 1, nil),
	}
	for name, m := range cases {
		for _, i := range []int{0, 1} { // primary and backup alike
			r, _ := uReplica(t, 3, i)
			out := uStep(t, r, m)
			require.Len(t, out.Replies, 1, "%s at replica %d", name, i)
			rep := out.Replies[0].Reply
			assert.Equal(t, messages.ReplyError_REPLY_ERROR_INVALID_REQUEST, rep.Error, name)
			assert.Equal(t, m.ClientId, rep.ClientId)
			assert.Equal(t, m.RequestNumber, rep.RequestNumber)
			assert.Equal(t, uint32(i), rep.Replica)
			assert.Empty(t, out.Messages, "%s: neither appended nor forwarded", name)
			assert.Equal(t, uint64(0), r.OpNumber())
			assert.Equal(t, uint64(1), r.Drops()[DropMalformed], name)
		}
	}
}

func TestOnRequest_BackupForwardsToPrimaryWithReplyToUnchanged(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	m := uReq(1, uRegistered+1, kv.PutOp("a", []byte("1")))
	out := uStep(t, r, m)
	require.Len(t, out.Messages, 1)
	assert.Equal(t, 0, out.Messages[0].To)
	fwd, ok := out.Messages[0].Msg.(*messages.Request)
	require.True(t, ok)
	assert.True(t, proto.Equal(m, fwd), "forwarded as is")
	assert.True(t, proto.Equal(uAddr, fwd.ReplyTo), "the reply still goes to the client")
	assert.Empty(t, out.Replies)
	assert.Equal(t, uint64(0), r.OpNumber(), "a backup never appends a request")
}

func TestOnRequest_BackupForwardsLinearizableReadToPrimary(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	out := uStep(t, r, uRead(1, 1, "a", messages.ReadMode_READ_MODE_LINEARIZABLE))
	require.Len(t, out.Messages, 1)
	assert.Equal(t, 0, out.Messages[0].To)
	assert.Empty(t, out.Replies, "a backup never answers a linearizable read")
}

func TestOnRequest_NonNormalReplicaDropsRequest(t *testing.T) {
	vc, _ := uReplica(t, 3, 1)
	uLeaveView(t, vc) // inactivity timeout: view change to view 1, whose primary it is
	require.Equal(t, StatusViewChange, vc.Status())
	rec, _ := uReplica(t, 3, 1, uRecovering)
	for _, r := range []*Replica{vc, rec} {
		for _, m := range []*messages.Request{
			uReq(1, 1, kv.PutOp("a", []byte("1"))),
			uRead(1, 1, "a", messages.ReadMode_READ_MODE_STALE),
			uReq(0, 0, nil),
		} {
			out := uStep(t, r, m)
			assert.True(t, uSilent(out), "%s replica answered %v: %+v", r.Status(), m, out)
		}
		assert.Equal(t, uint64(0), r.OpNumber())
	}
}

func TestOnRequest_SingleReplicaCommitsAndRepliesImmediately(t *testing.T) {
	r, sm := uReplica(t, 1, 0)
	out := uStep(t, r, uReq(1, uRegistered+1, kv.PutOp("a", []byte("1"))))
	assert.Empty(t, out.Messages)
	require.Len(t, out.Committed, 1)
	require.Len(t, out.Replies, 1)
	assert.Equal(t, uint64(uRegistered+1), out.Replies[0].Reply.RequestNumber)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, out.Replies[0].Reply.Error)
	assert.Equal(t, uint64(1), r.CommitNumber())
	assert.Equal(t, "1", uValue(sm, "a"))
}
