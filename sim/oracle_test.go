package sim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// Each oracle check fails on the event it names and stays quiet on the
// honest run next to it.

// oracleCluster is a scripted group of three that has committed a write.
func oracleCluster(t *testing.T) *Cluster {
	t.Helper()
	c := scripted(t, 3)
	out := c.do(t, 0, Input{Kind: OpPut, Key: "k0", Value: "v"}, messages.ReadMode_READ_MODE_LOG)
	require.False(t, out.Unknown)
	c.run(t, 50)
	require.NoError(t, c.violation)
	return c
}

func TestOracle_CommittedOpHeldByFewerThanAQuorumFails(t *testing.T) {
	c := oracleCluster(t)
	c.oracle.checkDurable()
	require.NoError(t, c.violation, "every replica holds what was committed")

	// Op 3 committed (say, by a primary that counted a stale ack) but held
	// by no replica.
	c.committed[3] = &messages.Entry{OpNumber: 3, ClientId: 77, RequestNumber: 9}
	c.oracle.maxCommitted = 3
	c.oracle.checkDurable()
	require.Error(t, c.violation)
	assert.Contains(t, c.violation.Error(), "committed op 3")
}

func TestOracle_DownReplicasCountAsHolders(t *testing.T) {
	c := oracleCluster(t)
	c.committed[3] = &messages.Entry{OpNumber: 3, ClientId: 77, RequestNumber: 9}
	c.oracle.maxCommitted = 3
	c.Crash(1)
	c.Crash(2) // two down of three: beyond f, nothing is promised
	c.oracle.checkDurable()
	assert.NoError(t, c.violation)
}

func TestOracle_UntrueAckFails(t *testing.T) {
	c := oracleCluster(t)
	b := c.replicas[1]
	c.process(1, vsr.Output{Messages: []vsr.Envelope{{To: 0, Msg: &messages.PrepareOK{
		ClusterId: clusterID, View: b.View(), OpNumber: b.OpNumber(), Replica: 1}}}})
	require.NoError(t, c.violation, "an ack of what the backup holds")
	c.process(1, vsr.Output{Messages: []vsr.Envelope{{To: 0, Msg: &messages.PrepareOK{
		ClusterId: clusterID, View: b.View(), OpNumber: b.OpNumber() + 1, Replica: 1}}}})
	require.Error(t, c.violation)
	assert.Contains(t, c.violation.Error(), "an ack must be true")
}

func TestOracle_RecoveringReplicaTakingPartFails(t *testing.T) {
	c := oracleCluster(t)
	c.Crash(2)
	require.NoError(t, c.Restart(2))
	require.Equal(t, vsr.StatusRecovering, c.replicas[2].Status())
	c.process(2, vsr.Output{Messages: []vsr.Envelope{{To: 0, Msg: &messages.Recovery{ClusterId: clusterID, Replica: 2}}}})
	require.NoError(t, c.violation, "asking to recover is its part")
	c.process(2, vsr.Output{Messages: []vsr.Envelope{{To: 0, Msg: &messages.StartViewChange{
		ClusterId: clusterID, View: 1, Replica: 2}}}})
	require.Error(t, c.violation)
	assert.Contains(t, c.violation.Error(), "takes no part")
}

func TestOracle_AnswerFromASupersededViewFails(t *testing.T) {
	c := oracleCluster(t)
	c.oracle.started = append(c.oracle.started, viewStart{view: 1, tick: 100}, viewStart{view: 4, tick: 200})
	c.oracle.checkReply(0, 0, 99) // replicas act before clients in a tick: t=100 would be after
	c.oracle.checkReply(0, 1, 150)
	c.oracle.checkReply(0, 2, 199)
	c.oracle.checkReply(0, 4, 500)
	require.NoError(t, c.violation, "no later view had started when these were invoked")
	c.oracle.checkReply(0, 1, 200)
	require.Error(t, c.violation)
	assert.Contains(t, c.violation.Error(), "view 4 started at t=200")
}

func TestReplay_ArchiveKeepsTheFirstAndLatestOfEachOfTheLastViews(t *testing.T) {
	a := newReplayArchive(3)
	for v := uint64(0); v < replayKeys+3; v++ {
		for op := uint64(1); op <= replayPerKey+5; op++ {
			a.keep(packet{from: 1, to: 0, msg: &messages.PrepareOK{View: v, OpNumber: op}})
		}
	}
	a.keep(packet{from: clientBase, to: 0, msg: &messages.Request{}})
	require.Len(t, a.byReplica[0], 1, "one kind, and no client message")
	keys := a.byReplica[0][0].keys
	require.Len(t, keys, replayKeys, "the last few views only")
	assert.Equal(t, uint64(3), keys[0].view)
	got := keys[len(keys)-1].packets
	require.Len(t, got, replayPerKey)
	assert.Equal(t, uint64(1), got[0].msg.(*messages.PrepareOK).OpNumber, "the first of a view")
	assert.Equal(t, uint64(replayPerKey+5), got[replayPerKey-1].msg.(*messages.PrepareOK).OpNumber, "and the latest")
	assert.Len(t, a.stale(0, a.byReplica[0][0], replayKeys+2), (replayKeys-1)*replayPerKey, "all but the receiver's view")
}

