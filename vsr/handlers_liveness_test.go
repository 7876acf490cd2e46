package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
)

// Unit tests of the liveness rules (liveness.go) at one replica.

func uProbe(view uint64, from int) *messages.ViewChangeProbe {
	return &messages.ViewChangeProbe{ClusterId: uCluster, View: view, Replica: uint32(from)}
}

// hearing makes r a backup that has just heard its primary.
func hearing(t *testing.T, r *Replica) {
	t.Helper()
	uStep(t, r, uCommit(0, 0, 0))
}

func TestProbe_BackupThatHearsItsPrimaryNeitherAgreesNorJoins(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	hearing(t, r)
	out := uStep(t, r, uProbe(1, 2))
	assert.Empty(t, uMsgs[*messages.ViewChangeProbeOK](out), "its primary is alive")
	uStep(t, r, uSVC(1, 2))
	assert.Equal(t, StatusNormal, r.Status(), "a later view change from a backup is not joined")
	assert.Equal(t, uint64(0), r.View())
}

func TestProbe_BackupThatLostItsPrimaryAgreesAndJoins(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	hearing(t, r)
	uTicks(t, r, r.cfg.InactivityTicks/2) // half a timeout of silence
	out := uStep(t, r, uProbe(1, 2))
	oks := uMsgs[*messages.ViewChangeProbeOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, 2, oks[0].To)
	assert.Equal(t, uint64(1), oks[0].Msg.View)
	assert.Equal(t, StatusNormal, r.Status(), "agreeing moves no view")
	uStep(t, r, uSVC(1, 2))
	assert.Equal(t, StatusViewChange, r.Status())
	assert.Equal(t, uint64(1), r.View())
}

func TestProbe_AbdicatingPrimaryIsJoinedAtOnce(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	hearing(t, r)
	uStep(t, r, uSVC(1, 0))
	assert.Equal(t, StatusViewChange, r.Status(), "its own primary asks")
	assert.Equal(t, uint64(1), r.View())
}

func TestProbe_ReplicaInALaterViewChangePullsAProberAlong(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uLeaveView(t, r)
	uLeaveView(t, r) // view change to view 2
	out := uStep(t, r, uProbe(1, 1))
	svcs := uMsgs[*messages.StartViewChange](out)
	require.Len(t, svcs, 1, "it answers a probe for an older view with its own vote")
	assert.Equal(t, 1, svcs[0].To)
	assert.Equal(t, uint64(2), svcs[0].Msg.View)
}

func TestProbe_HeardPrimaryCancelsTheProbe(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	out := uTicks(t, r, r.cfg.InactivityTicks)
	require.NotEmpty(t, uMsgs[*messages.ViewChangeProbe](out))
	hearing(t, r)
	uStep(t, r, &messages.ViewChangeProbeOK{ClusterId: uCluster, View: 1, Replica: 1})
	assert.Equal(t, StatusNormal, r.Status(), "an answer to a cancelled probe moves nothing")
	assert.Empty(t, uMsgs[*messages.ViewChangeProbe](uTicks(t, r, 2)), "nor is it sent again")
}

func TestCheckQuorum_PrimaryNoBackupAnswersAbdicates(t *testing.T) {
	r, _ := uReplica(t, 3, 0)
	out := uTicks(t, r, r.cfg.InactivityTicks-r.cfg.HeartbeatTicks)
	require.Equal(t, StatusNormal, r.Status(), "not before an inactivity timeout")
	out = uTicks(t, r, r.cfg.HeartbeatTicks)
	assert.Equal(t, StatusViewChange, r.Status())
	assert.Equal(t, uint64(1), r.View())
	assert.ElementsMatch(t, []int{1, 2}, uTargets(uMsgs[*messages.StartViewChange](out)))
}

func TestCheckQuorum_ConfirmViewOKCountsAsHearingABackup(t *testing.T) {
	r, _ := uReplica(t, 3, 0)
	for k := 0; k < 20; k++ {
		uTicks(t, r, 2)
		uStep(t, r, uConfirmViewOK(0, 0, 2))
	}
	assert.True(t, r.IsPrimary())
}

func TestReads_RetryOfAHeldReadIsHeldOnce(t *testing.T) {
	p, _ := uPrimary(t, 3, 0, 0)
	uStep(t, p, uLinRead(5, 1, "a"))
	uStep(t, p, uLinRead(5, 1, "a"))
	assert.Len(t, p.primary.reads.pending, 1)
	uStep(t, p, uLinRead(5, 2, "a"))
	assert.Len(t, p.primary.reads.pending, 2, "a new request is held")
}

func TestAdmit_NumbersFarAheadAreDroppedBeforeAnyHandler(t *testing.T) {
	r, sm := uBackup(t, 3, 1, 2, 0)
	hearing(t, r)
	uStep(t, r, uSVC(maxViewAhead+1, 0))
	uStep(t, r, uCommit(0, maxOpsAhead+3, 0))
	uStep(t, r, uPrepare(0, 0, 0, uEntry(maxOpsAhead+3, 0)))
	assert.Equal(t, uint64(3), r.Drops()[DropFarAhead])
	assert.Equal(t, uint64(0), r.View())
	assert.Equal(t, 0, sm.applies)
	uStep(t, r, uSVC(maxViewAhead, 0))
	assert.Equal(t, uint64(maxViewAhead), r.View(), "within the window, the primary's abdication is joined")
}
