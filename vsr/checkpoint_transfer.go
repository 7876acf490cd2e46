package vsr

import (
	"bytes"
	"crypto/sha256"
	"hash/crc32"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// Checkpoint transfer: a replica that needs ops no log holds any more fetches
// a checkpoint, one checksummed chunk at a time, in order, each chunk asked for
// after the one before it arrived (and asked for again on every heartbeat
// while it does not). A lost chunk costs a heartbeat, a duplicated or
// reordered one is ignored, and the assembled bytes are checked against the
// checkpoint's SHA-256 before anything is installed: a replica never adopts a
// partial checkpoint. The transfer is keyed by the checkpoint (op number and
// digest), not by the view, so it survives a view change; a source that no
// longer holds the checkpoint answers with the first chunk of the one it
// holds, and the transfer starts over with that one.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fetchState is a checkpoint transfer in progress.
type fetchState struct {
	active bool
	source int
	// The checkpoint being assembled, once its first chunk arrived.
	opNumber uint64
	digest   []byte
	size     uint64
	chunks   uint32
	next     uint32 // the chunk asked for
	buf      []byte
	// idle counts heartbeats without a chunk; past a few, another replica
	// is asked.
	idle int
}

// startFetch begins fetching the checkpoint that replica source holds, unless
// a transfer is under way already.
func (r *Replica) startFetch(source int) {
	if r.fetch.active {
		return
	}
	r.fetch = fetchState{active: true, source: source}
	r.requestChunk()
}

func (r *Replica) requestChunk() {
	r.send(r.fetch.source, &messages.GetCheckpoint{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, Replica: uint32(r.index),
		OpNumber: r.fetch.opNumber, Digest: r.fetch.digest, Chunk: r.fetch.next})
}

// endFetch abandons the transfer and lets whatever waited for it go on.
func (r *Replica) endFetch() {
	r.fetch = fetchState{}
	r.onTransferProgress()
}

// resendChunkRequest runs every heartbeat while a transfer is under way.
func (r *Replica) resendChunkRequest() {
	if r.fetch.opNumber != 0 && r.fetch.opNumber <= r.commitNumber {
		r.endFetch() // The log brought this replica past the checkpoint.
		return
	}
	r.fetch.idle++
	if r.fetch.idle > 3 {
		// The source may be down: try the next replica. A replica holding
		// the same checkpoint goes on where this one stopped.
		r.fetch.idle = 0
		r.fetch.source = (r.fetch.source + 1) % r.n
		if r.fetch.source == r.index {
			r.fetch.source = (r.fetch.source + 1) % r.n
		}
	}
	r.requestChunk()
}

// onGetCheckpoint serves a chunk of this replica's checkpoint. Any replica
// that is not recovering answers: a checkpoint is committed state.
//
// A checkpoint being fetched stays servable, with the log after it, for a
// while after a newer one replaces it (see retainCheckpoint): with a large
// state a transfer can take longer than a checkpoint interval, and a source
// that only ever offered its newest checkpoint would have the fetcher start
// over for ever.
func (r *Replica) onGetCheckpoint(m *messages.GetCheckpoint) {
	if r.status == StatusRecovering || r.checkpoint == nil {
		return
	}
	cp := r.checkpoint
	if old := r.retained; old != nil && m.OpNumber == old.opNumber && bytes.Equal(m.Digest, old.digest) {
		cp = old
	}
	chunk := m.Chunk
	if m.OpNumber != cp.opNumber || !bytes.Equal(m.Digest, cp.digest) || chunk >= r.chunkCount(cp) {
		chunk = 0
	}
	if cp == r.checkpoint {
		r.checkpointServedAt = r.ticks
	} else {
		r.retainedServedAt = r.ticks
	}
	r.send(int(m.Replica), r.chunkMessage(cp, chunk))
}

// retainTicks is how long a replaced checkpoint stays servable after its
// last chunk was asked for: ten heartbeats, several times the interval at
// which a fetcher asks again for a lost chunk.
func (r *Replica) retainTicks() int { return 10 * r.cfg.HeartbeatTicks }

// retainCheckpoint runs when cp is replaced by a newer checkpoint: if a
// chunk of cp was asked for recently, cp and the log after it are kept until
// nobody has asked for retainTicks.
func (r *Replica) retainCheckpoint(cp *checkpoint, servedAt int) {
	if cp == nil || r.ticks-servedAt > r.retainTicks() || servedAt == 0 {
		return
	}
	r.retained, r.retainedServedAt = cp, servedAt
}

// expireRetained drops a retained checkpoint nobody has asked for lately,
// or one the log has moved four intervals past (what it keeps alive, the log
// after it, must stay bounded however slow the fetcher), and lets the log be
// trimmed to the newest one.
func (r *Replica) expireRetained() {
	if r.retained == nil {
		return
	}
	if r.ticks-r.retainedServedAt > r.retainTicks() ||
		r.commitNumber > r.retained.opNumber+4*uint64(r.cfg.CheckpointInterval) {
		r.retained = nil
		r.trimLog()
	}
}

func (r *Replica) chunkCount(cp *checkpoint) uint32 {
	size := r.cfg.chunkBytes()
	return uint32(max(1, (cp.size()+size-1)/size))
}

func (r *Replica) chunkMessage(cp *checkpoint, chunk uint32) *messages.CheckpointChunk {
	size := r.cfg.chunkBytes()
	lo := int(chunk) * size
	data := cp.slice(lo, min(lo+size, cp.size()))
	return &messages.CheckpointChunk{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, Replica: uint32(r.index),
		OpNumber: cp.opNumber, Digest: cp.digest, Size: uint64(cp.size()),
		Chunk: chunk, Chunks: r.chunkCount(cp), Data: data, Crc32C: crc32.Checksum(data, castagnoli)}
}

// onCheckpointChunk adds a chunk to the checkpoint being assembled.
func (r *Replica) onCheckpointChunk(m *messages.CheckpointChunk) {
	if !r.fetch.active || (r.status == StatusNormal && r.isPrimary()) {
		return
	}
	// Every chunk carries data, so there are no more chunks than bytes: a
	// forged chunk count cannot keep a transfer asking for empty chunks.
	if m.Chunks == 0 || m.Chunk >= m.Chunks || uint64(m.Chunks) > max(1, m.Size) || len(m.Digest) != sha256.Size ||
		(len(m.Data) == 0 && m.Size > 0) || crc32.Checksum(m.Data, castagnoli) != m.Crc32C || uint64(len(m.Data)) > m.Size {
		r.drop(DropMalformed)
		return
	}
	f := &r.fetch
	if m.OpNumber <= r.commitNumber {
		// This replica has that state already. If the checkpoint it is
		// assembling is no newer, the transfer has nothing left to give:
		// end it, and go on with the log.
		if f.opNumber <= r.commitNumber {
			r.endFetch()
		}
		return
	}
	same := m.OpNumber == f.opNumber && bytes.Equal(m.Digest, f.digest) && m.Size == f.size && m.Chunks == f.chunks
	switch {
	case same && (m.Chunk == f.next || r.buggy(BugChunkAnyOrder)):
	case m.Chunk == 0 && !same && (m.OpNumber >= f.opNumber || f.idle >= 2):
		// The first chunk of another checkpoint, at least as new, or of any
		// checkpoint this replica lacks once the one it was assembling has
		// stalled (no replica it can reach may hold that one any more):
		// start over with it.
		*f = fetchState{active: true, source: int(m.Replica), opNumber: m.OpNumber,
			digest: bytes.Clone(m.Digest), size: m.Size, chunks: m.Chunks}
	default:
		return // A duplicate, a chunk out of order, or one of an older checkpoint.
	}
	if uint64(len(f.buf)+len(m.Data)) > f.size {
		*f = fetchState{active: true, source: f.source} // Longer than announced: start over.
		r.requestChunk()
		return
	}
	f.buf = append(f.buf, m.Data...)
	f.next++
	f.idle = 0
	f.source = int(m.Replica)
	if r.buggy(BugNormalBeforeSnapshot) && f.chunks > 1 && f.next == 1 {
		r.adoptUnverified()
		return
	}
	if f.next < f.chunks {
		r.requestChunk()
		return
	}
	r.completeFetch()
}

// completeFetch checks the assembled checkpoint and installs it.
func (r *Replica) completeFetch() {
	f := r.fetch
	r.fetch = fetchState{}
	sum := sha256.Sum256(f.buf)
	var cp messages.Checkpoint
	if uint64(len(f.buf)) != f.size || !bytes.Equal(sum[:], f.digest) ||
		proto.Unmarshal(f.buf, &cp) != nil || !validCheckpoint(&cp, f.opNumber) {
		r.drop(DropMalformed)
		r.startFetch(f.source) // Corrupt or forged: fetch it again.
		return
	}
	if r.installCheckpoint(&cp, f.buf, f.digest) {
		r.onTransferProgress()
	}
}

// adoptUnverified is BugNormalBeforeSnapshot: it takes the checkpoint's op
// number after the first chunk, without the state.
func (r *Replica) adoptUnverified() {
	f := r.fetch
	r.fetch = fetchState{}
	r.resetLog(f.opNumber)
	r.commitNumber = f.opNumber
	r.onTransferProgress()
}
