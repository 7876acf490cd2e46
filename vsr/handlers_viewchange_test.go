package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// ---------------------------------------------------------------------------
// Timeouts

func TestElectionTimeout_BackupProbesThenStartsViewChangeOnceFAgree(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uTicks(t, r, 9)
	require.Equal(t, StatusNormal, r.Status(), "not before the inactivity timeout")
	out := r.Tick()

	assert.Equal(t, StatusNormal, r.Status(), "a timeout alone moves no view")
	assert.Equal(t, uint64(0), r.View())
	assert.Nil(t, out.HardState)
	assert.Empty(t, uMsgs[*messages.StartViewChange](out))
	probes := uMsgs[*messages.ViewChangeProbe](out)
	assert.ElementsMatch(t, []int{0, 1}, uTargets(probes))
	for _, p := range probes {
		assert.Equal(t, uint64(1), p.Msg.View, "for the next view")
	}

	out = uStep(t, r, &messages.ViewChangeProbeOK{ClusterId: uCluster, View: 1, Replica: 1})
	assert.Equal(t, StatusViewChange, r.Status(), "f = 1 other has lost the primary too")
	assert.Equal(t, uint64(1), r.View())
	assert.Equal(t, uint64(0), r.LastNormalView())
	svcs := uMsgs[*messages.StartViewChange](out)
	assert.ElementsMatch(t, []int{0, 1}, uTargets(svcs))
	for _, s := range svcs {
		assert.Equal(t, uint64(1), s.Msg.View)
		assert.Equal(t, uint32(2), s.Msg.Replica)
	}
	require.NotNil(t, out.HardState, "the view changed")
	assert.Equal(t, HardState{View: 1}, *out.HardState)
}

func TestElectionTimeout_PrimaryThatBackupsAnswerNeverTimesOut(t *testing.T) {
	r, _ := uReplica(t, 3, 0)
	var out Output
	for k := 0; k < 25; k++ {
		out = uTicks(t, r, 2)
		uStep(t, r, uPrepareOK(0, 0, 1)) // a backup's answer to the Commit heartbeat
	}
	assert.Equal(t, StatusNormal, r.Status())
	assert.Equal(t, uint64(0), r.View())
	assert.Empty(t, uMsgs[*messages.StartViewChange](out))
}

func TestElectionTimeout_StalledViewChangeMovesToNextView(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uLeaveView(t, r)
	require.Equal(t, uint64(1), r.View())
	out := uLeaveView(t, r)
	assert.Equal(t, uint64(2), r.View())
	assert.Equal(t, StatusViewChange, r.Status())
	assert.NotEmpty(t, uMsgs[*messages.StartViewChange](out))
}

func TestViewChangeHeartbeat_ResendsStartViewChange(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uLeaveView(t, r)
	out := uTicks(t, r, 2)
	svcs := uMsgs[*messages.StartViewChange](out)
	assert.ElementsMatch(t, []int{0, 1}, uTargets(svcs), "a lost vote does not cost a whole timeout")
}

// ---------------------------------------------------------------------------
// onStartViewChange

func TestOnStartViewChange_FOthersTriggerDoViewChangeToNewPrimary(t *testing.T) {
	r, _ := uBackup(t, 5, 3, 2, 1)

	out := uStep(t, r, uSVC(1, 2))
	assert.Equal(t, StatusViewChange, r.Status(), "a higher view's vote is joined")
	assert.Equal(t, uint64(1), r.View())
	assert.ElementsMatch(t, []int{0, 1, 2, 4}, uTargets(uMsgs[*messages.StartViewChange](out)))
	assert.Empty(t, uMsgs[*messages.DoViewChange](out), "one other vote is fewer than f = 2")

	out = uStep(t, r, uSVC(1, 2))
	assert.Empty(t, uMsgs[*messages.DoViewChange](out), "a repeated vote counts once")

	out = uStep(t, r, uSVC(1, 4))
	dvcs := uMsgs[*messages.DoViewChange](out)
	require.Len(t, dvcs, 1)
	assert.Equal(t, 1, dvcs[0].To, "to the primary of view 1")
	d := dvcs[0].Msg
	assert.Equal(t, uint64(1), d.View)
	assert.Equal(t, uint64(0), d.LastNormalView)
	assert.Equal(t, uint64(2), d.OpNumber)
	assert.Equal(t, uint64(1), d.CommitNumber)
	assert.Equal(t, uint32(3), d.Replica)
	require.Len(t, d.Entries, 1, "only the uncommitted suffix: op 2")
	assert.Same(t, r.Entry(2), d.Entries[0])

	out = uStep(t, r, uSVC(1, 0))
	assert.Empty(t, uMsgs[*messages.DoViewChange](out), "DoViewChange is sent once per view (resent on heartbeat)")
}

