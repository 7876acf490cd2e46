package vsr

// Regressions: core defects found in review, each with the history that
// exposed it. Both were fixed; these tests keep them fixed.

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// Regression 1 (fixed first by sending the whole rest of the log; now that a
// NewState carries only what fits in MaxMessageBytes, by adoptNewState, which
// takes the committed part of a partial answer and asks again, never
// becoming normal with part of the log: see
// TestOnNewState_SyncingReplicaTakesTheCommittedPartOfAPartialAnswerAndAsksAgain):
// a batch-limited NewState makes a syncing replica normal in
// the new view, with lastNormalView = v, while it holds only a PREFIX of view
// v's log. Its later DoViewChange then claims "I was normal in v" with a log
// that lacks ops committed in earlier views, and the log choice (last normal
// view first) can pick it: committed ops are lost.
//
// onGetState answers at most MaxBatch entries and sets NewState.OpNumber to
// the last entry SENT, not to its own op number, so adoptNewState cannot even
// tell that the view's log goes on; it calls becomeNormal() anyway. VR's
// log-choice rule is only safe if every replica with lastNormalView = v holds
// at least v's starting log (which contains every op committed before v).
//
// History (n = 7, f = 3, MaxBatch = 2):
//   - View 0: primary 0 commits ops 1..5 with PrepareOKs from 1, 2, 3 and
//     replies to the clients; the Commit carrying k = 5 is lost, so the
//     backups' commit numbers stay 0. Replica 0 fails.
//   - View 1 (primary 1) starts with log 1..5 but its messages are lost;
//     replica 1 ends with lastNormalView 1, log 1..5, commit 0.
//   - View 2 (primary 2) starts from DoViewChanges of 3 (log 1..5,
//     lastNormalView 1) and 4, 5, 6 (empty logs): its log is 1..5, commit 0.
//     Its StartView is lost.
//   - Replicas 4, 5, 6 hear the view-2 primary's Commit, sync
//     (GetState after 0), get NewState{entries 1..2, op 2, commit 0} and
//     become NORMAL in view 2 with log 1..2.
//   - Replica 2 fails. 1, 4, 5, 6 vote for view 3; primary 3 gets
//     DoViewChanges from 4, 5, 6
//     (lastNormalView 2, log 1..2) and 1 (lastNormalView 1, log 1..5): f+1 =
//     4 of them, so it starts view 3 with log 1..2.
//
// What happens: view 3's log is 1..2; ops 3..5, committed in view 0 and
// answered to clients, are gone (replica 3 even truncates its own copy). Every
// message in this history is one the core itself produced or would produce;
// only losses, failures and delivery order are chosen.
//
// What should happen: a syncing replica must not become normal (nor may its
// lastNormalView advance) until it holds view v's whole log as of the
// answer, e.g. NewState should carry the primary's real op number (or a
// "more follows" flag) and adoptNewState should stay syncing and ask for the
// next batch while m.OpNumber < that; or GetState while syncing should not be
// batch-limited.
func TestRegression_SyncingReplicaNeverBecomesNormalWithAPartialLog(t *testing.T) {
	const n = 7
	batch2 := func(c *Config) { c.MaxBatch = 2 }
	log := uLog(1, 5, 0) // ops 1..5, committed in view 0

	// Primary 2 of view 2, started from 3's log (lastNormalView 1) and three
	// empty ones.
	p2, _ := uReplica(t, n, 2, batch2)
	uStep(t, p2, uDVC(2, 3, 1, 0, log))
	for _, j := range []int{4, 5, 6} {
		uStep(t, p2, uDVC(2, j, 0, 0, nil))
	}
	require.True(t, p2.IsPrimary())
	require.Equal(t, uint64(5), p2.OpNumber())

	// Replicas 4, 5, 6 sync into view 2 from p2's real answers, then vote
	// for view 3 and send their DoViewChanges.
	var dvcs []*messages.DoViewChange
	for _, j := range []int{4, 5, 6} {
		r, _ := uReplica(t, n, j, batch2)
		gs := uMsgs[*messages.GetState](uStep(t, r, uCommit(2, 0, 2)))
		require.Len(t, gs, 1)
		ns := uMsgs[*messages.NewState](uStep(t, p2, gs[0].Msg))
		require.Len(t, ns, 1)
		uStep(t, r, ns[0].Msg)
		require.Equal(t, StatusNormal, r.Status())
		require.Equal(t, uint64(2), r.LastNormalView())
		uForgetPrimary(r) // p2 goes quiet
		var out Output
		for _, k := range []int{1, 4, 5, 6} { // the live replicas other than 3
			if k != j {
				out = uStep(t, r, uSVC(3, k))
			}
		}
		d := uMsgs[*messages.DoViewChange](out)
		require.Len(t, d, 1)
		dvcs = append(dvcs, d[0].Msg)
	}

	// Replica 3 held ops 1..5 (it acknowledged them in view 0); it becomes
	// primary of view 3 on DoViewChanges from 4, 5, 6 and 1.
	p3, _ := uReplica(t, n, 3, batch2)
	uStep(t, p3, uPrepare(0, 0, 0, log...))
	uForgetPrimary(p3)
	assert.NotPanics(t, func() {
		for _, d := range dvcs {
			p3.Step(d)
		}
		p3.Step(uDVC(3, 1, 1, 0, log))
	})
	require.True(t, p3.IsPrimary())
	assert.Equal(t, uint64(5), p3.OpNumber(), "ops 3..5 were committed in view 0 and must survive into view 3")
}

// Regression 2 (fixed: admit checks ProtoReflect().IsValid()): a typed nil message panics instead of being dropped.
//
// Scenario: a replica with ClusterID 0 (the zero value, which Validate
// accepts) is stepped with a typed nil such as (*messages.Prepare)(nil) or
// (*messages.Request)(nil) (e.g. an actor that forwards a nil pointer it
// received). admit only checks m == nil, which is false for a typed nil
// inside the interface; the nil-safe getters return cluster 0 and replica 0,
// so the message is admitted and the handler dereferences it (m.View,
// m.ClientId): nil-pointer panic, killing the replica.
//
// What should happen: the message is dropped and counted as DropMalformed,
// like an untyped nil (e.g. check m.ProtoReflect().IsValid() in admit).
func TestRegression_TypedNilMessageIsDroppedNotPanicking(t *testing.T) {
	for _, m := range []proto.Message{(*messages.Prepare)(nil), (*messages.Request)(nil), (*messages.Commit)(nil)} {
		r, err := New(Config{ReplicaCount: 3, ReplicaIndex: 1, StateMachine: kv.New()})
		require.NoError(t, err)
		assert.NotPanics(t, func() { r.Step(m) }, "%T", m)
		assert.Equal(t, uint64(1), r.Drops()[DropMalformed], "%T", m)
	}
}
