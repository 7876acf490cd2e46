package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// A backup's PrepareOK comes in the output that asks for its entries to be
// stored, so a caller with a disk sends it only once they are durable.
func TestOutput_PrepareOKComesWithTheEntriesToStore(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("1"))))
	var prepare *messages.Prepare
	for _, p := range nw.inflight {
		if m, ok := p.msg.(*messages.Prepare); ok && p.to == 1 {
			prepare = m
		}
	}
	require.NotNil(t, prepare)
	nw.dropAll()
	out := nw.replicas[1].Step(prepare)
	require.NotEmpty(t, uMsgs[*messages.PrepareOK](out))
	require.Equal(t, prepare.Entries[0].OpNumber, out.LogFrom)
	require.Equal(t, prepare.Entries, out.Entries)
}

// A step that only commits asks for no write: the reply leaves without
// waiting for a sync of the commit number, which no message promises.
func TestOutput_CommitAloneAsksForNoWrite(t *testing.T) {
	nw := newNetwork(t, 3)
	nw.register(0, 1)
	nw.step(0, request(1, 2, kv.PutOp("a", []byte("1"))))
	op := nw.replicas[0].OpNumber()
	nw.dropAll()
	out := nw.replicas[0].Step(&messages.PrepareOK{ClusterId: testCluster, View: 0, OpNumber: op, Replica: 1})
	require.Len(t, out.Replies, 1, "committed and answered")
	require.Nil(t, out.HardState)
	require.Zero(t, out.LogFrom)
}

// A view-change vote comes in the output that asks for the new view to be
// stored.
func TestOutput_ViewChangeVoteComesWithTheViewToStore(t *testing.T) {
	nw := newNetwork(t, 3)
	r := nw.replicas[1]
	r.startViewChange(1)
	out := r.takeOutput()
	require.NotEmpty(t, uMsgs[*messages.StartViewChange](out))
	require.NotNil(t, out.HardState)
	require.Equal(t, uint64(1), out.HardState.View)
	require.Equal(t, uint64(0), out.HardState.LastNormalView)
}

// When a checkpoint lets the replica trim its log, the output says through
// which op the store may discard entries, never past a saved checkpoint
// (the test disk checks that on every output), and only once.
func TestOutput_TrimmingTheLogAsksTheStoreToCompact(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.CheckpointInterval, c.TrailingOps = 4, 1 })
	nw.register(0, 1)
	nw.holdCheckpoints = true
	nw.writeOps(6)
	require.NotEmpty(t, nw.jobs)
	j := nw.jobs[0]
	nw.jobs = nw.jobs[1:]
	res := j.job.Run()
	nw.disks[j.replica].saveCheckpoint(res)
	out := j.r.CheckpointDone(res)
	require.Equal(t, j.r.LogBase(), out.Compact)
	require.Equal(t, res.OpNumber-1, out.Compact, "the trailing op stays")
	nw.take(j.replica, out)
	require.Zero(t, j.r.Tick().Compact, "reported once")
}