func TestOnStartViewChange_HigherViewIsJoined(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uLeaveView(t, r) // view change to view 1
	out := uStep(t, r, uSVC(3, 1))
	assert.Equal(t, uint64(3), r.View())
	assert.Equal(t, StatusViewChange, r.Status())
	svcs := uMsgs[*messages.StartViewChange](out)
	require.NotEmpty(t, svcs)
	assert.Equal(t, uint64(3), svcs[0].Msg.View)
	dvcs := uMsgs[*messages.DoViewChange](out)
	require.Len(t, dvcs, 1, "n = 3: the sender's vote is f = 1")
	assert.Equal(t, 0, dvcs[0].To, "primary of view 3")
}

func TestOnStartViewChange_OldOrStartedViewIsIgnored(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uStep(t, r, uStartView(1, 1, 0, nil))
	require.Equal(t, StatusNormal, r.Status())

	out := uStep(t, r, uSVC(0, 0))
	assert.True(t, out.IsEmpty(), "older view")
	out = uStep(t, r, uSVC(1, 0))
	assert.True(t, out.IsEmpty(), "view 1 has started already")
	assert.Equal(t, StatusNormal, r.Status())
}

func TestOnStartViewChange_VotesForOneViewDoNotCountInTheNext(t *testing.T) {
	r, _ := uReplica(t, 5, 3)
	uStep(t, r, uSVC(1, 2)) // one vote for view 1
	out := uStep(t, r, uSVC(2, 4))
	require.Equal(t, uint64(2), r.View())
	assert.Empty(t, uMsgs[*messages.DoViewChange](out), "only one vote for view 2: replica 2's was for view 1")
	out = uStep(t, r, uSVC(2, 2))
	assert.Len(t, uMsgs[*messages.DoViewChange](out), 1)
}

func TestOnDoViewChange_DoViewChangesForOneViewDoNotCountInTheNext(t *testing.T) {
	// n = 3: replica 1 is primary of views 1 and 4.
	r, _ := uReplica(t, 3, 1)
	uStep(t, r, uDVC(1, 2, 0, 0, nil))
	require.Len(t, r.viewChange.doViewChanges, 1)
	uStep(t, r, uDVC(4, 0, 0, 0, nil))
	assert.Equal(t, uint64(4), r.View())
	assert.Equal(t, StatusViewChange, r.Status(), "view 1's DoViewChange from 2 does not count for view 4")
	assert.Len(t, r.viewChange.doViewChanges, 1)
}

// ---------------------------------------------------------------------------
// onDoViewChange

func TestOnDoViewChange_NewPrimaryWaitsForFPlusOne(t *testing.T) {
	r, _ := uReplica(t, 5, 1)
	log := uLog(1, 2, 0)
	uStep(t, r, uDVC(1, 2, 0, 0, log))
	uStep(t, r, uDVC(1, 3, 0, 0, log))
	uStep(t, r, uDVC(1, 3, 0, 0, log))
	assert.Equal(t, StatusViewChange, r.Status(), "2 distinct DoViewChanges are fewer than f+1 = 3")
	assert.Len(t, r.viewChange.doViewChanges, 2)

	out := uStep(t, r, uDVC(1, 4, 0, 0, log))
	assert.Equal(t, StatusNormal, r.Status())
	assert.True(t, r.IsPrimary())
	assert.NotEmpty(t, uMsgs[*messages.StartView](out))
}

func TestOnDoViewChange_OwnDoViewChangeCountsTowardsQuorum(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	uStep(t, r, uDVC(1, 2, 0, 0, nil))
	require.Equal(t, StatusViewChange, r.Status())
	uStep(t, r, uSVC(1, 2)) // f = 1 vote: it sends its own DoViewChange to itself
	assert.Equal(t, StatusNormal, r.Status())
	assert.True(t, r.IsPrimary())
}

