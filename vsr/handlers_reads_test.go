package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

func uConfirmView(view, round uint64, from int) *messages.ConfirmView {
	return &messages.ConfirmView{ClusterId: uCluster, View: view, Round: round, Replica: uint32(from)}
}

func uConfirmViewOK(view, round uint64, from int) *messages.ConfirmViewOK {
	return &messages.ConfirmViewOK{ClusterId: uCluster, View: view, Round: round, Replica: uint32(from)}
}

func uLinRead(client, number uint64, key string) *messages.Request {
	return uRead(client, number, key, messages.ReadMode_READ_MODE_LINEARIZABLE)
}

// uRound returns the round of the ConfirmViews in out, failing unless every
// backup of n got one.
func uRound(t *testing.T, out Output, n int) uint64 {
	t.Helper()
	cvs := uMsgs[*messages.ConfirmView](out)
	require.Len(t, cvs, n-1)
	return cvs[0].Msg.Round
}

func TestReads_StaleReadServedByBackupAndMarkedStale(t *testing.T) {
	r, _ := uBackup(t, 3, 1, 2, 1)
	out := uStep(t, r, uRead(5, 1, "k1", messages.ReadMode_READ_MODE_STALE))
	assert.Empty(t, out.Messages, "not forwarded to the primary")
	require.Len(t, out.Replies, 1)
	rep := out.Replies[0].Reply
	assert.True(t, rep.Stale)
	assert.Equal(t, uint32(1), rep.Replica)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, rep.Error)
	assert.Equal(t, "v1", string(uResult(t, rep.Result).Value))

	out = uStep(t, r, uRead(5, 2, "k2", messages.ReadMode_READ_MODE_STALE))
	assert.False(t, uResult(t, out.Replies[0].Reply.Result).Found, "op 2 is not executed here yet")
	assert.Equal(t, uint64(2), r.OpNumber(), "no log entry")
	assert.Equal(t, uint64(1), r.CommitNumber())
}

func TestReads_NotReadOnlyOperationIsRefused(t *testing.T) {
	put := kv.PutOp("a", []byte("1"))
	b, bsm := uReplica(t, 3, 1)
	stale := uReq(5, 1, put)
	stale.ReadMode = messages.ReadMode_READ_MODE_STALE
	out := uStep(t, b, stale)
	require.Len(t, out.Replies, 1)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_NOT_READ_ONLY, out.Replies[0].Reply.Error)
	assert.Equal(t, 0, bsm.applies, "never applied outside the log")

	p, psm := uReplica(t, 3, 0)
	lin := uReq(5, 1, put)
	lin.ReadMode = messages.ReadMode_READ_MODE_LINEARIZABLE
	out = uStep(t, p, lin)
	require.Len(t, out.Replies, 1)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_NOT_READ_ONLY, out.Replies[0].Reply.Error)
	assert.Empty(t, out.Messages, "neither appended nor confirmed")
	assert.Equal(t, uint64(0), p.OpNumber())
	assert.Equal(t, 0, psm.applies)
}

func TestReads_LinearizableReadWaitsForFConfirmations(t *testing.T) {
	p, _ := uPrimary(t, 5, 1, 0)
	out := uStep(t, p, uLinRead(5, 1, "k1"))
	assert.Empty(t, out.Replies, "not before the view is confirmed")
	round := uRound(t, out, 5)
	assert.Equal(t, uint64(1), round&(1<<32-1), "the primary's first round")
	assert.Equal(t, uint64(1), p.OpNumber(), "a read makes no log entry")

	assert.Empty(t, uStep(t, p, uConfirmViewOK(0, round, 1)).Replies, "1 of f = 2")
	assert.Empty(t, uStep(t, p, uConfirmViewOK(0, round, 1)).Replies, "the same backup twice")
	assert.Empty(t, uStep(t, p, uConfirmViewOK(1, round, 2)).Replies, "another view's confirmation")

	out = uStep(t, p, uConfirmViewOK(0, round, 3))
	require.Len(t, out.Replies, 1)
	rep := out.Replies[0].Reply
	assert.False(t, rep.Stale)
	assert.Equal(t, uint64(1), rep.RequestNumber)
	assert.Equal(t, "v1", string(uResult(t, rep.Result).Value))
}

