package vsr

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

func uGetState(view, after uint64, from int) *messages.GetState {
	return &messages.GetState{ClusterId: uCluster, View: view, OpNumber: after, Replica: uint32(from)}
}

// ---------------------------------------------------------------------------
// onGetState

func TestOnGetState_NormalPrimaryAnswersWithLogSuffix(t *testing.T) {
	p, _ := uPrimary(t, 3, 2, 1)
	out := uStep(t, p, uGetState(0, 1, 1))
	ns := uMsgs[*messages.NewState](out)
	require.Len(t, ns, 1)
	assert.Equal(t, 1, ns[0].To)
	m := ns[0].Msg
	assert.Equal(t, uint64(0), m.View)
	require.Len(t, m.Entries, 2)
	assert.Same(t, p.Entry(2), m.Entries[0])
	assert.Same(t, p.Entry(3), m.Entries[1])
	assert.Equal(t, uint64(3), m.OpNumber)
	assert.Equal(t, uint64(2), m.CommitNumber)
	assert.Equal(t, uint32(0), m.Replica)
}

// The answer is bounded by the message size, not by MaxBatch: when the rest
// of the log fits, it is all there, and NewState's op number (the sender's)
// says whether it is.
func TestOnGetState_AnswerIsTheRestOfTheLogAsFarAsItFits(t *testing.T) {
	p, _ := uPrimary(t, 3, 2, 1, func(c *Config) { c.MaxBatch = 1 })
	m := uMsgs[*messages.NewState](uStep(t, p, uGetState(0, 0, 1)))[0].Msg
	require.Len(t, m.Entries, 3)
	assert.Equal(t, p.OpNumber(), m.OpNumber)
	assert.Equal(t, p.CommitNumber(), m.CommitNumber)

	big, _ := uReplica(t, 3, 0, func(c *Config) { c.MaxMessageBytes = MinMaxMessageBytes })
	for c := uint64(1); c <= 6; c++ {
		uStep(t, big, uPut(c, uRegistered+1, bytes.Repeat([]byte("x"), 300)))
		uStep(t, big, uPrepareOK(0, c, 1))
	}
	require.Equal(t, uint64(6), big.CommitNumber())
	out := uStep(t, big, uGetState(0, 0, 1))
	m = uMsgs[*messages.NewState](out)[0].Msg
	assert.Less(t, len(m.Entries), 6, "six entries of 300 bytes do not fit one message")
	assert.NotEmpty(t, m.Entries)
	assert.Equal(t, uint64(6), m.OpNumber, "the sender's op number: more follows")
	assert.LessOrEqual(t, proto.Size(m), MinMaxMessageBytes)
}

// A syncing replica that gets only part of a view's log takes the committed
// entries of that part and asks for the rest; it never becomes normal with
// a partial log.
func TestOnNewState_SyncingReplicaTakesTheCommittedPartOfAPartialAnswerAndAsksAgain(t *testing.T) {
	r, sm := uBackup(t, 3, 2, 1, 0)
	uStep(t, r, uCommit(1, 4, 1)) // view 1 has started without it
	require.True(t, r.syncing)
	log := uLog(1, 5, 1)
	out := uStep(t, r, uNewState(1, 1, 4, log[0:3], 5))
	assert.True(t, r.syncing, "ops 4 and 5 are still missing")
	assert.Equal(t, StatusViewChange, r.Status())
	assert.Equal(t, uint64(3), r.CommitNumber(), "the committed ops it got are executed")
	assert.Equal(t, "v3", uValue(sm, "k3"))
	assert.Empty(t, uMsgs[*messages.PrepareOK](out))
	gs := uMsgs[*messages.GetState](out)
	require.Len(t, gs, 1)
	assert.Equal(t, uint64(3), gs[0].Msg.OpNumber, "for the rest, after its new commit number")

	out = uStep(t, r, uNewState(1, 1, 4, log[3:5], 5))
	assert.Equal(t, StatusNormal, r.Status())
	assert.Equal(t, uint64(5), r.OpNumber())
	assert.Equal(t, uint64(4), r.CommitNumber())
	assert.Len(t, uMsgs[*messages.PrepareOK](out), 1)
}

// uTrimmedPrimary is primary 0 of n = 3 that has committed ops 1..4 (the
// first writes of clients 1..4), checkpointed at op 4 and kept no op below
// it.
func uTrimmedPrimary(t *testing.T) *Replica {
	t.Helper()
	p, _ := uReplica(t, 3, 0, func(c *Config) { c.CheckpointInterval, c.TrailingOps = 4, -1 })
	for c := uint64(1); c <= 4; c++ {
		uStep(t, p, uPut(c, uRegistered+1, []byte("v")))
	}
	out := uStep(t, p, uPrepareOK(0, 4, 1))
	require.NotNil(t, out.Checkpoint)
	uCheckpointDone(t, p, out.Checkpoint.Run())
	require.Equal(t, uint64(4), p.LogBase())
	return p
}