func TestOnDoViewChange_NotForThisReplicaOrBadLogIsDropped(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uStep(t, r, uDVC(1, 0, 0, 0, nil))
	assert.Equal(t, uint64(1), r.Drops()[DropMalformed], "replica 2 is not primary of view 1")
	bad := uDVC(2, 0, 0, 0, uLog(1, 2, 0))
	bad.OpNumber = 3
	uStep(t, r, bad)
	assert.Equal(t, uint64(2), r.Drops()[DropMalformed], "op number disagrees with the log")
	uStep(t, r, uDVC(2, 0, 2, 0, nil))
	assert.Equal(t, uint64(3), r.Drops()[DropMalformed], "last normal view must be below the view")
	assert.Equal(t, uint64(0), r.View())
}

func TestOnDoViewChange_NewPrimaryTakesLogOfLatestNormalViewAndMaxCommit(t *testing.T) {
	// View 4 of n = 3: primary 1. Replica 0 was last normal in view 2 with a
	// short log; replica 2 in view 0 with a longer one.
	r, sm := uReplica(t, 3, 1)
	short := []*messages.Entry{uEntry(1, 0), uEntry(2, 2)}
	long := uLog(1, 4, 0)
	uStep(t, r, uDVC(4, 2, 0, 1, long))
	out := uStep(t, r, uDVC(4, 0, 2, 2, short))
	// The chosen DoViewChange carries no entries at or below its commit
	// number 2, and replica 1 holds none: it fetches them from the replica
	// that reported the largest commit number before it starts the view.
	require.Equal(t, StatusViewChange, r.Status())
	gs := uMsgs[*messages.GetState](out)
	require.Len(t, gs, 1)
	assert.Equal(t, 0, gs[0].To)
	out = uServeCommitted(t, r, out, short, 2)

	require.True(t, r.IsPrimary())
	assert.Equal(t, uint64(2), r.OpNumber(), "the later normal view wins over the longer log")
	assert.Same(t, short[1], r.Entry(2))
	assert.Equal(t, uint64(2), r.CommitNumber(), "the largest commit number received")
	assert.Equal(t, "v2", uValue(sm, "k2"))
	assert.Len(t, out.Committed, 2)
}

// The chosen log's commit number is the one that decides whether the new
// primary must fetch: here it is 0, so the primary starts the view at once
// with that log, and then commits up to the largest commit number any
// DoViewChange reported, executing those ops and answering their clients.
func TestOnDoViewChange_NewPrimaryBecomesNormalBroadcastsStartViewAndReplies(t *testing.T) {
	log := uLog(1, 3, 0)
	r, sm := uReplica(t, 5, 1)
	uStep(t, r, uDVC(1, 2, 0, 0, log))
	uStep(t, r, uDVC(1, 3, 0, 1, log))
	out := uStep(t, r, uDVC(1, 4, 0, 2, log))

	assert.Equal(t, StatusNormal, r.Status())
	assert.Equal(t, uint64(1), r.LastNormalView())
	svs := uMsgs[*messages.StartView](out)
	assert.ElementsMatch(t, []int{0, 2, 3, 4}, uTargets(svs))
	for _, s := range svs {
		assert.Equal(t, uint64(1), s.Msg.View)
		assert.Equal(t, uint64(3), s.Msg.OpNumber)
		assert.Len(t, s.Msg.Entries, 3, "from after the lowest commit number reported")
		assert.Equal(t, uint64(2), s.Msg.CommitNumber, "StartView carries the new (largest) commit number")
	}
	assert.Equal(t, uint64(2), r.CommitNumber())
	assert.Equal(t, "v2", uValue(sm, "k2"), "committed ops are executed, not just marked")
	assert.Equal(t, "<absent>", uValue(sm, "k3"))
	require.Len(t, out.Replies, 2, "and answered to their clients")
	assert.Equal(t, uint64(101), out.Replies[0].Reply.ClientId)
	assert.Equal(t, uint64(1), out.Replies[0].Reply.View)
	assert.Equal(t, uint64(102), out.Replies[1].Reply.ClientId)

	// It serves clients: a new request is prepared to every backup.
	out = uStep(t, r, uReq(7, uRegistered+1, kv.PutOp("x", []byte("y"))))
	assert.Equal(t, uint64(4), r.OpNumber())
	assert.Len(t, uMsgs[*messages.Prepare](out), 4)
}