func TestReads_ConfirmationOfOlderRoundDoesNotServeLaterRead(t *testing.T) {
	p, _ := uPrimary(t, 5, 1, 0)
	r1 := uRound(t, uStep(t, p, uLinRead(5, 1, "k1")), 5)
	uStep(t, p, uConfirmViewOK(0, r1, 1))
	uStep(t, p, uConfirmViewOK(0, r1, 2))

	out := uStep(t, p, uLinRead(5, 2, "k1"))
	r2 := uRound(t, out, 5)
	require.Greater(t, r2, r1)
	assert.Empty(t, uStep(t, p, uConfirmViewOK(0, r1, 3)).Replies)
	assert.Empty(t, uStep(t, p, uConfirmViewOK(0, r1, 4)).Replies, "late answers to the old round")
	uStep(t, p, uConfirmViewOK(0, r2, 3))
	out = uStep(t, p, uConfirmViewOK(0, r2, 4))
	require.Len(t, out.Replies, 1)
	assert.Equal(t, uint64(2), out.Replies[0].Reply.RequestNumber)
}

func TestReads_ReadArrivingDuringRoundWaitsForNextRound(t *testing.T) {
	p, _ := uPrimary(t, 3, 1, 0)
	r1 := uRound(t, uStep(t, p, uLinRead(5, 1, "k1")), 3)
	out := uStep(t, p, uLinRead(6, 1, "k1"))
	assert.Empty(t, uMsgs[*messages.ConfirmView](out), "one round in flight at a time")

	out = uStep(t, p, uConfirmViewOK(0, r1, 1))
	require.Len(t, out.Replies, 1, "the round confirms only the read that came before it")
	assert.Equal(t, uint64(5), out.Replies[0].Reply.ClientId)
	r2 := uRound(t, out, 3)
	assert.Equal(t, r1+1, r2, "the next round starts at once for the waiting read")

	out = uStep(t, p, uConfirmViewOK(0, r2, 2))
	require.Len(t, out.Replies, 1)
	assert.Equal(t, uint64(6), out.Replies[0].Reply.ClientId)
}

func TestReads_ReadWaitsForItsReadIndexToCommit(t *testing.T) {
	p, _ := uReplica(t, 3, 0)
	uStep(t, p, uReq(1, uRegistered+1, kv.PutOp("a", []byte("new"))))
	round := uRound(t, uStep(t, p, uLinRead(5, 1, "a")), 3)
	out := uStep(t, p, uConfirmViewOK(0, round, 1))
	assert.Empty(t, out.Replies, "confirmed, but the write before it is not committed")

	out = uStep(t, p, uPrepareOK(0, 1, 2))
	require.Len(t, out.Replies, 2, "the write's reply and the read's")
	var read *messages.Reply
	for _, rep := range out.Replies {
		if rep.Reply.ClientId == 5 {
			read = rep.Reply
		}
	}
	require.NotNil(t, read)
	assert.Equal(t, "new", string(uResult(t, read.Result).Value), "the read sees the write before it")
}

func TestReads_UnansweredRoundIsReplacedEveryHeartbeatUntilAnswered(t *testing.T) {
	p, _ := uPrimary(t, 3, 0, 0)
	round := uRound(t, uStep(t, p, uLinRead(5, 1, "a")), 3)
	out := uTicks(t, p, 2)
	cvs := uMsgs[*messages.ConfirmView](out)
	require.Len(t, cvs, 2)
	next := cvs[0].Msg.Round
	assert.Greater(t, next, round, "a new round, so that a lost answer does not hold the read")
	out = uStep(t, p, uConfirmViewOK(0, next, 2))
	require.Len(t, out.Replies, 1, "an answer to the newer round confirms the older one too")
	assert.Empty(t, uMsgs[*messages.ConfirmView](uTicks(t, p, 2)), "nothing waits")
}

func TestReads_AnswerToAnOlderRoundConfirmsOnlyThatRound(t *testing.T) {
	p, _ := uPrimary(t, 3, 0, 0)
	first := uRound(t, uStep(t, p, uLinRead(5, 1, "a")), 3)
	uTicks(t, p, 2)                  // the first round is replaced by a second
	uStep(t, p, uLinRead(6, 1, "a")) // which this read waits for
	cvs := uMsgs[*messages.ConfirmView](uTicks(t, p, 2))
	require.NotEmpty(t, cvs)
	out := uStep(t, p, uConfirmViewOK(0, first, 1))
	require.Len(t, out.Replies, 1, "the read of round one is served")
	assert.Equal(t, uint64(5), out.Replies[0].Reply.ClientId)
	out = uStep(t, p, uConfirmViewOK(0, cvs[0].Msg.Round, 2))
	require.Len(t, out.Replies, 1)
	assert.Equal(t, uint64(6), out.Replies[0].Reply.ClientId)
}

