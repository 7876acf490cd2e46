package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// Scenario tests of the view change (paper section 4.2) and the pitfalls of
// DESIGN.md that concern it.

// Pitfall 1. n = 3: op 3 is committed on replicas 0 and 2; replica 1, the
// next primary, never saw it. When 0 fails, 1 must wait for f+1 = 2
// DoViewChanges (its own and 2's); acting on the first, its own, would start
// view 1 without op 3 and lose a committed op. Replica 2's DoViewChange
// carries only its suffix after its commit number, and replica 1 lacks a
// committed op before it (the registration, op 2): it fetches that from 2
// before it starts the view.
func TestNewPrimaryWaitsForQuorumOfDoViewChanges(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1, 2)
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("committed"))))
	nw.deliverIf(func(p packet) bool { return p.to != 1 }) // the Prepare to 1 is lost
	nw.deliver()
	require.NotNil(t, nw.replyFor(1, 2), "op 3 committed and answered")

	nw.isolate(0)
	nw.run(DefaultInactivityTicks + 5)
	require.True(t, nw.replicas[1].IsPrimary())
	require.Equal(t, uint64(1), nw.replicas[1].View())
	op3 := nw.replicas[1].Entry(3).Operation
	require.Equal(t, "committed", string(op3[len(op3)-9:]))
	nw.put(1, 2, 2, "b", "2")
	nw.run(DefaultHeartbeatTicks)
	nw.requireConverged(1, 2)
	require.Equal(t, "committed", nw.value(2, "a"))
	require.Equal(t, "committed", nw.value(1, "a"))
}

// The same rule at n = 5: two DoViewChanges (the primary's own and one more)
// are not enough, three are.
func TestNewPrimaryOfFiveStartsOnlyOnThreeDoViewChanges(t *testing.T) {
	nw := newNetwork(t, 5)
	for i := range nw.replicas {
		nw.do(i, func(r *Replica) { r.startViewChange(1) })
	}
	// Deliver StartViewChanges only, so everyone sends its DoViewChange.
	nw.deliverIf(func(p packet) bool { return isType(p, &messages.StartViewChange{}) })
	var dvcs []packet
	for _, p := range nw.inflight {
		if isType(p, &messages.DoViewChange{}) {
			dvcs = append(dvcs, p)
		}
	}
	nw.dropAll()
	require.Len(t, dvcs, 4, "every backup sends its DoViewChange to replica 1")
	require.NotNil(t, nw.replicas[1].viewChange.sentDoViewChange, "the new primary counted its own")

	nw.step(1, dvcs[0].msg)
	require.Equal(t, StatusViewChange, nw.replicas[1].Status(), "2 of 5 DoViewChanges must not start the view")
	nw.step(1, dvcs[1].msg)
	require.True(t, nw.replicas[1].IsPrimary(), "3 of 5 DoViewChanges start the view")
}

// Pitfall 2 and review item 6. n = 3: in view 0, replica 0 appends two ops
// that never leave it. Replicas 1 and 2 move to view 1 and commit a different
// op 1. Then 1 fails and 0 comes back: view 2's primary, 2, gets
// DoViewChanges from 0 (last normal view 0, op 2) and itself (last normal
// view 1, op 1). Choosing by op number alone would take 0's longer log and
// lose the committed op; the later normal view must win.
func TestViewChangeChoosesLogByLastNormalViewBeforeOpNumber(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1, 2, 3) // ops 1..3, held by everyone
	nw.step(0, request(1, 2, kv.PutOp("old", []byte("1"))))
	nw.step(0, request(2, 2, kv.PutOp("old", []byte("2"))))
	nw.dropAll()
	require.Equal(t, uint64(5), nw.replicas[0].OpNumber())

	nw.isolate(0)
	nw.run(DefaultInactivityTicks+5, 0)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.put(1, 3, 2, "new", "committed")
	require.NotNil(t, nw.replyFor(3, 2))

	nw.heal()
	nw.isolate(1)
	nw.dropAll()
	// Replica 0 never heard of view 1: it must start view 2 with 2 and bring
	// its longer, older log.
	nw.do(0, func(r *Replica) { r.startViewChange(2) })
	nw.do(2, func(r *Replica) { r.startViewChange(2) })
	nw.deliver()
	require.True(t, nw.replicas[2].IsPrimary())
	require.Equal(t, uint64(2), nw.replicas[2].View())
	nw.run(DefaultHeartbeatTicks, 1)
	nw.requireConverged(0, 2)
	require.Equal(t, "committed", nw.value(0, "new"))
	require.Equal(t, "<absent>", nw.value(0, "old"), "ops that were never committed are gone")
}