// A new primary whose commit number is below the chosen DoViewChange's cannot
// rebuild the log from suffixes alone: it fetches the committed ops it lacks
// (committed_only GetState, answered in any status) and only then sends
// StartView. Until then it is not normal and answers no client.
func TestOnDoViewChange_NewPrimaryBehindChosenCommitFetchesBeforeStartView(t *testing.T) {
	log := uLog(1, 4, 0)
	r, sm := uReplica(t, 3, 1)
	uStep(t, r, uDVC(1, 2, 0, 2, log))
	out := uStep(t, r, uDVC(1, 0, 0, 3, log))
	require.Equal(t, StatusViewChange, r.Status(), "it lacks ops 1..3, committed before the view")
	assert.Empty(t, uMsgs[*messages.StartView](out))
	gs := uMsgs[*messages.GetState](out)
	require.Len(t, gs, 1)
	assert.Equal(t, 0, gs[0].To, "from the replica with the largest commit number")
	assert.True(t, gs[0].Msg.CommittedOnly)
	assert.Equal(t, uint64(0), gs[0].Msg.OpNumber)
	assert.Empty(t, uStep(t, r, uReq(7, uRegistered+1, kv.PutOp("x", []byte("y")))).Messages,
		"not normal yet: requests are not taken")

	// The fetch is resent on the heartbeat if its answer is lost.
	again := uMsgs[*messages.GetState](uTicks(t, r, 2))
	require.NotEmpty(t, again)
	assert.True(t, again[0].Msg.CommittedOnly)

	out = uServeCommitted(t, r, out, log, 3)
	require.True(t, r.IsPrimary())
	assert.Equal(t, uint64(4), r.OpNumber())
	assert.Equal(t, uint64(3), r.CommitNumber())
	assert.Equal(t, "v3", uValue(sm, "k3"))
	assert.Equal(t, "<absent>", uValue(sm, "k4"))
	svs := uMsgs[*messages.StartView](out)
	require.Len(t, svs, 2)
	for _, sv := range svs {
		assert.Equal(t, uint64(4), sv.Msg.OpNumber)
		assert.Equal(t, uint64(3), sv.Msg.CommitNumber)
		require.NotEmpty(t, sv.Msg.Entries)
		assert.LessOrEqual(t, sv.Msg.Entries[0].OpNumber, uint64(4), "the whole uncommitted suffix")
	}
}

func TestOnDoViewChange_NewPrimaryCommitsOldSuffixAfterAcksInNewView(t *testing.T) {
	r, _ := uNewPrimary(t, 3, 1, 0, uLog(1, 2, 0))
	require.Equal(t, uint64(0), r.CommitNumber())
	out := uStep(t, r, uPrepareOK(1, 2, 2))
	assert.Equal(t, uint64(2), r.CommitNumber())
	assert.Len(t, out.Replies, 2)
}

func TestOnDoViewChange_RetryOfRequestInUncommittedSuffixIsNotAppendedAgain(t *testing.T) {
	r, _ := uNewPrimary(t, 3, 1, 0, uLog(1, 1, 0))
	out := uStep(t, r, &messages.Request{ClusterId: uCluster, ClientId: 101, RequestNumber: uRegistered + 1,
		Operation: uEntry(1, 0).Operation, ReplyTo: uAddr})
	assert.True(t, out.IsEmpty(), "the request is already in the new view's log: %+v", out)
	assert.Equal(t, uint64(1), r.OpNumber())
}

func TestOnDoViewChange_LateDoViewChangeGetsStartViewAgain(t *testing.T) {
	r, _ := uNewPrimary(t, 5, 1, 0, uLog(1, 1, 0))
	out := uStep(t, r, uDVC(1, 0, 0, 0, nil))
	svs := uMsgs[*messages.StartView](out)
	require.Len(t, svs, 1)
	assert.Equal(t, 0, svs[0].To)
	assert.Equal(t, uint64(1), r.OpNumber(), "the late log is not adopted")
}

