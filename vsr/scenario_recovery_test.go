package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// Scenario tests of recovery (paper section 4.3) and state transfer (section
// 5.2), including the cases from Vanlightly's TLA+ analysis (pitfall 9) and
// the restarted replica that must not answer as if it had its state
// (pitfall 10).

// Pitfall 10. A backup that acknowledged op 1 restarts empty. Until it has
// recovered it must answer nothing: not Prepares, not view-change messages,
// not clients. After recovery it holds everything the group committed.
func TestRestartedReplicaAnswersNothingUntilRecovered(t *testing.T) {
	for _, n := range []int{3, 5} {
		nw := newNetwork(t, n)
		nw.register(0, 1)
		nw.put(0, 1, 2, "a", "1")
		nw.restart(1)
		r1 := nw.replicas[1]
		silent := []proto.Message{
			&messages.Prepare{ClusterId: testCluster, View: 0, Replica: 0, CommitNumber: 1,
				Entries: []*messages.Entry{nw.replicas[0].Entry(1)}},
			&messages.StartViewChange{ClusterId: testCluster, View: 1, Replica: 2},
			&messages.DoViewChange{ClusterId: testCluster, View: 1, Replica: 2},
			&messages.Recovery{ClusterId: testCluster, Replica: 2, Nonce: 9},
			&messages.GetState{ClusterId: testCluster, View: 0, Replica: 2},
			&messages.ConfirmView{ClusterId: testCluster, View: 0, Round: 1, Replica: 0},
			request(1, 3, kv.GetOp("a")),
		}
		for _, m := range silent {
			out := r1.Step(m)
			nw.disks[1].apply(t, out)
			require.Empty(t, out.Messages, "n=%d: a recovering replica answers no %T", n, m)
			require.Empty(t, out.Replies, "n=%d", n)
		}
		require.Equal(t, StatusRecovering, r1.Status())

		nw.run(1)
		require.Equal(t, StatusNormal, r1.Status(), "n=%d", n)
		require.Equal(t, "1", nw.value(1, "a"), "n=%d: recovered the committed state from the primary", n)
		nw.run(DefaultHeartbeatTicks)
		nw.requireConverged()
	}
}

// A restarted primary comes back as a backup of the view its peers moved to,
// with every op they committed, including ones it had committed itself.
func TestRestartedPrimaryRecoversIntoTheNewView(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.put(0, 1, 2, "a", "1")
	nw.restart(0)
	nw.isolate(0)
	nw.run(DefaultInactivityTicks+5, 0)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.put(1, 1, 3, "b", "2")
	nw.heal()
	nw.run(2 * DefaultHeartbeatTicks)
	require.Equal(t, StatusNormal, nw.replicas[0].Status())
	require.Equal(t, uint64(1), nw.replicas[0].View())
	nw.requireConverged()
	require.Equal(t, "1", nw.value(0, "a"))
	require.Equal(t, "2", nw.value(0, "b"))
}

// Pitfall 9 (recovery responses can come from several views). The
// recovering replica hears from the primary of view 0 and from a replica
// already in view 1: it must not adopt view 0's state, but wait for the
// primary of view 1.
func TestRecoveryWaitsForPrimaryOfLatestView(t *testing.T) {
	nw := newNetwork(t, 5)
	nw.restart(4)
	r := nw.replicas[4]
	nonce := r.recovery.nonce
	oldPrimary := &messages.RecoveryResponse{ClusterId: testCluster, View: 0, Nonce: nonce, Replica: 0,
		FromPrimary: true}
	laterBackup := &messages.RecoveryResponse{ClusterId: testCluster, View: 1, Nonce: nonce, Replica: 2}
	anotherOld := &messages.RecoveryResponse{ClusterId: testCluster, View: 0, Nonce: nonce, Replica: 3}
	nw.step(4, oldPrimary)
	nw.step(4, laterBackup)
	nw.step(4, anotherOld)
	require.Equal(t, StatusRecovering, r.Status(), "f+1 answers, but none from the primary of view 1")

	entry := &messages.Entry{OpNumber: 1, View: 1, ClientId: 1, RequestNumber: 1, Operation: kv.PutOp("a", []byte("1"))}
	nw.step(4, &messages.RecoveryResponse{ClusterId: testCluster, View: 1, Nonce: nonce, Replica: 1,
		FromPrimary: true, Entries: []*messages.Entry{entry}, OpNumber: 1, CommitNumber: 0})
	require.Equal(t, StatusNormal, r.Status())
	require.Equal(t, uint64(1), r.View())
	require.True(t, proto.Equal(entry, r.Entry(1)), "view 1's primary's suffix, not view 0's")
}

