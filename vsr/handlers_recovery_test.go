package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

func uRecovery(from int, nonce uint64) *messages.Recovery {
	return &messages.Recovery{ClusterId: uCluster, Replica: uint32(from), Nonce: nonce}
}

// uResponse is a backup's RecoveryResponse in view.
func uResponse(view uint64, from int, nonce uint64) *messages.RecoveryResponse {
	return &messages.RecoveryResponse{ClusterId: uCluster, View: view, Nonce: nonce, Replica: uint32(from)}
}

// uPrimaryResponse is the RecoveryResponse in view of a primary whose log is
// log (ops 1..len(log)) with commit number commit: it carries the
// uncommitted suffix.
func uPrimaryResponse(view uint64, from int, nonce, commit uint64, log []*messages.Entry) *messages.RecoveryResponse {
	m := uResponse(view, from, nonce)
	m.FromPrimary, m.Entries, m.OpNumber, m.CommitNumber = true, uSuffix(log, commit), uint64(len(log)), commit
	return m
}

func TestRecovery_FirstTickBroadcastsRecoveryWithNonce(t *testing.T) {
	r, _ := uReplica(t, 3, 1, uRecovering)
	out := r.Tick()
	rs := uMsgs[*messages.Recovery](out)
	assert.ElementsMatch(t, []int{0, 2}, uTargets(rs))
	for _, m := range rs {
		assert.Equal(t, r.recovery.nonce, m.Msg.Nonce)
		assert.Equal(t, uint32(1), m.Msg.Replica)
		assert.Equal(t, uCluster, m.Msg.ClusterId)
	}
	out = uTicks(t, r, 2)
	rs2 := uMsgs[*messages.Recovery](out)
	require.Len(t, rs2, 2, "resent every heartbeat until answered")
	assert.Equal(t, rs[0].Msg.Nonce, rs2[0].Msg.Nonce, "with the same nonce")
}

func TestRecovery_NonceDependsOnSeed(t *testing.T) {
	a, _ := uReplica(t, 3, 1, uRecovering, func(c *Config) { c.Seed = 1 })
	b, _ := uReplica(t, 3, 1, uRecovering, func(c *Config) { c.Seed = 2 })
	assert.NotEqual(t, a.recovery.nonce, b.recovery.nonce)
}

func TestRecovery_RecoveringReplicaIgnoresProtocolMessages(t *testing.T) {
	r, sm := uReplica(t, 3, 1, uRecovering)
	msgs := []proto.Message{
		uReq(1, 1, kv.PutOp("a", []byte("1"))),
		uRead(1, 2, "a", messages.ReadMode_READ_MODE_STALE),
		uPrepare(0, 0, 1, uEntry(1, 0)),
		uPrepareOK(0, 1, 0),
		uCommit(0, 1, 0),
		uSVC(1, 2),
		uDVC(1, 0, 0, 0, nil),
		uStartView(1, 1, 0, nil),
		uStartView(2, 2, 0, uLog(1, 1, 0)),
		uRecovery(2, 5),
		&messages.GetState{ClusterId: uCluster, View: 0, Replica: 0},
		&messages.GetState{ClusterId: uCluster, View: 0, Replica: 0, CommittedOnly: true},
		&messages.GetCheckpoint{ClusterId: uCluster, Replica: 0},
		uNewState(0, 0, 1, uLog(1, 1, 0), 1),
		&messages.ConfirmView{ClusterId: uCluster, View: 0, Round: 1, Replica: 0},
		&messages.ConfirmViewOK{ClusterId: uCluster, View: 0, Round: 1, Replica: 0},
	}
	for _, m := range msgs {
		out := uStep(t, r, m)
		assert.True(t, uSilent(out), "%T answered: %+v", m, out)
		require.Equal(t, StatusRecovering, r.Status(), "%T", m)
	}
	assert.Equal(t, uint64(0), r.View())
	assert.Equal(t, uint64(0), r.OpNumber())
	assert.Equal(t, 0, sm.applies)
}