func TestChooseLog_LastNormalViewFirstThenOpNumberThenLowestIndex(t *testing.T) {
	dvc := func(replica int, lnv, op uint64) *messages.DoViewChange {
		return uDVC(9, replica, lnv, 0, uLog(1, op, lnv))
	}
	got := chooseLog(map[int]*messages.DoViewChange{0: dvc(0, 1, 9), 1: dvc(1, 3, 2), 2: dvc(2, 2, 5)}, false)
	assert.Equal(t, uint32(1), got.Replica, "largest last normal view, though shortest log")

	got = chooseLog(map[int]*messages.DoViewChange{0: dvc(0, 3, 2), 1: dvc(1, 3, 4), 2: dvc(2, 1, 7)}, false)
	assert.Equal(t, uint32(1), got.Replica, "same last normal view: largest op number")

	for k := 0; k < 20; k++ { // map order varies
		got = chooseLog(map[int]*messages.DoViewChange{4: dvc(4, 3, 4), 2: dvc(2, 3, 4), 3: dvc(3, 3, 4)}, false)
		require.Equal(t, uint32(2), got.Replica, "tie: lowest index")
	}
}

// ---------------------------------------------------------------------------
// onStartView

func TestOnStartView_BackupReplacesLogBecomesNormalExecutesAndAcks(t *testing.T) {
	r, sm := uBackup(t, 3, 2, 2, 1) // old view-0 log: ops 1, 2
	newLog := []*messages.Entry{uEntry(1, 0), uEntry(2, 1), uEntry(3, 1)}
	newLog[1].Operation = kv.PutOp("k2", []byte("replaced"))
	out := uStep(t, r, uStartView(1, 1, 2, newLog))

	assert.Equal(t, StatusNormal, r.Status())
	assert.Equal(t, uint64(1), r.View())
	assert.Equal(t, uint64(1), r.LastNormalView())
	assert.Equal(t, uint64(3), r.OpNumber())
	assert.Same(t, newLog[1], r.Entry(2), "its uncommitted op 2 is replaced")
	assert.Equal(t, uint64(2), r.CommitNumber())
	assert.Equal(t, "replaced", uValue(sm, "k2"), "committed ops are executed")
	assert.Equal(t, 2, sm.applies)
	assert.Empty(t, out.Replies, "a backup does not reply")
	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, 1, oks[0].To)
	assert.Equal(t, uint64(1), oks[0].Msg.View)
	assert.Equal(t, uint64(3), oks[0].Msg.OpNumber)
}

func TestOnStartView_ClearsViewChangeVoteState(t *testing.T) {
	r, _ := uReplica(t, 5, 3)
	uStep(t, r, uSVC(1, 2))
	uStep(t, r, uSVC(1, 4))
	require.NotNil(t, r.viewChange.sentDoViewChange)
	uStep(t, r, uStartView(1, 1, 0, nil))
	assert.Equal(t, StatusNormal, r.Status())
	assert.Equal(t, viewChangeState{}, r.viewChange)
}

func TestOnStartView_NewPrimaryClearsViewChangeVoteState(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	uStep(t, r, uSVC(1, 0))
	uStep(t, r, uDVC(1, 2, 0, 0, nil))
	require.True(t, r.IsPrimary())
	assert.Equal(t, viewChangeState{}, r.viewChange)
}

func TestOnStartView_OldDuplicateOrMalformedIsIgnored(t *testing.T) {
	r, _ := uReplica(t, 3, 2)
	uStep(t, r, uStartView(1, 1, 0, uLog(1, 1, 0)))
	require.Equal(t, uint64(1), r.OpNumber())

	assert.True(t, uStep(t, r, uStartView(0, 0, 0, nil)).IsEmpty(), "older view")
	assert.True(t, uStep(t, r, uStartView(1, 1, 0, nil)).IsEmpty(), "duplicate of the started view")
	assert.Equal(t, uint64(1), r.OpNumber())

	uStep(t, r, uStartView(4, 0, 0, nil))
	assert.Equal(t, uint64(1), r.Drops()[DropMalformed], "replica 0 is not primary of view 4")
	bad := uStartView(4, 1, 2, uLog(1, 1, 4))
	uStep(t, r, bad)
	assert.Equal(t, uint64(2), r.Drops()[DropMalformed], "commit number past op number")
	assert.Equal(t, uint64(1), r.View())
}
