package vsr

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// A backup restarted from an intact disk is normal again in its view at
// once, with every committed op executed, and needs no recovery round.
func TestRestart_IntactBackupRejoinsItsViewWithoutRecovery(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.writeOps(6)
	before := nw.replicas[1].CommitNumber()
	nw.restartFromDisk(1, false)
	r := nw.replicas[1]
	require.Equal(t, StatusNormal, r.Status())
	require.Equal(t, uint64(0), r.View())
	require.Greater(t, r.CommitNumber(), uint64(0), "re-executed its committed ops from its own log")
	require.Equal(t, before, r.OpNumber(), "its log is whole")
	nw.run(DefaultHeartbeatTicks)
	require.Equal(t, before, r.CommitNumber(), "a heartbeat tells it the rest: its log holds the ops")
	require.Equal(t, nw.value(0, "k3"), nw.value(1, "k3"))
	nw.writeOps(10)
	nw.requireConverged()
}

// The whole group restarted from disk keeps every op any client was told
// was committed, and serves again; the old primary resumes as primary.
func TestRestart_WholeGroupFromDiskKeepsEveryCommittedOp(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			nw := newNetwork(t, n)
			nw.register(0, 1)
			nw.writeOps(9)
			want := nw.value(0, "k7")
			for i := range nw.replicas {
				nw.restartFromDisk(i, false)
			}
			// The commit number is not synced on its own (sameVote): the
			// primary commits again what its log and the backups' hold.
			nw.run(2 * DefaultHeartbeatTicks)
			for i := range nw.replicas {
				require.Equal(t, want, nw.value(i, "k7"), "replica %d lost a committed write", i)
			}
			require.Equal(t, 0, nw.primary())
			nw.writeOps(14)
			nw.requireConverged()
		})
	}
}

// A replica that voted for a view and restarted comes back in that view, in
// view-change status: its vote, made durable before it was sent, stands.
func TestRestart_ViewChangeVoteSurvivesTheRestart(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.writeOps(3)
	nw.isolate(0)
	nw.do(1, func(r *Replica) { r.startViewChange(1) })
	nw.dropAll()
	nw.restartFromDisk(1, false)
	r := nw.replicas[1]
	require.Equal(t, StatusViewChange, r.Status())
	require.Equal(t, uint64(1), r.View(), "the vote for view 1 was durable")
	require.Equal(t, uint64(0), r.LastNormalView())
	nw.run(3 * DefaultViewChangeTicks)
	require.Equal(t, 1, nw.primary(), "the view change it voted for completes")
	nw.heal()
	nw.writeOps(6)
	nw.requireConverged()
}

// A replica whose disk reported damage keeps only its committed prefix,
// records that it is recovering before anything else, answers nothing,
// and recovers the rest from its peers.
func TestRestart_DamagedDiskRecoversFromPeersKeepingItsCommittedPrefix(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.writeOps(5)
	// An op prepared at replica 1 but not committed there yet.
	nw.step(0, request(1, nw.nextRequest(1), kv.PutOp("late", []byte("x"))))
	nw.deliverIf(func(p packet) bool { return p.to == 1 })
	committed := nw.replicas[1].CommitNumber()
	require.Greater(t, nw.replicas[1].OpNumber(), committed)

	store := kv.NewStore()
	ds := nw.disks[1].state()
	ds.Damaged = true
	r, out, err := Restart(nw.config(3, 1, store, false), ds)
	require.NoError(t, err)
	require.Equal(t, StatusRecovering, r.Status())
	require.NotNil(t, out.HardState)
	require.True(t, out.HardState.Recovering, "recovering is made durable first")
	require.Equal(t, committed+1, out.LogFrom, "the suffix it cannot vouch for is cut")
	require.Empty(t, out.Entries)
	require.Empty(t, out.Messages)
	require.Equal(t, committed, r.CommitNumber(), "the committed prefix is kept")
	nw.replicas[1], nw.stores[1] = r, store
	nw.take(1, out)

	// A crash before recovery ends: the disk now says recovering, so the
	// replica recovers again even though nothing is damaged this time.
	nw.restartFromDisk(1, false)
	require.Equal(t, StatusRecovering, nw.replicas[1].Status())

	nw.run(2 * DefaultHeartbeatTicks)
	require.Equal(t, StatusNormal, nw.replicas[1].Status())
	require.False(t, nw.disks[1].hs.Recovering, "the end of recovery is durable too")
	nw.writeOps(10)
	nw.requireConverged()
}