// Pitfall 3. After a view change the new primary is normal and serves
// clients: a new write commits and is answered.
func TestNewPrimaryLeavesViewChangeStatusAndServesClients(t *testing.T) {
	for _, n := range []int{3, 5} {
		nw := newNetwork(t, n)
		nw.register(0, 1)
		nw.put(0, 1, 2, "a", "1")
		nw.isolate(0)
		nw.run(DefaultInactivityTicks+5, 0)
		p := nw.primary()
		require.Equal(t, 1, p, "n=%d", n)
		require.Equal(t, StatusNormal, nw.replicas[p].Status())
		nw.put(p, 1, 3, "a", "2")
		require.NotNil(t, nw.replyFor(1, 3), "n=%d: the new primary answered", n)
	}
}

// Pitfall 4. Op 2 is committed at the old primary, but no backup has executed
// it (the commit never reached them). Replica 2 then takes part in the view
// change only as a listener (its messages to the new primary are lost), so it
// learns that op 2 is committed from the StartView alone: it must execute it,
// not just mark it committed. The new primary must execute it too, and a
// retry of the request is answered from its client table without running it
// again. (That the new primary answers such an op without waiting for a
// retry is TestNewPrimaryAnswersCommittedOpsFetchedBeforeStartView.)
func TestCommittedOpsAreExecutedEverywhereAfterStartView(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.run(DefaultHeartbeatTicks) // everyone executes the registration
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("1"))))
	nw.deliverIf(func(p packet) bool { return isType(p, &messages.Prepare{}) || isType(p, &messages.PrepareOK{}) })
	nw.deliverIf(func(p packet) bool { return isType(p, &messages.PrepareOK{}) })
	require.Equal(t, uint64(2), nw.replicas[0].CommitNumber())
	nw.replies = nil
	nw.dropAll()
	require.Equal(t, "<absent>", nw.value(1, "a"))
	require.Equal(t, "<absent>", nw.value(2, "a"))

	nw.cut[2][1] = true
	// 0's heartbeats are lost: its backups lose it, and it hears no answer.
	nw.filter = func(p *packet) bool {
		return p.from != 0 || !(isType(*p, &messages.Commit{}) || isType(*p, &messages.Prepare{}))
	}
	nw.run(DefaultInactivityTicks + 5)
	require.True(t, nw.replicas[1].IsPrimary())
	require.Equal(t, uint64(2), nw.replicas[2].CommitNumber())
	require.Equal(t, "1", nw.value(2, "a"), "a backup executes what StartView says is committed")
	require.Equal(t, "1", nw.value(1, "a"))

	counter := &countingSM{StateMachine: nw.stores[1]}
	nw.replicas[1].sm = counter
	nw.step(1, request(1, 2, kv.PutOp("a", []byte("1"))))
	nw.deliver()
	rep := nw.replyFor(1, 2)
	require.NotNil(t, rep, "the new primary answers the op it executed")
	require.Equal(t, uint32(1), rep.Replica)
	require.Equal(t, 0, counter.applies, "from its client table")
}

// Pitfall 5 and review item 2. A Prepare from an older view is ignored, and
// a PrepareOK goes to the primary of the view the backup is in.
func TestOldViewPrepareIgnoredAndPrepareOKGoesToCurrentPrimary(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("stale"))))
	stale := nw.inflight // Prepares of view 0
	nw.dropAll()
	nw.isolate(0)
	nw.run(DefaultInactivityTicks+5, 0)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.heal()

	for _, p := range stale {
		if p.to == 2 {
			out := nw.replicas[2].Step(p.msg)
			require.Empty(t, out.Messages, "an old view's Prepare gets no answer")
		}
	}
	require.Equal(t, uint64(1), nw.replicas[2].OpNumber(), "an old view's Prepare is not appended")

	nw.step(1, request(1, 3, kv.PutOp("a", []byte("new"))))
	var sawOK bool
	nw.deliverIf(func(p packet) bool {
		if isType(p, &messages.PrepareOK{}) {
			sawOK = true
			require.Equal(t, 1, p.to, "PrepareOK goes to the primary of view 1")
		}
		return true
	})
	nw.deliverIf(func(p packet) bool {
		if isType(p, &messages.PrepareOK{}) {
			sawOK = true
			require.Equal(t, 1, p.to, "PrepareOK goes to the primary of view 1")
		}
		return true
	})
	require.True(t, sawOK)
}

