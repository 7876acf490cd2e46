package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// ---------------------------------------------------------------------------
// onPrepare

func TestOnPrepare_InOrderPrepareIsAppendedAndAcknowledgedToPrimary(t *testing.T) {
	r, sm := uReplica(t, 3, 2)
	out := uStep(t, r, uPrepare(0, 0, 0, uLog(1, 2, 0)...))
	assert.Equal(t, uint64(2), r.OpNumber())
	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, out.Messages, 1)
	require.Len(t, oks, 1)
	assert.Equal(t, 0, oks[0].To)
	assert.Equal(t, uint64(0), oks[0].Msg.View)
	assert.Equal(t, uint64(2), oks[0].Msg.OpNumber)
	assert.Equal(t, uint32(2), oks[0].Msg.Replica)
	assert.Equal(t, 0, sm.applies, "a backup does not execute what is not committed")
}

func TestOnPrepare_PrepareOKGoesToPrimaryOfTheMessageView(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uStep(t, r, uStartView(1, 1, 0, nil)) // normal in view 1, primary 1
	out := uStep(t, r, uPrepare(1, 1, 0, uEntry(1, 1)))
	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, 1, oks[0].To, "to the primary of view 1, not replica 0")
	assert.Equal(t, uint64(1), oks[0].Msg.View)
}

func TestOnPrepare_GapRequestsStateAndNeitherAppendsNorAcknowledges(t *testing.T) {
	r, _ := uBackup(t, 3, 1, 1, 0)
	out := uStep(t, r, uPrepare(0, 0, 0, uEntry(3, 0)))
	assert.Equal(t, uint64(1), r.OpNumber(), "no hole")
	assert.Empty(t, uMsgs[*messages.PrepareOK](out))
	gs := uMsgs[*messages.GetState](out)
	require.Len(t, gs, 1)
	assert.Equal(t, 0, gs[0].To)
	assert.Equal(t, uint64(0), gs[0].Msg.View)
	assert.Equal(t, uint64(1), gs[0].Msg.OpNumber, "asks for what follows its own op number")
	assert.Equal(t, uint32(1), gs[0].Msg.Replica)
}

func TestOnPrepare_GapStillExecutesCommittedOpsItHolds(t *testing.T) {
	r, sm := uBackup(t, 3, 1, 2, 0)
	uStep(t, r, uPrepare(0, 0, 2, uEntry(4, 0)))
	assert.Equal(t, uint64(2), r.CommitNumber())
	assert.Equal(t, "v2", uValue(sm, "k2"))
}

func TestOnPrepare_CommitNumberPastTheLogCommitsNothing(t *testing.T) {
	r, sm := uBackup(t, 3, 1, 2, 0)
	uStep(t, r, uPrepare(0, 0, 3, uEntry(4, 0)))
	assert.Equal(t, uint64(0), r.CommitNumber(), "op 3 is not in the log: the number may be forged")
	assert.Equal(t, 0, sm.applies)
}

func TestOnPrepare_DuplicateIsReacknowledgedWithoutDoubleAppend(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	p := uPrepare(0, 0, 0, uEntry(1, 0))
	uStep(t, r, p)
	out := uStep(t, r, p)
	assert.Equal(t, uint64(1), r.OpNumber())
	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, oks, 1, "a lost PrepareOK is repaired by the resent Prepare")
	assert.Equal(t, uint64(1), oks[0].Msg.OpNumber)

	out = uStep(t, r, uPrepare(0, 0, 0, uLog(1, 3, 0)...)) // overlapping batch
	assert.Equal(t, uint64(3), r.OpNumber())
	for op := uint64(1); op <= 3; op++ {
		assert.Equal(t, op, r.Entry(op).OpNumber)
	}
	assert.Equal(t, uint64(3), uMsgs[*messages.PrepareOK](out)[0].Msg.OpNumber)
}

func TestOnPrepare_OlderViewPrepareIsIgnored(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uStep(t, r, uStartView(1, 1, 0, nil))
	out := uStep(t, r, uPrepare(0, 0, 0, uEntry(1, 0)))
	assert.True(t, out.IsEmpty(), "got %+v", out)
	assert.Equal(t, uint64(0), r.OpNumber())
	assert.Equal(t, uint64(1), r.View())
	assert.Equal(t, uint64(0), r.Drops().Total(), "ignored, not malformed")
}

