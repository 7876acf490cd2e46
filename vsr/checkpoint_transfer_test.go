package vsr

// Catching up: a backup a little behind takes the ops from the log; one
// behind the trailing window fetches a checkpoint, in checksummed chunks,
// and installs it whole or not at all.

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// smallHistory is the smallest message bound, a checkpoint every 4 ops and 2
// ops kept below it: with writeBig's values a checkpoint takes several
// chunks.
func smallHistory(c *Config) {
	c.MaxMessageBytes, c.CheckpointInterval, c.TrailingOps = MinMaxMessageBytes, 4, 2
}

// bigValue is 300 bytes: a Prepare of MinMaxMessageBytes holds two such
// writes, and eight of them make a checkpoint of three chunks.
func bigValue(k int) []byte { return bytes.Repeat([]byte{byte('a' + k%26)}, 300) }

// writeBig has client 1 (registered) put bigValue to 8 keys in turn until
// the primary has committed op last, then lets a heartbeat tell the backups.
func (nw *network) writeBig(last uint64) {
	nw.t.Helper()
	for k := 0; nw.replicas[nw.primary()].CommitNumber() < last; k++ {
		require.Less(nw.t, k, 10000, "the group stopped committing")
		p := nw.primary()
		nw.put(p, 1, nw.nextRequest(1), fmt.Sprintf("key%d", k%8), string(bigValue(k)))
	}
	nw.run(DefaultHeartbeatTicks)
}

// laggingBackup is a group of 3 (smallHistory) in which replica 2 holds only
// op 1 (client 1's registration) while the others have committed up to op 13
// and hold a checkpoint at op 12, their logs trimmed to ops 11..13.
func laggingBackup(t *testing.T) *network {
	t.Helper()
	nw := newNetwork(t, 3, smallHistory)
	nw.register(0, 1)
	nw.isolate(2)
	nw.writeBig(13)
	for i := 0; i < 2; i++ {
		require.Equal(t, uint64(12), nw.replicas[i].CheckpointOpNumber())
		require.Equal(t, uint64(10), nw.replicas[i].LogBase())
	}
	require.Equal(t, uint64(1), nw.replicas[2].OpNumber())
	nw.heal()
	return nw
}

func chunkTo(p packet, to int) (*messages.CheckpointChunk, bool) {
	m, ok := p.msg.(*messages.CheckpointChunk)
	return m, ok && p.to == to
}

func TestCatchUp_BackupLaggingWithinTheTrailingWindowCatchesUpFromTheLog(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) {
		c.MaxMessageBytes, c.CheckpointInterval, c.TrailingOps = MinMaxMessageBytes, 8, 8
	})
	nw.register(0, 1)
	nw.writeBig(5)
	nw.isolate(2)
	nw.writeBig(13)
	require.Equal(t, uint64(8), nw.replicas[0].CheckpointOpNumber())
	require.Equal(t, uint64(0), nw.replicas[0].LogBase(), "op 6, which replica 2 lacks, is still in the log")
	nw.heal()
	sawCheckpoint, newStates := false, 0
	nw.watch = func(p packet) {
		sawCheckpoint = sawCheckpoint || isType(p, &messages.GetCheckpoint{}) || isType(p, &messages.CheckpointChunk{})
		if isType(p, &messages.NewState{}) && p.to == 2 {
			newStates++
		}
	}
	nw.run(3 * DefaultHeartbeatTicks)
	nw.requireConverged()
	assert.False(t, sawCheckpoint, "no checkpoint transfer")
	_, installed := nw.replicas[2].CheckpointStats()
	assert.Equal(t, uint64(0), installed)
	assert.GreaterOrEqual(t, newStates, 2, "eight large ops do not fit one NewState")
}