// The primary answers with its uncommitted suffix only, never its whole log
// or a snapshot of its state: the recovering replica fetches the committed
// state by state transfer, so no answer grows with the history.
func TestOnRecovery_BackupAnswersWithoutLogPrimaryWithUncommittedSuffix(t *testing.T) {
	b, _ := uBackup(t, 3, 1, 2, 1)
	out := uStep(t, b, uRecovery(2, 77))
	resps := uMsgs[*messages.RecoveryResponse](out)
	require.Len(t, resps, 1)
	assert.Equal(t, 2, resps[0].To)
	m := resps[0].Msg
	assert.Equal(t, uint64(77), m.Nonce)
	assert.Equal(t, uint64(0), m.View)
	assert.False(t, m.FromPrimary)
	assert.Nil(t, m.Entries)

	p, _ := uPrimary(t, 3, 2, 1)
	out = uStep(t, p, uRecovery(2, 78))
	resps = uMsgs[*messages.RecoveryResponse](out)
	require.Len(t, resps, 1)
	m = resps[0].Msg
	assert.True(t, m.FromPrimary)
	assert.Equal(t, uint64(78), m.Nonce)
	require.Len(t, m.Entries, 1, "only the op after the commit number")
	assert.Same(t, p.Entry(3), m.Entries[0])
	assert.Equal(t, uint64(3), m.OpNumber)
	assert.Equal(t, uint64(2), m.CommitNumber)
}

func TestOnRecovery_NonNormalReplicaDoesNotAnswer(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	uLeaveView(t, r)
	require.Equal(t, StatusViewChange, r.Status())
	assert.Empty(t, uStep(t, r, uRecovery(2, 1)).Messages)
}

func TestOnRecoveryResponse_NeedsFPlusOneIncludingPrimaryOfLargestView(t *testing.T) {
	r, _ := uReplica(t, 5, 4, uRecovering)
	x := r.recovery.nonce
	oldLog, newLog := uLog(1, 1, 0), uLog(1, 2, 1)

	uStep(t, r, uPrimaryResponse(0, 0, x, 0, oldLog))
	uStep(t, r, uResponse(0, 1, x))
	assert.Equal(t, StatusRecovering, r.Status(), "2 responses are fewer than f+1 = 3")

	uStep(t, r, uResponse(1, 2, x))
	assert.Equal(t, StatusRecovering, r.Status(),
		"3 responses, but the primary of the largest view (1) has answered only from view 0")

	out := uStep(t, r, uPrimaryResponse(1, 1, x, 1, newLog))
	assert.Equal(t, StatusRecovering, r.Status(), "op 1 is committed and not held yet: it is fetched first")
	gs := uMsgs[*messages.GetState](out)
	require.Len(t, gs, 1)
	assert.Equal(t, 1, gs[0].To, "from the chosen primary")
	assert.True(t, gs[0].Msg.CommittedOnly)
	assert.Equal(t, uint64(0), gs[0].Msg.OpNumber)

	out = uServeCommitted(t, r, out, newLog, 1)
	assert.Equal(t, StatusNormal, r.Status())
	assert.Equal(t, uint64(1), r.View())
	assert.Equal(t, uint64(1), r.LastNormalView())
	assert.Equal(t, uint64(2), r.OpNumber())
	assert.Same(t, newLog[1], r.Entry(2), "the later view's log, not view 0's")
	assert.Equal(t, uint64(1), r.CommitNumber())
	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, 1, oks[0].To)
	assert.Equal(t, uint64(2), oks[0].Msg.OpNumber)
}

func TestOnRecoveryResponse_PrimaryResponseFromOlderViewIsNotEnough(t *testing.T) {
	// n = 5: replica 0 is primary of views 0 and 5. Its answer as view 0's
	// primary must not be taken once another replica reports view 5.
	r, _ := uReplica(t, 5, 4, uRecovering)
	x := r.recovery.nonce
	uStep(t, r, uPrimaryResponse(0, 0, x, 0, uLog(1, 1, 0)))
	uStep(t, r, uResponse(0, 1, x))
	uStep(t, r, uResponse(5, 2, x))
	assert.Equal(t, StatusRecovering, r.Status(), "the primary answered from view 0, not 5")

	uStep(t, r, uPrimaryResponse(5, 0, x, 0, uLog(1, 3, 5)))
	assert.Equal(t, StatusNormal, r.Status())
	assert.Equal(t, uint64(5), r.View())
	assert.Equal(t, uint64(3), r.OpNumber())
}

func TestOnRecoveryResponse_WithoutPrimaryResponseKeepsWaiting(t *testing.T) {
	r, _ := uReplica(t, 3, 2, uRecovering)
	x := r.recovery.nonce
	uStep(t, r, uResponse(0, 1, x))
	uStep(t, r, uResponse(1, 0, x)) // view 1's primary is replica 1, which answered from view 0
	assert.Equal(t, StatusRecovering, r.Status())
}

func TestOnRecoveryResponse_WrongNonceIsIgnored(t *testing.T) {
	r, _ := uReplica(t, 3, 2, uRecovering)
	x := r.recovery.nonce
	uStep(t, r, uPrimaryResponse(0, 0, x+1, 0, uLog(1, 1, 0)))
	assert.Empty(t, r.recovery.responses)
	uStep(t, r, uResponse(0, 1, x))
	assert.Equal(t, StatusRecovering, r.Status(), "the primary's answer was to another recovery")
	uStep(t, r, uPrimaryResponse(0, 0, x, 0, uLog(1, 1, 0)))
	assert.Equal(t, StatusNormal, r.Status())
}