// A replica restarted from its disk after a checkpoint restores the
// checkpoint and replays only the log after it.
func TestRestart_FromACheckpointAndTheLogAfterIt(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.CheckpointInterval, c.TrailingOps = 4, 1 })
	nw.register(0, 1)
	nw.writeOps(11)
	d := nw.disks[2]
	require.NotNil(t, d.checkpoint, "a checkpoint was saved")
	nw.restartFromDisk(2, false)
	r := nw.replicas[2]
	require.Equal(t, d.cpOp, r.CheckpointOpNumber())
	require.Equal(t, StatusNormal, r.Status())
	nw.writeOps(15)
	nw.requireConverged()
}

// A durable state that cannot be a replica's is refused with an error, not
// a panic.
func TestRestart_RefusesAnInconsistentDurableState(t *testing.T) {
	cfg := Config{ClusterID: testCluster, ReplicaCount: 3, ReplicaIndex: 1, StateMachine: kv.NewStore()}
	entry := &messages.Entry{OpNumber: 2, ClientId: 1, RequestNumber: 1}
	_, _, err := Restart(cfg, DurableState{Entries: []*messages.Entry{entry}})
	require.ErrorIs(t, err, ErrDurableState, "a log that starts at op 2 without a checkpoint")

	cfg.StateMachine = kv.NewStore()
	_, _, err = Restart(cfg, DurableState{Checkpoint: []byte{0xff, 0xff}})
	require.ErrorIs(t, err, ErrDurableState, "a checkpoint that does not decode")

	cfg.StateMachine = kv.NewStore()
	cp, err := proto.Marshal(&messages.Checkpoint{OpNumber: 4, State: []byte("not a kv snapshot")})
	require.NoError(t, err)
	_, _, err = Restart(cfg, DurableState{Checkpoint: cp})
	require.ErrorIs(t, err, ErrDurableState, "a state the state machine refuses")
}

// A commit number past the log on disk means the disk lost entries: the
// replica does not trust it.
func TestRestart_CommitNumberPastTheLogIsNotTrusted(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.writeOps(4)
	ds := nw.disks[1].state()
	ds.Entries = ds.Entries[:2]
	r, _, err := Restart(nw.config(3, 1, kv.NewStore(), false), ds)
	require.NoError(t, err)
	require.Equal(t, StatusRecovering, r.Status())
}

// A primary restarted from its disk in the same view does not count a
// confirmation of a read round its earlier incarnation sent: that backup
// confirmed the view before the new read arrived, not after. (Rounds are
// not durable; before the fix both incarnations numbered rounds from 1.)
func TestRestart_PrimaryIgnoresConfirmationsOfItsEarlierIncarnationsRounds(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1, 2)
	nw.put(0, 1, 2, "a", "1")
	nw.step(0, readRequest(2, 2, "a", messages.ReadMode_READ_MODE_LINEARIZABLE))
	var old *messages.ConfirmView
	for _, p := range nw.inflight {
		if m, ok := p.msg.(*messages.ConfirmView); ok {
			old = m
		}
	}
	require.NotNil(t, old)
	nw.dropAll()
	nw.restartFromDisk(0, false)
	require.True(t, nw.replicas[0].IsPrimary())
	nw.run(DefaultHeartbeatTicks) // it commits its log again, so only the round holds the read
	require.Equal(t, nw.replicas[0].OpNumber(), nw.replicas[0].CommitNumber())

	nw.step(0, readRequest(2, 3, "a", messages.ReadMode_READ_MODE_LINEARIZABLE))
	nw.dropAll()
	nw.step(0, &messages.ConfirmViewOK{ClusterId: testCluster, View: 0, Round: old.Round, Replica: 1})
	require.Nil(t, nw.replyFor(2, 3), "served on a confirmation older than the read")
	nw.run(2 * DefaultHeartbeatTicks)
	require.NotNil(t, nw.replyFor(2, 3), "served once a round of its own is confirmed")
}

// A group of one whose disk is damaged has no peer to recover from: Restart
// says so instead of returning a replica that would wait for ever.
func TestRestart_DamagedSingleReplicaIsAnErrorNotAHang(t *testing.T) {
	cfg := Config{ClusterID: testCluster, ReplicaCount: 1, ReplicaIndex: 0, StateMachine: kv.NewStore()}
	_, _, err := Restart(cfg, DurableState{HardState: HardState{View: 0, CommitNumber: 0}, Damaged: true})
	require.ErrorIs(t, err, ErrCannotRecover)
}