func TestCatchUp_BackupLaggingPastTheTrailingWindowFetchesTheCheckpointInChunks(t *testing.T) {
	nw := laggingBackup(t)
	r2 := nw.replicas[2]
	before, err := nw.stores[2].Snapshot()
	require.NoError(t, err)
	var chunks []*messages.CheckpointChunk
	nw.watch = func(p packet) {
		if m, ok := chunkTo(p, 2); ok {
			chunks = append(chunks, m)
			if len(chunks) < int(m.Chunks) {
				// Never a partial state: until the last chunk is in,
				// replica 2 is as it was.
				now, err := nw.stores[2].Snapshot()
				require.NoError(t, err)
				require.Equal(t, before, now, "state changed after chunk %d of %d", m.Chunk, m.Chunks)
				require.Zero(t, r2.CommitNumber(), "a commit number past its log committed nothing")
				require.Equal(t, uint64(0), r2.CheckpointOpNumber())
			}
		}
	}
	nw.run(3 * DefaultHeartbeatTicks)
	nw.requireConverged()

	require.NotEmpty(t, chunks)
	n := chunks[0].Chunks
	assert.GreaterOrEqual(t, n, uint32(2), "the checkpoint does not fit one message")
	require.Len(t, chunks, int(n), "each chunk once, none lost")
	for k, m := range chunks {
		assert.Equal(t, uint32(k), m.Chunk, "in order")
		assert.Equal(t, uint64(12), m.OpNumber)
	}
	_, installed := r2.CheckpointStats()
	assert.Equal(t, uint64(1), installed)
	assert.Equal(t, uint64(12), r2.CheckpointOpNumber())
	assert.Equal(t, uint64(12), r2.LogBase(), "its log starts after the checkpoint it installed")
	assert.Equal(t, nw.replicas[0].clientTable.rows(), r2.clientTable.rows(), "the client table came with it")
	assert.Zero(t, r2.Drops().Total())
	for name, size := range nw.largest {
		assert.LessOrEqual(t, size, MinMaxMessageBytes, name)
	}
}

func TestCheckpointTransfer_CorruptedChunkIsDroppedAndFetchedAgain(t *testing.T) {
	nw := laggingBackup(t)
	corrupted := false
	nw.filter = func(p *packet) bool {
		if m, ok := chunkTo(*p, 2); ok && m.Chunk == 1 && !corrupted {
			corrupted = true
			bad := proto.Clone(m).(*messages.CheckpointChunk)
			bad.Data[0] ^= 0xff // crc32c no longer matches
			p.msg = bad
		}
		return true
	}
	r2 := nw.replicas[2]
	checked := false
	nw.watch = func(p packet) {
		if m, ok := chunkTo(p, 2); ok && m.Chunk == 1 && corrupted && !checked {
			checked = true
			assert.Equal(t, uint32(1), r2.fetch.next, "the corrupted chunk is not taken")
			assert.Equal(t, uint64(1), r2.Drops()[DropMalformed], "it is dropped")
		}
	}
	nw.run(4 * DefaultHeartbeatTicks)
	require.True(t, checked)
	nw.requireConverged()
	assert.Equal(t, uint64(1), r2.Drops()[DropMalformed], "and fetched again without another drop")
	_, installed := r2.CheckpointStats()
	assert.Equal(t, uint64(1), installed)
}

func TestCheckpointTransfer_CheckpointWithAWrongDigestIsNeverInstalled(t *testing.T) {
	nw := laggingBackup(t)
	forged := false
	r2 := nw.replicas[2]
	nw.filter = func(p *packet) bool {
		if m, ok := chunkTo(*p, 2); ok && m.Chunk == 0 && !forged {
			// A first chunk whose checksum is right but whose bytes are not
			// the checkpoint's: one byte of a value in the state differs,
			// which still decodes.
			forged = true
			bad := proto.Clone(m).(*messages.CheckpointChunk)
			k := bytes.LastIndexByte(bad.Data, bad.Data[len(bad.Data)/2])
			bad.Data[k]++
			bad.Crc32C = crc32.Checksum(bad.Data, castagnoli)
			p.msg = bad
		}
		return true
	}
	refused := false
	nw.watch = func(p packet) {
		if _, ok := chunkTo(p, 2); ok && !refused && r2.Drops()[DropMalformed] == 1 {
			refused = true
			require.Equal(t, uint64(0), r2.CheckpointOpNumber(), "nothing of the forged checkpoint is installed")
			require.Zero(t, r2.CommitNumber())
		}
	}
	nw.run(4 * DefaultHeartbeatTicks)
	require.True(t, forged)
	require.True(t, refused, "refused at the digest check, once the last chunk is in")
	nw.requireConverged()
	assert.Equal(t, uint64(1), r2.Drops()[DropMalformed])
}

