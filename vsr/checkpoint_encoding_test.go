package vsr

import (
	"bytes"
	"crypto/sha256"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// A checkpoint is served as its head (op number, client table, the state
// field's tag and length) followed by the state machine's own bytes, never
// copied into one buffer. Whatever the chunk size, the chunks put together
// are one valid messages.Checkpoint whose SHA-256 is the digest, including
// chunks that end inside the head, exactly at its end, or span both.
func TestCheckpointEncoding_ChunksOfHeadAndStateMakeOneCheckpoint(t *testing.T) {
	state := bytes.Repeat([]byte("state-bytes-"), 500)
	rows := []*messages.ClientSession{{ClientId: 7, RequestNumber: 3, Result: []byte("r"), LastOp: 40}}
	job := &CheckpointJob{OpNumber: 42, clientTable: rows, encodeState: func() ([]byte, error) { return state, nil }}
	res := job.Run()
	require.NoError(t, res.Err)
	sum := sha256.Sum256(res.Encoded())
	require.Equal(t, sum[:], res.Digest)
	cp := &checkpoint{opNumber: 42, head: res.head, state: res.state, digest: res.Digest}
	require.Equal(t, len(res.Encoded()), cp.size())

	for _, size := range []int{1, 7, len(cp.head), len(cp.head) + 1, 1000, cp.size()} {
		var got []byte
		for lo := 0; lo < cp.size(); lo += size {
			got = append(got, cp.slice(lo, min(lo+size, cp.size()))...)
		}
		require.Equal(t, res.Encoded(), got, "chunks of %d bytes", size)
		var decoded messages.Checkpoint
		require.NoError(t, proto.Unmarshal(got, &decoded))
		assert.Equal(t, uint64(42), decoded.OpNumber)
		assert.Equal(t, state, decoded.State)
		require.Len(t, decoded.ClientTable, 1)
		assert.Equal(t, uint64(40), decoded.ClientTable[0].LastOp)
	}
}

// A chunk that claims more chunks than its checkpoint has bytes, or carries
// no data for a checkpoint that has some, is forged or corrupt: it is
// dropped, and the transfer neither starts over with it nor moves on.
func TestCheckpointTransfer_ChunkCountBeyondTheSizeIsDropped(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	r.startFetch(0)
	data := []byte("x")
	forged := func(m *messages.CheckpointChunk) *messages.CheckpointChunk {
		m.ClusterId, m.Replica, m.OpNumber, m.Digest = r.cfg.ClusterID, 0, 100, make([]byte, sha256.Size)
		m.Crc32C = crc32.Checksum(m.Data, castagnoli)
		return m
	}
	for _, m := range []*messages.CheckpointChunk{
		forged(&messages.CheckpointChunk{Size: 1, Chunks: 1 << 31, Data: data}),
		forged(&messages.CheckpointChunk{Size: 10, Chunks: 2, Data: nil}),
	} {
		before := r.Drops()[DropMalformed]
		uStep(t, r, m)
		assert.Equal(t, before+1, r.Drops()[DropMalformed])
		assert.Zero(t, r.fetch.opNumber, "no assembly started from a forged chunk")
		assert.Empty(t, r.fetch.buf)
	}
}
