package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// Scenario tests of liveness under gray failures (liveness.go). Each runs
// twice: with the old behaviour, re-introduced as a Bug, it reproduces the
// failure a review found; with the fix, the healthy quorum keeps serving.

// leader is the replica that is normal and primary in the highest view, or -1.
func leader(nw *network) int {
	best := -1
	for i, r := range nw.replicas {
		if r.IsPrimary() && (best < 0 || r.View() > nw.replicas[best].View()) {
			best = i
		}
	}
	return best
}

func withBug(nw *network, b Bug) {
	for _, r := range nw.replicas {
		r.bugs = b
	}
}

// Item 1: a read waits for a ConfirmView round whose answers were lost, while
// a write arrives every tick. The old primary put off its heartbeat on every
// Prepare and never asked again; now an unanswered round is replaced on the
// next heartbeat.
func TestScenario_ReadIsServedUnderAContinuousStreamOfWrites(t *testing.T) {
	for _, bug := range []Bug{0, BugReadStarvation} {
		nw := newNetwork(t, 3)
		withBug(nw, bug)
		nw.register(0, 1, 2)
		lost := 0
		nw.filter = func(p *packet) bool {
			if m, ok := p.msg.(*messages.ConfirmViewOK); ok && m.Round&(1<<32-1) == 1 {
				lost++
				return false // the first round's answers are lost
			}
			return true
		}
		nw.step(0, readRequest(2, 2, "a", messages.ReadMode_READ_MODE_LINEARIZABLE))
		for k := uint64(0); k < 100; k++ {
			nw.step(0, request(1, 2+k, kv.PutOp("a", []byte("x"))))
			nw.run(1)
		}
		require.Equal(t, 2, lost)
		served := nw.replyFor(2, 2) != nil
		require.Equal(t, bug == 0, served, "bug %v: read served after 100 ticks of writes: %v", bug, served)
	}
}

// Item 2: the primary hears no peer (every link into it is cut) while its
// heartbeats still reach the backups. The old primary kept its view for
// ever; now it abdicates and the backups form the next view.
func TestScenario_DeafPrimaryIsReplaced(t *testing.T) {
	for _, bug := range []Bug{0, BugNoCheckQuorum} {
		nw := newNetwork(t, 3)
		withBug(nw, bug)
		nw.register(0, 1)
		nw.cut[1][0], nw.cut[2][0] = true, true
		nw.run(10 * DefaultInactivityTicks)
		p := leader(nw)
		if bug != 0 {
			require.Equal(t, uint64(0), nw.replicas[1].View(), "without CheckQuorum the backups never leave view 0")
			continue
		}
		require.NotEqual(t, 0, p, "a backup leads the next view")
		require.Greater(t, nw.replicas[p].View(), uint64(0))
		nw.put(p, 1, 2, "a", "1")
		require.NotNil(t, nw.replyFor(1, 2), "the new primary serves")
	}
}

// Item 3: a backup that hears no one (every link into it is cut) times out
// again and again. It used to depose the healthy primary each time; now its
// probes find no one who has lost the primary, and view 0 stands.
func TestScenario_DeafBackupDoesNotDeposeAHealthyPrimary(t *testing.T) {
	for _, bug := range []Bug{0, BugNoPreVote} {
		nw := newNetwork(t, 3)
		withBug(nw, bug)
		nw.register(0, 1)
		nw.cut[0][2], nw.cut[1][2] = true, true
		nw.run(10 * DefaultInactivityTicks)
		if bug != 0 {
			require.Greater(t, nw.replicas[1].View(), uint64(0), "without PreVote replica 2 drags the group along")
			continue
		}
		require.True(t, nw.replicas[0].IsPrimary(), "replica 0 still leads")
		require.Equal(t, uint64(0), nw.replicas[0].View())
		require.Equal(t, uint64(0), nw.replicas[2].View(), "replica 2 probed and stayed")
	}
}

// Item 4: one StartViewChange with a view at the top of the admitted range,
// forged in the primary's name. It used to move the whole group there, after
// which the next view change needed a view past the range and never
// completed; now it is dropped as too far ahead, and a later failure of the
// primary is survived.
func TestScenario_ForgedViewNearTheBoundCannotWedgeTheGroup(t *testing.T) {
	for _, bug := range []Bug{0, BugNoViewWindow} {
		nw := newNetwork(t, 3)
		withBug(nw, bug)
		nw.register(0, 1)
		for _, i := range []int{1, 2} {
			nw.step(i, &messages.StartViewChange{ClusterId: testCluster, View: maxNumber, Replica: 0})
		}
		nw.run(4 * DefaultInactivityTicks)
		old := leader(nw)
		require.GreaterOrEqual(t, old, 0)
		nw.isolate(old) // the primary fails
		nw.run(20 * DefaultInactivityTicks)
		p := leader(nw)
		if bug != 0 {
			require.Equal(t, uint64(maxNumber), nw.replicas[(old+1)%3].View(), "the group was moved to the bound")
			require.True(t, p < 0 || p == old, "and no view past it can start")
			continue
		}
		require.Equal(t, uint64(2), nw.replicas[1].Drops()[DropFarAhead]+nw.replicas[2].Drops()[DropFarAhead])
		require.GreaterOrEqual(t, p, 0)
		require.NotEqual(t, old, p, "the survivors elected a new primary")
		nw.put(p, 1, 2, "a", "1")
		require.NotNil(t, nw.replyFor(1, 2))
	}
}