func TestOnPrepare_FromNonPrimaryIsDroppedAsBadReplica(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	out := uStep(t, r, uPrepare(0, 2, 0, uEntry(1, 0)))
	assert.Empty(t, out.Messages)
	assert.Equal(t, uint64(0), r.OpNumber())
	assert.Equal(t, uint64(1), r.Drops()[DropBadReplica])
}

func TestOnPrepare_MalformedBatchesAreDropped(t *testing.T) {
	huge := uint64(MaxPrepareEntries + 1)
	cases := map[string]*messages.Prepare{
		"more entries than any Prepare may carry":    uPrepare(0, 0, huge, uLog(1, huge, 0)...),
		"more uncommitted entries than the pipeline": uPrepare(0, 0, 0, uLog(1, 3, 0)...),
		"empty":           uPrepare(0, 0, 0),
		"not consecutive": uPrepare(0, 0, 0, uEntry(1, 0), uEntry(3, 0)),
		"op number 0":     uPrepare(0, 0, 0, uEntry(0, 0), uEntry(1, 0)),
		"nil entry":       uPrepare(0, 0, 0, uEntry(1, 0), nil),
	}
	for name, p := range cases {
		pipeline := 2
		if len(p.Entries) > 3 {
			pipeline = MaxPrepareEntries // only the entry bound can refuse it
		}
		r, _ := uReplica(t, 3, 1, func(c *Config) { c.MaxBatch, c.PipelineMax = 1, pipeline })
		out := uStep(t, r, p)
		assert.Empty(t, out.Messages, name)
		assert.Equal(t, uint64(0), r.OpNumber(), name)
		assert.Equal(t, uint64(1), r.Drops()[DropMalformed], name)
	}
}

// A receiver checks a Prepare against the protocol's bounds, not its own
// MaxBatch: replicas configured differently still understand each other.
func TestOnPrepare_BatchLargerThanOwnMaxBatchIsTaken(t *testing.T) {
	r, _ := uReplica(t, 3, 1, func(c *Config) { c.MaxBatch = 1 })
	out := uStep(t, r, uPrepare(0, 0, 0, uLog(1, 3, 0)...))
	assert.Equal(t, uint64(3), r.OpNumber())
	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, uint64(3), oks[0].Msg.OpNumber)
}

func TestOnPrepare_LaterViewMovesToThatViewSyncingAndFetchesLog(t *testing.T) {
	r, _ := uBackup(t, 3, 2, 2, 1)
	out := uStep(t, r, uPrepare(1, 1, 2, uEntry(3, 1)))

	assert.Equal(t, uint64(1), r.View())
	assert.Equal(t, StatusViewChange, r.Status())
	assert.True(t, r.syncing)
	assert.Equal(t, uint64(0), r.LastNormalView(), "it was never normal in view 1")
	assert.Equal(t, uint64(2), r.OpNumber(), "keeps its log")
	assert.Equal(t, uint64(1), r.CommitNumber())
	assert.Empty(t, uMsgs[*messages.PrepareOK](out), "no PrepareOK before it holds view 1's log")
	gs := uMsgs[*messages.GetState](out)
	require.Len(t, gs, 1)
	assert.Equal(t, 1, gs[0].To)
	assert.Equal(t, uint64(1), gs[0].Msg.View)
	assert.Equal(t, uint64(1), gs[0].Msg.OpNumber, "asks for the log after its commit number")

	out = uStep(t, r, uPrepare(1, 1, 2, uEntry(4, 1)))
	assert.Empty(t, uMsgs[*messages.PrepareOK](out), "still no PrepareOK while syncing")
	assert.Equal(t, uint64(2), r.OpNumber())
}

// ---------------------------------------------------------------------------
// onPrepareOK

func TestOnPrepareOK_CommitsOnlyAfterFBackupAcks(t *testing.T) {
	r, sm := uReplica(t, 5, 0)
	uStep(t, r, uReq(1, uRegistered+1, kv.PutOp("a", []byte("1"))))

	out := uStep(t, r, uPrepareOK(0, 1, 1))
	assert.Equal(t, uint64(0), r.CommitNumber(), "one backup ack is not a quorum of five")
	assert.Empty(t, out.Replies)
	out = uStep(t, r, uPrepareOK(0, 1, 1))
	assert.Equal(t, uint64(0), r.CommitNumber(), "the same backup twice is still one ack")
	assert.Empty(t, out.Replies)

	out = uStep(t, r, uPrepareOK(0, 1, 3))
	assert.Equal(t, uint64(1), r.CommitNumber())
	require.Len(t, out.Committed, 1)
	require.Len(t, out.Replies, 1)
	assert.Equal(t, uint64(1), out.Replies[0].Reply.ClientId)
	assert.Equal(t, uint32(0), out.Replies[0].Reply.Replica)
	assert.Equal(t, "1", uValue(sm, "a"))
}

