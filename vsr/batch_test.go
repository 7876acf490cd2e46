package vsr

// StepBatch: messages that arrived together are handled in order, as Step
// handles them, and leave as few messages as that allows: a primary's
// Prepares carry the whole batch of requests, and a backup acknowledges a
// batch of Prepares once.

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// uStepBatch steps ms as one batch and checks the invariants.
func uStepBatch(t *testing.T, r *Replica, ms ...proto.Message) Output {
	t.Helper()
	out := r.StepBatch(ms)
	require.NoError(t, r.CheckInvariants())
	return out
}

func TestBatch_PrimarySendsABatchOfRequestsInOnePreparePerBackup(t *testing.T) {
	p, _ := uReplica(t, 3, 0)
	var batch []proto.Message
	for c := uint64(1); c <= 10; c++ {
		batch = append(batch, uPut(c, uRegistered+1, []byte("v")))
	}
	out := uStepBatch(t, p, batch...)

	prepares := uMsgs[*messages.Prepare](out)
	require.Len(t, prepares, 2, "one Prepare per backup")
	assert.ElementsMatch(t, []int{1, 2}, uTargets(prepares))
	for _, pr := range prepares {
		require.Len(t, pr.Msg.Entries, 10)
		assert.Equal(t, uint64(1), pr.Msg.Entries[0].OpNumber)
		assert.Equal(t, uint64(10), pr.Msg.Entries[9].OpNumber)
	}
	assert.Equal(t, uint64(10), p.OpNumber())
}

func TestBatch_PrimarySplitsABatchLargerThanMaxBatch(t *testing.T) {
	p, _ := uReplica(t, 3, 0, func(c *Config) { c.MaxBatch = 4 })
	var batch []proto.Message
	for c := uint64(1); c <= 10; c++ {
		batch = append(batch, uPut(c, uRegistered+1, []byte("v")))
	}
	out := uStepBatch(t, p, batch...)

	var sizes []int
	for _, pr := range uMsgs[*messages.Prepare](out) {
		if pr.To == 1 {
			sizes = append(sizes, len(pr.Msg.Entries))
		}
	}
	assert.Equal(t, []int{4, 4, 2}, sizes)
}

func TestBatch_BackupAcknowledgesABatchOfPreparesOnceForTheLast(t *testing.T) {
	b, _ := uReplica(t, 3, 1)
	out := uStepBatch(t, b,
		uPrepare(0, 0, 0, uEntry(1, 0), uEntry(2, 0)),
		uPrepare(0, 0, 0, uEntry(3, 0)),
		uCommit(0, 1, 0),
		uPrepare(0, 0, 1, uEntry(4, 0), uEntry(5, 0)))

	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, 0, oks[0].To)
	assert.Equal(t, uint64(5), oks[0].Msg.OpNumber)
	assert.Equal(t, uint64(5), b.OpNumber())
	assert.Equal(t, uint64(1), b.CommitNumber())
}

// A PrepareOK made due by a Prepare of view 0 is not sent to view 0's
// primary if a later message of the same batch moves the backup to view 1:
// the one acknowledgement that leaves is for the new view, to its primary.
func TestBatch_OnePrepareOKForTheViewTheBatchEndsIn(t *testing.T) {
	b, _ := uReplica(t, 3, 2)
	log := uLog(1, 2, 0)
	out := uStepBatch(t, b,
		uPrepare(0, 0, 0, log[0]),
		uStartView(1, 1, 0, log))

	oks := uMsgs[*messages.PrepareOK](out)
	require.Len(t, oks, 1)
	assert.Equal(t, 1, oks[0].To)
	assert.Equal(t, uint64(1), oks[0].Msg.View)
	assert.Equal(t, uint64(2), oks[0].Msg.OpNumber)
	assert.Equal(t, StatusNormal, b.Status())
}

// Batching changes what leaves, not what the replica holds: stepping a
// history one message at a time and in batches ends in the same log and
// commit number, and the primary commits the same ops.
func TestBatch_SameStateAsSteppingOneAtATime(t *testing.T) {
	history := func() []proto.Message {
		var ms []proto.Message
		for c := uint64(1); c <= 12; c++ {
			ms = append(ms, uPut(c, uRegistered+1, []byte{byte(c)}))
			if c%3 == 0 {
				ms = append(ms, uPrepareOK(0, c-1, 1))
			}
		}
		return ms
	}
	one, _ := uReplica(t, 3, 0)
	var oneCommitted int
	for _, m := range history() {
		oneCommitted += len(uStep(t, one, m).Committed)
	}
	batched, _ := uReplica(t, 3, 0)
	ms := history()
	var batchedCommitted int
	for len(ms) > 0 {
		k := min(5, len(ms))
		batchedCommitted += len(uStepBatch(t, batched, ms[:k]...).Committed)
		ms = ms[k:]
	}
	assert.Equal(t, one.OpNumber(), batched.OpNumber())
	assert.Equal(t, one.CommitNumber(), batched.CommitNumber())
	assert.Equal(t, oneCommitted, batchedCommitted)
	assert.Equal(t, uint64(11), batched.CommitNumber())
}
