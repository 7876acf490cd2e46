package vsr

// Scenarios of bounded history: view changes and recoveries that carry only
// the uncommitted suffix, and replicas that fetch the committed state they
// lack (entries, or a checkpoint when the logs were trimmed) before they
// take part. The harness checks every message against MaxMessageBytes.

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
)

// order records, in delivery order, what replica i sent and received that a
// scenario cares about.
type order struct{ events []string }

// last is the index of the last event, or -1.
func (o *order) last(event string) int {
	for k := len(o.events) - 1; k >= 0; k-- {
		if o.events[k] == event {
			return k
		}
	}
	return -1
}

// index is the index of the first event, or -1.
func (o *order) index(event string) int {
	for k, e := range o.events {
		if e == event {
			return k
		}
	}
	return -1
}

// watchTransfer records the fetches of replica i and the StartViews it sends.
func (nw *network) watchTransfer(i int) *order {
	o := &order{}
	nw.watch = func(p packet) {
		switch m := p.msg.(type) {
		case *messages.GetState:
			if p.from == i && m.CommittedOnly {
				o.events = append(o.events, "committed GetState")
			}
		case *messages.NewState:
			if p.to == i && m.CommittedOnly {
				o.events = append(o.events, "committed NewState")
			}
		case *messages.CheckpointChunk:
			if p.to == i {
				o.events = append(o.events, "chunk")
			}
		case *messages.StartView:
			if p.from == i {
				o.events = append(o.events, "StartView")
			}
		}
	}
	return o
}

// newPrimaryLagging leaves replica 1, the primary of view 1, holding only op
// 1 while 0 and 2 commit up to op last; then 0 fails and 1 comes back.
func newPrimaryLagging(t *testing.T, last uint64, big bool, opts ...func(*Config)) *network {
	t.Helper()
	nw := newNetwork(t, 3, opts...)
	nw.register(0, 1)
	nw.isolate(1)
	if big {
		nw.writeBig(last)
	} else {
		nw.writeOps(last)
	}
	require.Equal(t, uint64(1), nw.replicas[1].OpNumber())
	nw.heal()
	nw.isolate(0)
	return nw
}

func TestViewChange_NewPrimaryBehindTheChosenCommitFetchesCommittedOpsBeforeStartView(t *testing.T) {
	nw := newPrimaryLagging(t, 6, false)
	o := nw.watchTransfer(1)
	nw.run(DefaultInactivityTicks+DefaultViewChangeTicks, 0)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.requireConverged(1, 2)
	assert.Equal(t, uint64(6), nw.replicas[1].CommitNumber())
	fetched, started := o.index("committed NewState"), o.index("StartView")
	require.GreaterOrEqual(t, fetched, 0, "it fetched the committed ops: %v", o.events)
	assert.Less(t, fetched, started, "before it started the view: %v", o.events)

	nw.put(1, 1, nw.nextRequest(1), "after", "view change")
	require.Equal(t, "view change", nw.value(1, "after"))
}

func TestViewChange_NewPrimaryBehindTheTrimmedLogsFetchesTheCheckpointBeforeStartView(t *testing.T) {
	nw := newPrimaryLagging(t, 13, true, smallHistory)
	require.Equal(t, uint64(10), nw.replicas[2].LogBase())
	o := nw.watchTransfer(1)
	nw.run(DefaultInactivityTicks+DefaultViewChangeTicks, 0)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.requireConverged(1, 2)
	_, installed := nw.replicas[1].CheckpointStats()
	assert.Equal(t, uint64(1), installed)
	chunk, started := o.index("chunk"), o.index("StartView")
	require.GreaterOrEqual(t, chunk, 0, "it fetched the checkpoint: %v", o.events)
	assert.Less(t, chunk, started, "before it started the view: %v", o.events)
	assert.Equal(t, nw.replicas[2].clientTable.rows(), nw.replicas[1].clientTable.rows())
}

// A backup that sent no DoViewChange (it could not be heard) gets a StartView
// whose entries begin after ops it has not committed: it must not become
// normal on it, but fetch the view's log first, and only then acknowledge.
func TestStartView_BackupMissingCommittedOpsBeforeTheEntriesSyncsBeforeBecomingNormal(t *testing.T) {
	nw := newNetwork(t, 5)
	nw.register(0, 1)
	nw.isolate(4)
	nw.writeOps(6)
	require.Equal(t, uint64(1), nw.replicas[4].OpNumber())
	nw.heal()
	nw.isolate(0)
	for j := range nw.replicas {
		nw.cut[4][j] = true // 4 hears, but is not heard
	}
	var sv *messages.StartView
	nw.watch = func(p packet) {
		if m, ok := p.msg.(*messages.StartView); ok && p.to == 4 && sv == nil {
			sv = m
			r4 := nw.replicas[4]
			require.NotEqual(t, StatusNormal, r4.Status(), "normal without ops 2..%d", m.OpNumber)
			require.True(t, r4.syncing)
			require.Equal(t, m.View, r4.View())
		}
	}
	for k := 0; k < DefaultInactivityTicks+DefaultViewChangeTicks && sv == nil; k++ {
		nw.run(1, 0, 4) // 4 does not tick: it would move on to views of its own
	}
	require.NotNil(t, sv, "the new primary sent a StartView")
	require.Greater(t, sv.OpNumber+1-uint64(len(sv.Entries)), uint64(2), "its entries start past replica 4's commit number")
	p := nw.primary()
	assert.NotEqual(t, nw.replicas[4].OpNumber(), nw.replicas[p].primary.acked[4], "no PrepareOK while syncing")

	nw.heal()
	nw.isolate(0)
	nw.run(3*DefaultHeartbeatTicks, 0)
	nw.requireConverged(1, 2, 3, 4)
	assert.Equal(t, nw.replicas[4].OpNumber(), nw.replicas[p].primary.acked[4], "normal, it acknowledges")
}