func TestReplay_RecoveryAnswersAreStaleByNonce(t *testing.T) {
	a := newReplayArchive(3)
	a.keep(packet{from: 0, to: 1, msg: &messages.Recovery{Nonce: 5}})
	a.keep(packet{from: 1, to: 0, msg: &messages.RecoveryResponse{View: 2, Nonce: 5}})
	a.keep(packet{from: 1, to: 0, msg: &messages.RecoveryResponse{View: 2, Nonce: 9}})
	stale := a.stale(0, a.byReplica[0][0], 2)
	require.Len(t, stale, 1, "same view, but another recovery's nonce")
	assert.Equal(t, uint64(9), stale[0].msg.(*messages.RecoveryResponse).Nonce)
}

func TestReplay_NothingOfTheReceiversOwnViewIsReplayed(t *testing.T) {
	c := scripted(t, 3)
	c.archive.keep(packet{from: 1, to: 0, msg: &messages.PrepareOK{View: 0, OpNumber: 0}})
	inj := newInjector(c)
	for k := 0; k < 50; k++ {
		inj.replay()
	}
	assert.Zero(t, c.stats.Faults["replay"], "replica 0 is in view 0: nothing of another view to replay")
	c.archive.keep(packet{from: 1, to: 0, msg: &messages.PrepareOK{View: 3, OpNumber: 0}})
	for k := 0; k < 50; k++ {
		inj.replay()
	}
	assert.Positive(t, c.stats.Faults["replay"])
}

func TestOracle_FirstCommitWithoutAcksOfThePrimarysViewFails(t *testing.T) {
	c := oracleCluster(t)
	p := c.Primary()
	require.GreaterOrEqual(t, p, 0)
	e := &messages.Entry{OpNumber: c.replicas[p].OpNumber() + 1}
	w := c.oracle.witness(p)
	backup := (p + 1) % c.n
	w.acked[backup] = e.OpNumber
	c.oracle.checkFirstCommit(p, e)
	require.NoError(t, c.violation, "one backup of view %d holds it: f = 1", w.view)
	w.acked[backup] = e.OpNumber - 1
	c.oracle.checkFirstCommit(p, e)
	require.Error(t, c.violation)
	assert.Contains(t, c.violation.Error(), "fewer than f = 1")
}

func TestOracle_AcksOfAnotherViewOrSenderAreNotWitnessed(t *testing.T) {
	c := oracleCluster(t)
	p := c.Primary()
	b := (p + 1) % c.n
	v := c.replicas[p].View()
	c.oracle.delivered(p, node(b), &messages.PrepareOK{View: v + 3, OpNumber: 9, Replica: uint32(b)})
	c.oracle.delivered(p, node((b+1)%c.n), &messages.PrepareOK{View: v, OpNumber: 9, Replica: uint32(b)})
	c.oracle.delivered(p, node(b), &messages.ConfirmViewOK{View: v + 3, Round: 9, Replica: uint32(b)})
	w := c.oracle.witness(p)
	assert.Less(t, w.acked[b], uint64(9), "another view's ack, or one sent by someone else in b's name")
	assert.Zero(t, w.answered[b])
	c.oracle.delivered(p, node(b), &messages.PrepareOK{View: v, OpNumber: 9, Replica: uint32(b)})
	assert.Equal(t, uint64(9), w.acked[b])
}

func TestOracle_ReadAnsweredWithoutARoundSinceItsInvocationFails(t *testing.T) {
	c := oracleCluster(t)
	p := c.Primary()
	w := c.oracle.witness(p)
	w.rounds = []sentRound{{round: 1, tick: 10}, {round: 2, tick: 20}}
	w.answered[(p+1)%c.n] = 2
	c.oracle.checkReadQuorum(p, 0, 15)
	require.NoError(t, c.violation, "round 2 went out after the read and a backup answered it")
	w.answered[(p+1)%c.n] = 1
	c.oracle.checkReadQuorum(p, 0, 15)
	require.Error(t, c.violation, "only round 1, sent before the read, was answered")
}

func TestOracle_RecoveryIntoAStateOlderThanItsStartFails(t *testing.T) {
	c := oracleCluster(t)
	r := c.replicas[1]
	c.oracle.recoveries[1] = recoveryStart{nonce: 7, view: r.View(), committed: r.OpNumber()}
	c.oracle.checkRecovered(1)
	require.NoError(t, c.violation)
	c.oracle.recoveries[1] = recoveryStart{nonce: 7, view: r.View() + 1, committed: r.OpNumber()}
	c.oracle.checkRecovered(1)
	require.Error(t, c.violation)
	assert.Contains(t, c.violation.Error(), "older than the group when its recovery began")
}