// Recovery ignores answers to another recovery (a different nonce).
func TestRecoveryIgnoresResponsesWithAnotherNonce(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.restart(2)
	r := nw.replicas[2]
	for _, j := range []uint32{0, 1} {
		nw.step(2, &messages.RecoveryResponse{ClusterId: testCluster, View: 0, Nonce: r.recovery.nonce + 1,
			Replica: j, FromPrimary: j == 0})
	}
	require.Equal(t, StatusRecovering, r.Status())
}

// Pitfall 9 (state transfer to a later view) and the fix DESIGN.md asks for.
// Replica 2 misses the whole view change to view 1. When view 1's primary
// then sends it a Prepare, it must not truncate its log to its stale commit
// number and carry on: it keeps its log and its last normal view, sends no
// PrepareOK, and fetches view 1's log from view 1's primary first.
func TestReplicaLearningOfLaterViewFetchesItsLogBeforeVoting(t *testing.T) {
	nw := newNetwork(t, 5)
	nw.register(0, 1) // op 1, held by everyone, committed at 0
	// Ops 2 and 3 committed in view 0 with the acknowledgements of 1 and 2;
	// nobody but 0 knows they are committed.
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("1"))))
	nw.step(0, request(1, 3, kv.PutOp("b", []byte("2"))))
	nw.deliverIf(func(p packet) bool { return p.to == 1 || p.to == 2 })
	nw.dropAll()
	require.Equal(t, uint64(1), nw.replicas[2].CommitNumber())

	// View 1 forms without 0 and 2.
	nw.isolate(0)
	nw.isolate(2)
	nw.run(DefaultInactivityTicks+5, 0, 2)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.heal()
	nw.isolate(0)
	nw.step(1, request(1, 4, kv.PutOp("c", []byte("3"))))
	var prepareTo2 *messages.Prepare
	nw.deliverIf(func(p packet) bool {
		if p.to == 2 {
			prepareTo2 = p.msg.(*messages.Prepare)
			return false
		}
		return true
	})
	nw.deliver()

	r2 := nw.replicas[2]
	out := r2.Step(prepareTo2)
	require.Equal(t, uint64(1), r2.View())
	require.Equal(t, StatusViewChange, r2.Status())
	require.Equal(t, uint64(0), r2.LastNormalView(), "it was never normal in view 1")
	require.Equal(t, uint64(3), r2.OpNumber(), "its log is not truncated to its stale commit number")
	require.Len(t, out.Messages, 1)
	getState, ok := out.Messages[0].Msg.(*messages.GetState)
	require.True(t, ok, "it asks for view 1's log, and sends no PrepareOK")
	require.Equal(t, 1, out.Messages[0].To)
	require.Equal(t, uint64(1), getState.OpNumber, "from after its commit number")

	// A view change before the log arrives: its DoViewChange carries its
	// old log and last normal view, never a claim of view 1.
	nw.do(2, func(r *Replica) { r.startViewChange(2) })
	nw.step(2, &messages.StartViewChange{ClusterId: testCluster, View: 2, Replica: 3})
	nw.step(2, &messages.StartViewChange{ClusterId: testCluster, View: 2, Replica: 4})
	dvc := r2.viewChange.sentDoViewChange
	require.NotNil(t, dvc)
	require.Equal(t, uint64(0), dvc.LastNormalView)
	require.Equal(t, uint64(3), dvc.OpNumber)
	nw.dropAll()
}

// The later-view case completed: the NewState from view 1's primary replaces
// the suffix after the commit number and makes the replica normal in view 1,
// and from then on it acknowledges. Replica 4 holds an op of view 0 that no
// one else kept; view 1 put another op in its place.
func TestReplicaAdoptsLaterViewLogThenAcknowledges(t *testing.T) {
	nw := newNetwork(t, 5)
	nw.register(0, 1, 2) // ops 1 and 2, held by everyone
	nw.step(0, request(1, 2, kv.PutOp("lost", []byte("x"))))
	nw.deliverIf(func(p packet) bool { return p.to == 4 })
	nw.dropAll()
	require.Equal(t, uint64(3), nw.replicas[4].OpNumber())

	nw.isolate(0)
	nw.isolate(4)
	nw.run(DefaultInactivityTicks+5, 0, 4)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.put(1, 2, 2, "kept", "y")
	require.NotNil(t, nw.replyFor(2, 2))

	nw.heal()
	nw.isolate(0)
	nw.run(2*DefaultHeartbeatTicks, 0)
	nw.requireConverged(1, 2, 3, 4)
	r4 := nw.replicas[4]
	require.Equal(t, uint64(1), r4.LastNormalView())
	require.Equal(t, "y", nw.value(4, "kept"))
	require.Equal(t, "<absent>", nw.value(4, "lost"), "the uncommitted op of the old view is replaced")
	require.Equal(t, r4.OpNumber(), nw.replicas[1].primary.acked[4], "once normal in view 1 it acknowledges")
}