func TestRecovery_AfterTrimmingARestartedBackupRecoversThroughCheckpointAndLog(t *testing.T) {
	nw := newNetwork(t, 3, smallHistory)
	nw.register(0, 1)
	nw.writeBig(13)
	require.Equal(t, uint64(10), nw.replicas[0].LogBase(), "op 1 is gone from every log")
	nw.restart(2)
	r2 := nw.replicas[2]
	o := nw.watchTransfer(2)
	answered := false
	nw.filter = func(p *packet) bool {
		if p.from == 2 && r2.Status() == StatusRecovering {
			switch p.msg.(type) {
			case *messages.Recovery, *messages.GetState, *messages.GetCheckpoint:
			default:
				answered = true
			}
		}
		return true
	}
	nw.run(3 * DefaultHeartbeatTicks)
	assert.False(t, answered, "a recovering replica only asks")
	require.Equal(t, StatusNormal, r2.Status())
	nw.requireConverged()
	_, installed := r2.CheckpointStats()
	assert.Equal(t, uint64(1), installed, "through the checkpoint")
	chunk, entries := o.index("chunk"), o.last("committed NewState")
	assert.GreaterOrEqual(t, chunk, 0, "fetched in chunks: %v", o.events)
	assert.Greater(t, entries, chunk, "and the log after it: %v", o.events)
	assert.Equal(t, nw.replicas[0].clientTable.rows(), r2.clientTable.rows())

	nw.put(0, 1, nw.nextRequest(1), "after", "recovery")
	nw.run(DefaultHeartbeatTicks)
	nw.requireConverged()
}

func TestRecovery_AfterTrimmingARestartedPrimaryRecoversIntoTheNewView(t *testing.T) {
	nw := newNetwork(t, 3, smallHistory)
	nw.register(0, 1)
	nw.writeBig(13)
	nw.restart(0)
	nw.isolate(0)
	nw.run(DefaultInactivityTicks+5, 0)
	require.True(t, nw.replicas[1].IsPrimary())
	nw.writeBig(18) // and a checkpoint at 16 the restarted replica never saw
	nw.heal()
	nw.run(4 * DefaultHeartbeatTicks)
	r0 := nw.replicas[0]
	require.Equal(t, StatusNormal, r0.Status())
	assert.Equal(t, uint64(1), r0.View())
	nw.requireConverged()
	_, installed := r0.CheckpointStats()
	assert.Equal(t, uint64(1), installed)
}

// The new primary executes the committed ops it fetched before it started
// the view; the paper has it reply to their clients too (section 4.2: it
// "executes (in order) any committed operations that it hadn't executed
// previously, updates its client table, and sends the replies to the
// clients"), as startView's comment promises.
func TestNewPrimaryAnswersCommittedOpsFetchedBeforeStartView(t *testing.T) {
	nw := newPrimaryLagging(t, 3, false)
	nw.replies = nil // the old primary's replies were lost
	nw.run(DefaultInactivityTicks+DefaultViewChangeTicks, 0)
	require.True(t, nw.replicas[1].IsPrimary())
	rep := nw.replyFor(1, 3)
	require.NotNil(t, rep, "the new primary must answer the committed ops it fetched before its view started")
	assert.Equal(t, uint32(1), rep.Replica)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, rep.Error)
}

// Which replica a new primary fetches committed ops from must not depend on
// Go's map order: the core is deterministic, and a run must replay the same
// messages.
func TestStartView_CatchUpSourceAmongEqualCommitNumbersIsDeterministic(t *testing.T) {
	log := uLog(1, 4, 0)
	seen := map[int]bool{}
	for k := 0; k < 64; k++ {
		r, _ := uReplica(t, 3, 1)
		uStep(t, r, uDVC(1, 2, 0, 3, log))
		out := uStep(t, r, uDVC(1, 0, 0, 3, log))
		gs := uMsgs[*messages.GetState](out)
		require.Len(t, gs, 1)
		seen[gs[0].To] = true
	}
	assert.Equal(t, map[int]bool{0: true}, seen, "the catch-up source among equal commit numbers is the lowest index, every run")
}
