package vsr

// The bounded pipeline: a primary holds at most PipelineMax uncommitted ops
// (and half of MaxMessageBytes of them), a backup takes no Prepare that would
// exceed that, and no request may be larger than a quarter of the message
// bound. Together they bound what a view change carries.

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

func uPut(client, number uint64, value []byte) *messages.Request {
	return uReq(client, number, kv.PutOp(fmt.Sprintf("k%d", client), value))
}

func TestPipeline_PrimaryAnswersBusyPastPipelineMaxAndAppendsNothing(t *testing.T) {
	p, sm := uReplica(t, 3, 0, func(c *Config) { c.PipelineMax = 3 })
	for c := uint64(1); c <= 3; c++ {
		out := uStep(t, p, uPut(c, uRegistered+1, []byte("v")))
		require.Empty(t, out.Replies, "op %d fits", c)
	}
	require.Equal(t, uint64(3), p.OpNumber())

	out := uStep(t, p, uPut(4, uRegistered+1, []byte("v")))
	require.Len(t, out.Replies, 1)
	rep := out.Replies[0].Reply
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_BUSY, rep.Error)
	assert.Equal(t, uint64(4), rep.ClientId)
	assert.Equal(t, uint64(uRegistered+1), rep.RequestNumber)
	assert.Equal(t, uint64(3), p.OpNumber(), "nothing appended")
	assert.Empty(t, uMsgs[*messages.Prepare](out), "nothing prepared")
	assert.Zero(t, sm.applies)

	// Once the pipeline drains, the client's retry is taken.
	uStep(t, p, uPrepareOK(0, 3, 1))
	require.Equal(t, uint64(3), p.CommitNumber())
	out = uStep(t, p, uPut(4, uRegistered+1, []byte("v")))
	assert.Empty(t, out.Replies)
	assert.Equal(t, uint64(4), p.OpNumber())
	assert.Len(t, uMsgs[*messages.Prepare](out), 2)
}

func TestPipeline_PrimaryAnswersBusyPastHalfOfMaxMessageBytesOfUncommittedEntries(t *testing.T) {
	p, _ := uReplica(t, 3, 0, func(c *Config) { c.MaxMessageBytes = MinMaxMessageBytes })
	value := bytes.Repeat([]byte("x"), 400) // an entry of ~450 bytes: two fit in 1024
	for c := uint64(1); c <= 2; c++ {
		require.Empty(t, uStep(t, p, uPut(c, uRegistered+1, value)).Replies)
	}
	out := uStep(t, p, uPut(3, uRegistered+1, value))
	require.Len(t, out.Replies, 1)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_BUSY, out.Replies[0].Reply.Error)
	assert.Equal(t, uint64(2), p.OpNumber())
	assert.LessOrEqual(t, p.uncommittedBytes, MinMaxMessageBytes/2)

	out = uStep(t, p, uPut(3, uRegistered+1, []byte("small")))
	assert.Empty(t, out.Replies, "a small entry still fits")
	assert.Equal(t, uint64(3), p.OpNumber())
}

func TestPipeline_RequestLargerThanAQuarterOfMaxMessageBytesIsTooLarge(t *testing.T) {
	huge := uPut(1, uRegistered+1, bytes.Repeat([]byte("x"), MinMaxMessageBytes/4))
	for _, i := range []int{0, 1} { // primary and backup alike
		r, sm := uReplica(t, 3, i, func(c *Config) { c.MaxMessageBytes = MinMaxMessageBytes })
		out := uStep(t, r, huge)
		require.Len(t, out.Replies, 1, "replica %d", i)
		assert.Equal(t, messages.ReplyError_REPLY_ERROR_TOO_LARGE, out.Replies[0].Reply.Error)
		assert.Empty(t, out.Messages, "replica %d: neither appended nor forwarded", i)
		assert.Equal(t, uint64(0), r.OpNumber())
		assert.Zero(t, sm.applies)
	}
}

func TestPipeline_PrepareWithMoreUncommittedOpsThanPipelineMaxIsDropped(t *testing.T) {
	pipeline2 := func(c *Config) { c.PipelineMax = 2 }
	r, _ := uReplica(t, 3, 1, pipeline2)
	out := uStep(t, r, uPrepare(0, 0, 0, uLog(1, 3, 0)...))
	assert.Empty(t, out.Messages, "no PrepareOK")
	assert.Equal(t, uint64(0), r.OpNumber())
	assert.Equal(t, uint64(1), r.Drops()[DropMalformed])

	// The same ops with op 1 committed: two past the commit number fit.
	out = uStep(t, r, uPrepare(0, 0, 1, uLog(1, 3, 0)...))
	assert.Equal(t, uint64(3), r.OpNumber())
	assert.Equal(t, uint64(1), r.CommitNumber())
	assert.Len(t, uMsgs[*messages.PrepareOK](out), 1)

	// Past the backup's own commit number counts too: ops 4..6 are three past
	// op 3 if op 3 is not known committed.
	out = uStep(t, r, uPrepare(0, 0, 1, uLog(4, 6, 0)...))
	assert.Equal(t, uint64(3), r.OpNumber())
	assert.Equal(t, uint64(2), r.Drops()[DropMalformed])
	assert.Empty(t, out.Messages)
}

// The bound holds across a view change: a new primary that inherits a full
// pipeline refuses new requests until it commits some.
func TestPipeline_NewPrimaryWithAFullInheritedPipelineIsBusy(t *testing.T) {
	r, _ := uReplica(t, 3, 1, func(c *Config) { c.PipelineMax = 2 })
	log := uLog(1, 2, 0)
	uStep(t, r, uDVC(1, 2, 0, 0, log))
	uStep(t, r, uDVC(1, 0, 0, 0, log))
	require.True(t, r.IsPrimary())
	out := uStep(t, r, uPut(7, uRegistered+1, []byte("v")))
	require.Len(t, out.Replies, 1)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_BUSY, out.Replies[0].Reply.Error)
	assert.Equal(t, uint64(2), r.OpNumber())
}
