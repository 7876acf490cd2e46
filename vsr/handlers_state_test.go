package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// The answer is the whole rest of the log, whatever MaxBatch says: a
// replica catching up on a later view becomes normal with it (see
// TestRegression_SyncingReplicaNeverBecomesNormalWithAPartialLog).
func TestOnGetState_AnswerIsTheWholeRestOfTheLog(t *testing.T) {
	p, _ := uPrimary(t, 3, 2, 1, func(c *Config) { c.MaxBatch = 1 })
	m := uMsgs[*messages.NewState](uStep(t, p, uGetState(0, 0, 1)))[0].Msg
	require.Len(t, m.Entries, 3)
	assert.Equal(t, p.OpNumber(), m.OpNumber)
	assert.Equal(t, p.CommitNumber(), m.CommitNumber)
}

func TestOnGetState_AnsweredOnlyWhenNormalInSameView(t *testing.T) {
	p, _ := uPrimary(t, 3, 2, 1)
	assert.Empty(t, uStep(t, p, uGetState(1, 0, 1)).Messages, "another view")
	assert.Empty(t, uStep(t, p, uGetState(0, 5, 1)).Messages, "past the op number")

	r, _ := uBackup(t, 3, 1, 2, 0)
	uTicks(t, r, 10)
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
	uStep(t, r, uNewState(1, 1, 0, uLog(2, 2, 1), 2))
	assert.Equal(t, uint64(1), r.OpNumber(), "another view's state is ignored")
	uStep(t, r, uNewState(0, 2, 0, uLog(2, 2, 0), 2))
	assert.Equal(t, uint64(1), r.OpNumber())
	assert.Equal(t, uint64(1), r.Drops()[DropMalformed], "only the primary sends state")
	bad := uNewState(0, 0, 3, uLog(2, 2, 0), 2)
	uStep(t, r, bad)
	assert.Equal(t, uint64(2), r.Drops()[DropMalformed], "commit number past op number")

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