func TestCheckpointTransfer_DuplicateAndOutOfOrderChunksAreIgnored(t *testing.T) {
	nw := laggingBackup(t)
	r2 := nw.replicas[2]
	injected := false
	nw.watch = func(p packet) {
		m, ok := chunkTo(p, 2)
		if !ok || m.Chunk != 0 || injected {
			return
		}
		injected = true
		require.Greater(t, m.Chunks, uint32(2))
		next, buffered := r2.fetch.next, len(r2.fetch.buf)
		require.Equal(t, uint32(1), next)
		nw.step(2, m) // the same chunk again
		src := nw.replicas[p.from]
		nw.step(2, src.chunkMessage(src.checkpoint, 2)) // the one after the next
		assert.Equal(t, next, r2.fetch.next, "no chunk taken")
		assert.Equal(t, buffered, len(r2.fetch.buf))
	}
	nw.run(3 * DefaultHeartbeatTicks)
	require.True(t, injected)
	nw.requireConverged()
	_, installed := r2.CheckpointStats()
	assert.Equal(t, uint64(1), installed)
	assert.Zero(t, r2.Drops().Total(), "ignored, not taken and then refused at the digest check")
}

func TestCheckpointTransfer_LostChunkIsAskedForAgainOnTheHeartbeat(t *testing.T) {
	nw := laggingBackup(t)
	r2 := nw.replicas[2]
	lost := false
	nw.filter = func(p *packet) bool {
		if m, ok := chunkTo(*p, 2); ok && m.Chunk == 1 && !lost {
			lost = true
			return false
		}
		return true
	}
	for k := 0; k < 3*DefaultHeartbeatTicks && !lost; k++ {
		nw.run(1)
	}
	require.True(t, lost)
	require.True(t, r2.fetch.active)
	require.Equal(t, uint32(1), r2.fetch.next)
	var asked []uint32
	nw.filter = func(p *packet) bool {
		if m, ok := p.msg.(*messages.GetCheckpoint); ok && p.from == 2 {
			asked = append(asked, m.Chunk)
		}
		return true
	}
	nw.run(DefaultHeartbeatTicks)
	require.NotEmpty(t, asked, "asked again on the heartbeat")
	assert.Equal(t, uint32(1), asked[0], "for the lost chunk, not from the start")
	nw.run(2 * DefaultHeartbeatTicks)
	nw.requireConverged()
}

func TestCheckpointTransfer_SourceDownMovesToAnotherReplicaWhereItLeftOff(t *testing.T) {
	nw := laggingBackup(t)
	r2 := nw.replicas[2]
	var source int
	nw.filter = func(p *packet) bool {
		if m, ok := chunkTo(*p, 2); ok && m.Chunk == 0 {
			source = p.from
			nw.cut[source][2] = true // the source goes silent after the first chunk
		}
		return true
	}
	for k := 0; k < 3*DefaultHeartbeatTicks && !nw.cut[source][2]; k++ {
		nw.run(1)
	}
	require.True(t, nw.cut[source][2])
	other := 1 - source
	var askedOther *messages.GetCheckpoint
	nw.filter = func(p *packet) bool {
		if m, ok := p.msg.(*messages.GetCheckpoint); ok && p.from == 2 && p.to == other && askedOther == nil {
			askedOther = m
		}
		return true
	}
	nw.run(6 * DefaultHeartbeatTicks)
	require.NotNil(t, askedOther, "after a few silent heartbeats it asks replica %d", other)
	assert.Equal(t, uint32(1), askedOther.Chunk, "the same checkpoint, from where it left off")
	assert.Equal(t, uint64(12), askedOther.OpNumber)
	// Op 13 comes from the primary, once 2 hears it again: a replica that
	// cannot hear its primary does not depose it while the others can.
	nw.cut[source][2] = false
	nw.run(2 * DefaultHeartbeatTicks)
	nw.requireConverged()
	_, installed := r2.CheckpointStats()
	assert.Equal(t, uint64(1), installed)
}