func TestOnGetState_BelowTheLogPointsToTheCheckpoint(t *testing.T) {
	p := uTrimmedPrimary(t)
	for _, committed := range []bool{false, true} {
		gs := uGetState(0, 1, 1)
		gs.CommittedOnly = committed
		ns := uMsgs[*messages.NewState](uStep(t, p, gs))
		require.Len(t, ns, 1)
		m := ns[0].Msg
		assert.Empty(t, m.Entries, "op 2 is in the checkpoint only")
		assert.Equal(t, uint64(4), m.CheckpointOpNumber)
		assert.Equal(t, committed, m.CommittedOnly)
	}

	b, _ := uBackup(t, 3, 1, 1, 0)
	out := uStep(t, b, uNewState(0, 0, 4, nil, 4))
	assert.Empty(t, uMsgs[*messages.GetCheckpoint](out), "no pointer, nothing to fetch")
	ptr := uNewState(0, 0, 4, nil, 4)
	ptr.CheckpointOpNumber = 4
	gc := uMsgs[*messages.GetCheckpoint](uStep(t, b, ptr))
	require.Len(t, gc, 1)
	assert.Equal(t, 0, gc[0].To)
	assert.Equal(t, uint32(0), gc[0].Msg.Chunk)
	chunk := uMsgs[*messages.CheckpointChunk](uStep(t, p, gc[0].Msg))
	require.Len(t, chunk, 1)
	uStep(t, b, chunk[0].Msg)
	_, installed := b.CheckpointStats()
	assert.Equal(t, uint64(1), installed)
	assert.Equal(t, uint64(4), b.CommitNumber())
	assert.Equal(t, uint64(4), b.LogBase())
}

// Committed entries are the same in every log, so a committed_only GetState
// is answered in any status but recovering, in any view, up to the commit
// number only.
func TestOnGetState_CommittedOnlyIsAnsweredInAnyStatusButRecoveringUpToTheCommitNumber(t *testing.T) {
	r, _ := uBackup(t, 3, 1, 3, 2)
	uLeaveView(t, r)
	require.Equal(t, StatusViewChange, r.Status())
	gs := uGetState(7, 0, 2)
	gs.CommittedOnly = true
	ns := uMsgs[*messages.NewState](uStep(t, r, gs))
	require.Len(t, ns, 1)
	m := ns[0].Msg
	require.Len(t, m.Entries, 2, "ops 1 and 2, not the uncommitted op 3")
	assert.True(t, m.CommittedOnly)
	assert.Equal(t, uint64(2), m.CommitNumber)

	gs.OpNumber = 2
	assert.Empty(t, uStep(t, r, gs).Messages, "nothing committed after op 2")
	rec, _ := uReplica(t, 3, 1, uRecovering)
	gs.OpNumber = 0
	assert.Empty(t, uStep(t, rec, gs).Messages, "a recovering replica answers nothing")
}

func TestOnGetState_AnsweredOnlyWhenNormalInSameView(t *testing.T) {
	p, _ := uPrimary(t, 3, 2, 1)
	assert.Empty(t, uStep(t, p, uGetState(1, 0, 1)).Messages, "another view")
	assert.Empty(t, uStep(t, p, uGetState(0, 5, 1)).Messages, "past the op number")

	r, _ := uBackup(t, 3, 1, 2, 0)
	uLeaveView(t, r)
	require.Equal(t, StatusViewChange, r.Status())
	require.Equal(t, uint64(1), r.View())
	assert.Empty(t, uStep(t, r, uGetState(1, 0, 2)).Messages, "not normal in view 1")
}

// ---------------------------------------------------------------------------
// onNewState

func TestOnNewState_FillsGapInSameView(t *testing.T) {
	r, sm := uBackup(t, 3, 1, 1, 0)
	uStep(t, r, uPrepare(0, 0, 0, uEntry(4, 0))) // gap: asks for state
	out := uStep(t, r, uNewState(0, 0, 2, uLog(2, 4, 0), 4))

	assert.Equal(t, uint64(4), r.OpNumber())
	assert.Equal(t, uint64(2), r.CommitNumber())
	assert.Equal(t, "v2", uValue(sm, "k2"))
	assert.Equal(t, StatusNormal, r.Status())
	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, 0, oks[0].To)
	assert.Equal(t, uint64(4), oks[0].Msg.OpNumber)
	assert.False(t, r.stateRequested, "a later gap may ask again")
}