func TestOnRecoveryResponse_MalformedPrimaryResponseIsDropped(t *testing.T) {
	r, _ := uReplica(t, 3, 2, uRecovering)
	x := r.recovery.nonce
	notPrimary := uPrimaryResponse(0, 1, x, 0, nil)
	uStep(t, r, notPrimary)
	badLog := uPrimaryResponse(0, 0, x, 0, uLog(1, 2, 0))
	badLog.OpNumber = 1
	uStep(t, r, badLog)
	assert.Equal(t, uint64(2), r.Drops()[DropMalformed])
	assert.Empty(t, r.recovery.responses)
}

// uRecoverFrom runs a recovery of replica 2 (n = 3) from primary p, which
// answers Recovery and GetState directly, and backup 1, which answers
// Recovery only. It returns the recovered replica and every output it
// produced after it had its f+1 answers.
func uRecoverFrom(t *testing.T, p *Replica) (*Replica, *uSM, Output) {
	t.Helper()
	r, sm := uReplica(t, 3, 2, uRecovering)
	out := r.Tick()
	var toPrimary *messages.Recovery
	for _, m := range uMsgs[*messages.Recovery](out) {
		if m.To == 0 {
			toPrimary = m.Msg
		}
	}
	require.NotNil(t, toPrimary)
	resps := uMsgs[*messages.RecoveryResponse](uStep(t, p, toPrimary))
	require.Len(t, resps, 1)
	uStep(t, r, uResponse(0, 1, toPrimary.Nonce))
	out = uStep(t, r, resps[0].Msg)
	all := out
	for k := 0; k < 10 && r.Status() == StatusRecovering; k++ {
		var next Output
		for _, env := range out.Messages {
			require.Equal(t, 0, env.To, "a recovering replica asks only the chosen primary")
			next.Messages = append(next.Messages, uStep(t, r, uStep(t, p, env.Msg).Messages[0].Msg).Messages...)
		}
		out = next
		all.Messages = append(all.Messages, next.Messages...)
	}
	require.Equal(t, StatusNormal, r.Status())
	return r, sm, all
}

// The recovering replica holds nothing: it fetches the committed ops from the
// primary (committed_only GetState), replays them, and only then adopts the
// primary's uncommitted suffix and becomes normal.
func TestOnRecoveryResponse_FetchesCommittedOpsThenAdoptsPrimarySuffix(t *testing.T) {
	p, psm := uPrimary(t, 3, 2, 1)
	r, sm, out := uRecoverFrom(t, p)

	gs := uMsgs[*messages.GetState](out)
	require.NotEmpty(t, gs)
	assert.True(t, gs[0].Msg.CommittedOnly)
	assert.Equal(t, uint64(0), gs[0].Msg.OpNumber, "it holds nothing")
	assert.Equal(t, 2, sm.applies, "the committed ops are replayed")
	want, _ := psm.Snapshot()
	got, _ := sm.Snapshot()
	assert.Equal(t, want, got)
	assert.Equal(t, "v2", uValue(sm, "k2"))
	assert.Equal(t, "<absent>", uValue(sm, "k3"), "op 3 is not committed")
	assert.Equal(t, uint64(2), r.CommitNumber())
	assert.Equal(t, uint64(3), r.OpNumber())
	assert.Same(t, p.Entry(3), r.Entry(3), "the primary's uncommitted suffix")
	require.NotNil(t, r.clientTable.executed(2), "replay rebuilds the client table")
	assert.Equal(t, uint64(uRegistered+1), r.clientTable.executed(2).requestNumber)
	assert.Len(t, uMsgs[*messages.PrepareOK](out), 1)
}

// Recovery never asks the primary's state machine for a snapshot: a primary
// that cannot take one (and has taken no checkpoint yet) still recovers a
// replica, which replays the log.
func TestOnRecoveryResponse_NeedsNoSnapshotOfThePrimary(t *testing.T) {
	p, _ := uPrimary(t, 3, 2, 1, func(c *Config) {
		c.StateMachine = &uSM{Store: kv.NewStore(), noSnap: true}
	})
	psm := p.sm.(*uSM)
	r, sm, _ := uRecoverFrom(t, p)

	assert.Equal(t, 2, sm.applies, "the committed ops are replayed")
	want, _ := psm.Store.Snapshot()
	got, _ := sm.Snapshot()
	assert.Equal(t, want, got)
	assert.Equal(t, uint64(2), r.CommitNumber())
	assert.Equal(t, uint64(3), r.OpNumber())
}