// With a large state a transfer can outlast a checkpoint interval. A source
// that replaces the checkpoint being fetched keeps serving it, and keeps the
// log after it, so the fetcher completes that transfer and then catches up
// from the log instead of starting over with every newer checkpoint.
func TestCheckpointTransfer_SourceKeepsServingACheckpointReplacedMidTransfer(t *testing.T) {
	nw := laggingBackup(t)
	r2 := nw.replicas[2]
	// Replica 2 gets the first chunk; its requests for the others are held
	// back while the group moves past two more checkpoints, as a slow
	// transfer of a large state would be.
	nw.filter = func(p *packet) bool {
		m, ok := p.msg.(*messages.GetCheckpoint)
		return p.from != 2 || !ok || m.Chunk == 0
	}
	for k := 0; r2.fetch.next == 0; k++ {
		require.Less(t, k, 200, "replica 2 never started the transfer")
		nw.tick()
		nw.deliver()
	}
	require.Equal(t, uint64(12), r2.fetch.opNumber)
	var ops []uint64
	nw.filter = func(p *packet) bool { return p.from != 2 || !isType(*p, &messages.GetCheckpoint{}) }
	nw.writeBig(21)
	for i := 0; i < 2; i++ {
		require.Equal(t, uint64(20), nw.replicas[i].CheckpointOpNumber())
	}
	nw.filter = nil
	nw.watch = func(p packet) {
		if m, ok := chunkTo(p, 2); ok {
			ops = append(ops, m.OpNumber)
		}
	}
	nw.run(4 * DefaultHeartbeatTicks)
	nw.requireConverged()
	require.NotEmpty(t, ops)
	for _, op := range ops {
		assert.Equal(t, uint64(12), op, "the rest of checkpoint 12 came, not a newer one")
	}
	_, installed := r2.CheckpointStats()
	assert.Equal(t, uint64(1), installed, "one checkpoint, then the log")
}

// What a retained checkpoint keeps alive, the log after it, stays bounded
// however slow its fetcher: once the log is four intervals past it, it goes,
// even while the fetcher still asks for it.
func TestCheckpointTransfer_RetainedCheckpointGoesFourIntervalsLater(t *testing.T) {
	nw := laggingBackup(t)
	r2 := nw.replicas[2]
	nw.filter = func(p *packet) bool {
		m, ok := p.msg.(*messages.GetCheckpoint)
		return p.from != 2 || !ok || m.Chunk == 0
	}
	for k := 0; r2.fetch.next == 0; k++ {
		require.Less(t, k, 200, "replica 2 never started the transfer")
		nw.tick()
		nw.deliver()
	}
	source := nw.replicas[r2.fetch.source]
	nw.filter = func(p *packet) bool { return p.from != 2 || !isType(*p, &messages.GetCheckpoint{}) }
	bound := uint64(12 + 4*4) // checkpoint 12, interval 4
	for last := uint64(14); source.CommitNumber() <= bound+4; last++ {
		source.retainedServedAt = source.ticks // as if the fetcher still asked
		nw.writeBig(last)
		if source.CommitNumber() <= bound {
			require.LessOrEqual(t, source.LogBase(), uint64(12), "commit %d: the log after checkpoint 12 is kept", source.CommitNumber())
			if source.CheckpointOpNumber() > 12 {
				require.NotNil(t, source.retained, "commit %d: checkpoint 12 is still served", source.CommitNumber())
			}
		}
	}
	require.Greater(t, source.CheckpointOpNumber(), uint64(12))
	assert.Nil(t, source.retained)
	assert.Greater(t, source.LogBase(), uint64(12), "and the log is trimmed to the newest checkpoint")
}