func TestOnPrepareOK_CumulativeAckCommitsEveryOpBelow(t *testing.T) {
	r, sm := uPrimary(t, 5, 0, 3)
	uStep(t, r, uPrepareOK(0, 3, 1))
	out := uStep(t, r, uPrepareOK(0, 1, 2))
	assert.Equal(t, uint64(1), r.CommitNumber(), "the f-th highest ack is op 1")
	require.Len(t, out.Committed, 1)

	out = uStep(t, r, uPrepareOK(0, 3, 4))
	assert.Equal(t, uint64(3), r.CommitNumber())
	require.Len(t, out.Committed, 2)
	assert.Equal(t, uint64(2), out.Committed[0].OpNumber)
	assert.Equal(t, uint64(3), out.Committed[1].OpNumber)
	require.Len(t, out.Replies, 2)
	assert.Equal(t, 3, sm.applies)
}

func TestOnPrepareOK_AckFromAnotherViewIsIgnored(t *testing.T) {
	// Replica 0 is primary of view 3 (n = 3), holding one uncommitted op.
	r, _ := uNewPrimary(t, 3, 3, 0, uLog(1, 1, 0))
	require.Equal(t, uint64(1), r.OpNumber())

	uStep(t, r, uPrepareOK(0, 1, 1))
	assert.Equal(t, uint64(0), r.CommitNumber(), "an ack of view 0's log is not an ack of view 3's")
	uStep(t, r, uPrepareOK(4, 1, 1))
	assert.Equal(t, uint64(0), r.CommitNumber(), "nor is one from a later view")
	uStep(t, r, uPrepareOK(3, 1, 1))
	assert.Equal(t, uint64(1), r.CommitNumber())
}

func TestOnPrepareOK_AckBeyondOpNumberIsDropped(t *testing.T) {
	r, _ := uPrimary(t, 3, 0, 1)
	out := uStep(t, r, uPrepareOK(0, 5, 1))
	assert.Equal(t, uint64(0), r.CommitNumber())
	assert.Empty(t, out.Committed)
	assert.Equal(t, uint64(1), r.Drops()[DropMalformed])
	assert.Equal(t, uint64(0), r.primary.acked[1])
}

func TestOnPrepareOK_IgnoredByBackup(t *testing.T) {
	r, _ := uBackup(t, 3, 1, 1, 0)
	out := uStep(t, r, uPrepareOK(0, 1, 2))
	assert.True(t, out.IsEmpty())
	assert.Equal(t, uint64(0), r.CommitNumber())
}

func TestOnPrepareOK_OnlyThePrimaryRepliesToClients(t *testing.T) {
	r, sm := uBackup(t, 3, 1, 2, 0)
	out := uStep(t, r, uCommit(0, 2, 0))
	require.Len(t, out.Committed, 2, "the backup executes")
	assert.Equal(t, "v2", uValue(sm, "k2"))
	assert.Empty(t, out.Replies, "but never replies")
}

func TestCommitUpTo_RequestInLogTwiceExecutesOnce(t *testing.T) {
	// A retry can reach the log twice (before and after a view change): the
	// client table check at execution keeps it at most once, on every replica.
	dup := func(op, req uint64, value string) *messages.Entry {
		return &messages.Entry{OpNumber: op, ClientId: 1, RequestNumber: req,
			Operation: kv.PutOp("a", []byte(value)), ReplyTo: uAddr, Session: uSession}
	}
	log := []*messages.Entry{dup(1, 2, "first"), dup(2, 2, "first"), dup(3, 1, "older")}
	b, bsm := uReplica(t, 3, 2)
	uStep(t, b, uStartView(1, 1, 3, log))
	assert.Equal(t, 1, bsm.applies, "backup: executed once")
	assert.Equal(t, "first", uValue(bsm, "a"), "the older request number is not executed either")

	p, psm := uNewPrimary(t, 3, 1, 0, log)
	out := uStep(t, p, uPrepareOK(1, 3, 2))
	assert.Len(t, out.Committed, 3)
	assert.Equal(t, 1, psm.applies, "primary: executed once")
	assert.Equal(t, "first", uValue(psm, "a"))
	for _, rep := range out.Replies {
		assert.Equal(t, uint64(2), rep.Reply.RequestNumber, "no reply for the older request")
	}
}