func TestOnNewState_StillLeavingGapIsIgnored(t *testing.T) {
	r, _ := uBackup(t, 3, 1, 1, 0)
	out := uStep(t, r, uNewState(0, 0, 0, uLog(3, 4, 0), 4))
	assert.Empty(t, out.Messages)
	assert.Equal(t, uint64(1), r.OpNumber())
}

func TestOnNewState_FromOtherViewOrNonPrimaryOrAtPrimaryIsRejected(t *testing.T) {
	r, _ := uBackup(t, 3, 1, 1, 0)
	uStep(t, r, uNewState(2, 2, 0, uLog(2, 2, 2), 2))
	assert.Equal(t, uint64(1), r.OpNumber(), "another view's state is ignored")
	assert.Equal(t, uint64(0), r.Drops().Total(), "ignored, not dropped")
	uStep(t, r, uNewState(0, 2, 0, uLog(2, 2, 0), 2))
	assert.Equal(t, uint64(1), r.OpNumber())
	assert.Equal(t, uint64(1), r.Drops()[DropBadReplica], "only the primary sends its view's log")
	bad := uNewState(0, 0, 3, uLog(2, 2, 0), 2)
	uStep(t, r, bad)
	assert.Equal(t, uint64(1), r.Drops()[DropMalformed], "commit number past op number")

	p, _ := uPrimary(t, 3, 0, 1)
	out := uStep(t, p, uNewState(0, 1, 0, uLog(2, 2, 0), 2))
	assert.True(t, out.IsEmpty())
	assert.Equal(t, uint64(1), p.OpNumber(), "the primary never takes state")
}

func TestOnNewState_SyncingReplicaReplacesSuffixAfterCommitAndBecomesNormal(t *testing.T) {
	r, sm := uBackup(t, 3, 2, 2, 1) // view-0 log: ops 1 (committed), 2
	uStep(t, r, uCommit(1, 3, 1))   // view 1 has started without it
	require.True(t, r.syncing)
	require.Equal(t, StatusViewChange, r.Status())

	newSuffix := uLog(2, 3, 1)
	out := uStep(t, r, uNewState(1, 1, 3, newSuffix, 3))

	assert.Equal(t, StatusNormal, r.Status())
	assert.False(t, r.syncing)
	assert.Equal(t, uint64(1), r.View())
	assert.Equal(t, uint64(1), r.LastNormalView())
	assert.Equal(t, uint64(3), r.OpNumber())
	assert.Same(t, newSuffix[0], r.Entry(2), "its own op 2 of view 0 is replaced")
	assert.Equal(t, uint64(3), r.CommitNumber())
	assert.Equal(t, "v3", uValue(sm, "k3"))
	assert.Equal(t, viewChangeState{}, r.viewChange)
	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, 1, oks[0].To)
	assert.Equal(t, uint64(1), oks[0].Msg.View)
	assert.Equal(t, uint64(3), oks[0].Msg.OpNumber)
}

func TestOnNewState_SyncingReplicaRejectsStateThatWouldLeaveHoleOrLoseCommits(t *testing.T) {
	r, _ := uBackup(t, 3, 2, 3, 2)
	uStep(t, r, uCommit(1, 3, 1))
	require.True(t, r.syncing)

	uStep(t, r, uNewState(1, 1, 3, uLog(4, 4, 1), 4))
	assert.True(t, r.syncing, "entries starting past commit+1 would leave a hole")
	uStep(t, r, uNewState(1, 1, 1, uLog(1, 1, 1), 1))
	assert.True(t, r.syncing, "a view-1 log ending before op 2, which it knows is committed")
	assert.Equal(t, uint64(1), r.Drops()[DropMalformed])
	assert.Equal(t, uint64(3), r.OpNumber())
}

func TestOnNewState_SyncingReplicaResendsGetStateOnHeartbeat(t *testing.T) {
	r, _ := uBackup(t, 3, 2, 2, 1)
	uStep(t, r, uCommit(1, 3, 1))
	out := uTicks(t, r, 2)
	gs := uMsgs[*messages.GetState](out)
	require.Len(t, gs, 1)
	assert.Equal(t, 1, gs[0].To)
	assert.Equal(t, uint64(1), gs[0].Msg.View)
	assert.Empty(t, uMsgs[*messages.StartViewChange](out), "it does not vote while fetching a started view")
}