func TestReads_PendingReadsAreBoundedAndTheRestIsBusy(t *testing.T) {
	p, _ := uPrimary(t, 3, 0, 0, func(c *Config) { c.PipelineMax = 4 })
	for c := uint64(1); c <= 4; c++ {
		out := uStep(t, p, uLinRead(c, 1, "a"))
		assert.Empty(t, out.Replies)
	}
	out := uStep(t, p, uLinRead(5, 1, "a"))
	require.Len(t, out.Replies, 1)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_BUSY, out.Replies[0].Reply.Error)
}

func TestReads_DeposedPrimaryNeverAnswers(t *testing.T) {
	p, _ := uPrimary(t, 3, 1, 0)
	b1, _ := uReplica(t, 3, 1)
	b2, _ := uReplica(t, 3, 2)
	uLeaveView(t, b1) // both backups have left view 0 for view 1
	uLeaveView(t, b2)
	require.Equal(t, uint64(1), b1.View())
	require.Equal(t, uint64(1), b2.View())
	backups := map[int]*Replica{1: b1, 2: b2}

	out := uStep(t, p, uLinRead(5, 1, "k1"))
	for k := 0; k < 5; k++ { // deliver the primary's messages, and the answers, a few heartbeats long
		for _, env := range out.Messages {
			if cv, ok := env.Msg.(*messages.ConfirmView); ok {
				ans := uStep(t, backups[env.To], cv)
				for _, a := range uMsgs[*messages.ConfirmViewOK](ans) {
					require.Empty(t, uStep(t, p, a.Msg).Replies, "deposed primary served a read")
				}
			}
		}
		out = uTicks(t, p, 2)
		require.Empty(t, out.Replies)
		if p.Status() == StatusNormal {
			require.NotEmpty(t, uMsgs[*messages.ConfirmView](out), "it keeps asking")
		}
	}
	require.Equal(t, StatusViewChange, p.Status(), "no backup answered for a timeout: it abdicated")
}

func TestReads_SingleReplicaServesLinearizableReadAtOnce(t *testing.T) {
	p, _ := uReplica(t, 1, 0)
	uStep(t, p, uReq(1, uRegistered+1, kv.PutOp("a", []byte("1"))))
	out := uStep(t, p, uLinRead(5, 1, "a"))
	require.Len(t, out.Replies, 1)
	assert.Equal(t, "1", string(uResult(t, out.Replies[0].Reply.Result).Value))
}

func TestOnConfirmView_BackupAnswersPrimaryOfItsView(t *testing.T) {
	b, _ := uReplica(t, 3, 1)
	out := uStep(t, b, uConfirmView(0, 4, 0))
	oks := uMsgs[*messages.ConfirmViewOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, 0, oks[0].To)
	assert.Equal(t, uint64(4), oks[0].Msg.Round)
	assert.Equal(t, uint64(0), oks[0].Msg.View)
	assert.Equal(t, uint32(1), oks[0].Msg.Replica)
}

func TestOnConfirmView_FromNonPrimaryIsDroppedAndLaterViewIsJoined(t *testing.T) {
	b, _ := uReplica(t, 3, 1)
	assert.Empty(t, uStep(t, b, uConfirmView(0, 1, 2)).Messages)
	assert.Equal(t, uint64(1), b.Drops()[DropBadReplica])

	out := uStep(t, b, uConfirmView(2, 1, 2))
	assert.Empty(t, uMsgs[*messages.ConfirmViewOK](out), "it does not hold view 2's log")
	assert.Equal(t, uint64(2), b.View())
	assert.True(t, b.syncing)
	assert.Len(t, uMsgs[*messages.GetState](out), 1)
}

func TestOnConfirmView_BackupNormalInLaterViewIgnoresOldPrimary(t *testing.T) {
	b, _ := uReplica(t, 3, 2)
	uStep(t, b, uStartView(1, 1, 0, nil))
	require.Equal(t, StatusNormal, b.Status())
	out := uStep(t, b, uConfirmView(0, 1, 0))
	assert.True(t, out.IsEmpty(), "it must not confirm view 0 for a deposed primary: %+v", out)
}