// ---------------------------------------------------------------------------
// onCommit

func TestOnCommit_BackupExecutesUpToCommitNumberAndAnswers(t *testing.T) {
	r, sm := uBackup(t, 3, 1, 3, 0)
	out := uStep(t, r, uCommit(0, 2, 0))
	assert.Equal(t, uint64(2), r.CommitNumber())
	assert.Equal(t, "v2", uValue(sm, "k2"))
	assert.Equal(t, "<absent>", uValue(sm, "k3"), "op 3 is not committed")
	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, out.Messages, 1, "only the answer that tells the primary it is heard")
	require.Len(t, oks, 1)
	assert.Equal(t, 0, oks[0].To)
	assert.Equal(t, uint64(3), oks[0].Msg.OpNumber, "what the backup holds")
	assert.Equal(t, 2, sm.applies)

	uStep(t, r, uCommit(0, 2, 0))
	assert.Equal(t, 2, sm.applies, "a repeated Commit executes nothing again")
}

func TestOnCommit_BeyondOpNumberCommitsNothingAndRequestsState(t *testing.T) {
	r, sm := uBackup(t, 3, 1, 2, 0)
	out := uStep(t, r, uCommit(0, 5, 0))
	assert.Equal(t, uint64(0), r.CommitNumber(), "a number past the log may be forged: the answer to GetState decides")
	assert.Equal(t, 0, sm.applies)
	gs := uMsgs[*messages.GetState](out)
	require.Len(t, gs, 1)
	assert.Equal(t, 0, gs[0].To)
	assert.Equal(t, uint64(2), gs[0].Msg.OpNumber)

	out = uStep(t, r, uCommit(0, 5, 0))
	assert.Empty(t, uMsgs[*messages.GetState](out), "at most one GetState per heartbeat")
}

func TestOnCommit_FromWrongReplicaIsDropped(t *testing.T) {
	r, _ := uBackup(t, 3, 1, 2, 0)
	out := uStep(t, r, uCommit(0, 2, 2))
	assert.Equal(t, uint64(0), r.CommitNumber())
	assert.Empty(t, out.Committed)
	assert.Equal(t, uint64(1), r.Drops()[DropBadReplica])
}

func TestOnCommit_ResetsBackupInactivityTimer(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	for k := 0; k < 3; k++ {
		out := uTicks(t, r, 9)
		assert.Empty(t, uMsgs[*messages.ViewChangeProbe](out))
		uStep(t, r, uCommit(0, 0, 0))
	}
	assert.Equal(t, StatusNormal, r.Status(), "27 ticks but never 10 without hearing from the primary")
	out := uTicks(t, r, 10)
	assert.NotEmpty(t, uMsgs[*messages.ViewChangeProbe](out), "10 ticks of silence: the backup suspects its primary")
}

// ---------------------------------------------------------------------------
// Heartbeats

func TestPrimaryHeartbeat_ResendsEntriesUnackedForAHeartbeatInBatchesAndCommitsToOthers(t *testing.T) {
	r, _ := uPrimary(t, 5, 2, 3, func(c *Config) { c.MaxBatch = 2 })
	// Backups 1 and 2 acked op 2 (committed); 3 acks op 5; 4 acked nothing.
	uStep(t, r, uPrepareOK(0, 5, 3))
	require.Equal(t, uint64(2), r.CommitNumber())
	out := uTicks(t, r, 2)
	for _, env := range out.Messages {
		_, ok := env.Msg.(*messages.Commit)
		assert.True(t, ok, "entries sent since the last heartbeat are not sent again: %T to %d", env.Msg, env.To)
	}
	out = uTicks(t, r, 2)

	byTo := map[int]any{}
	for _, env := range out.Messages {
		byTo[env.To] = env.Msg
	}
	require.Len(t, byTo, 4)
	for _, j := range []int{1, 2, 4} {
		p, ok := byTo[j].(*messages.Prepare)
		require.True(t, ok, "backup %d gets what it lacks: %T", j, byTo[j])
		require.Len(t, p.Entries, 2, "at most MaxBatch entries")
		assert.Equal(t, uint64(3), p.Entries[0].OpNumber, "from the first uncommitted op")
		assert.Equal(t, uint64(2), p.CommitNumber)
	}
	c, ok := byTo[3].(*messages.Commit)
	require.True(t, ok, "backup 3 holds everything: %T", byTo[3])
	assert.Equal(t, uint64(2), c.CommitNumber)
}