// Pitfall 8. Vote state does not outlive what it counts: after the view
// change the new primary's acknowledgements start from zero, so a PrepareOK
// from the old view cannot commit anything in the new one, and a replica
// that is normal holds no view-change votes.
func TestVoteStateIsPerViewAndFreedWhenTheViewIsLeft(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.put(0, 1, 2, "a", "1")
	oldOK := &messages.PrepareOK{ClusterId: testCluster, View: 0, OpNumber: 5, Replica: 2}

	nw.isolate(0)
	nw.run(DefaultInactivityTicks+5, 0)
	p := nw.replicas[1]
	require.True(t, p.IsPrimary())
	for i, r := range nw.replicas[1:] {
		require.Nil(t, r.viewChange.doViewChanges, "replica %d", i+1)
		require.Nil(t, r.viewChange.startViewChanges, "replica %d", i+1)
	}
	nw.step(1, request(1, 3, kv.PutOp("a", []byte("2"))))
	nw.dropAll()
	commit := p.CommitNumber()
	nw.step(1, oldOK)
	require.Equal(t, commit, p.CommitNumber(), "a PrepareOK of view 0 counts nothing in view 1")
	require.Less(t, p.primary.acked[2], uint64(3))

	// Per-op state: committing frees it, because there is none but one
	// high-water mark per backup.
	nw.run(2*DefaultHeartbeatTicks, 0)
	require.Equal(t, p.OpNumber(), p.CommitNumber())
	require.Len(t, p.primary.acked, 3)
	require.Empty(t, p.clientTable.inProgress, "committed requests are no longer in progress")
}

// Review item 1: the view change is the canonical one. StartViewChange is
// answered by DoViewChange (no acknowledgement round), and votes for one
// view do not count for the next.
func TestCanonicalViewChangeWithoutAcknowledgementRound(t *testing.T) {
	nw := newNetwork(t, 3)
	r2 := nw.replicas[2]
	nw.do(2, func(r *Replica) { r.startViewChange(1) })
	nw.dropAll()
	out := r2.Step(&messages.StartViewChange{ClusterId: testCluster, View: 1, Replica: 0})
	require.Len(t, out.Messages, 1)
	require.IsType(t, &messages.DoViewChange{}, out.Messages[0].Msg, "f StartViewChanges lead straight to DoViewChange")
	require.Equal(t, 1, out.Messages[0].To, "to the primary of view 1")

	// Replica 2 moves to view 2 on its view-change timeout: replica 0's vote
	// for view 1 must not count there.
	nw.isolate(2)
	nw.run(DefaultViewChangeTicks+1, 0, 1)
	r2.Step(&messages.ViewChangeProbeOK{ClusterId: testCluster, View: 2, Replica: 1}) // 1 has given up on view 1 too
	require.Equal(t, uint64(2), r2.View())
	require.Nil(t, r2.viewChange.sentDoViewChange, "no DoViewChange for view 2 without a vote for view 2")
	require.Equal(t, 0, r2.countStartViewChanges())
}

// Review item 3: a backup that hears nothing from its primary starts a view
// change; an idle primary's heartbeats keep it from doing so.
func TestInactivityTimeoutStartsViewChangeAndHeartbeatsPreventIt(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.run(5 * DefaultInactivityTicks)
	for _, r := range nw.replicas {
		require.Equal(t, uint64(0), r.View(), "an idle but live primary keeps its view")
	}
	nw.run(DefaultInactivityTicks+DefaultViewChangeTicks, 0) // the primary stops ticking: no heartbeats
	require.Equal(t, uint64(1), nw.replicas[1].View())
	require.True(t, nw.replicas[1].IsPrimary())
}

// The view change succeeds with f replicas down at n = 5, and every live
// replica ends in the same state.
func TestViewChangeWithFReplicasDownAtFive(t *testing.T) {
	nw := newNetwork(t, 5)
	nw.register(0, 1)
	nw.put(0, 1, 2, "a", "1")
	nw.put(0, 1, 3, "b", "2")
	nw.isolate(0)
	nw.isolate(1) // the next primary too: the group must skip to view 2
	nw.run(DefaultInactivityTicks+2*DefaultViewChangeTicks+5, 0, 1)
	require.True(t, nw.replicas[2].IsPrimary())
	nw.put(2, 1, 4, "c", "3")
	require.NotNil(t, nw.replyFor(1, 4))
	nw.run(DefaultHeartbeatTicks, 0, 1)
	nw.requireConverged(2, 3, 4)
	require.Equal(t, "1", nw.value(4, "a"))
}
