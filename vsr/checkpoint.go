package vsr

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine"
)

// Checkpoints (paper section 5.1, "efficient recovery", and TigerBeetle's
// checkpoints): every CheckpointInterval committed ops a replica captures its
// state machine and client table at that op, and once the capture is encoded
// it discards the log below it but for TrailingOps entries. A checkpoint is of
// committed state only: it is taken while executing committed op n, right
// after n, and names n.
//
// Capturing is cheap for a state machine that implements
// statemachine.Checkpointer; encoding a large state is not, so the core hands
// it to its caller as a CheckpointJob, which may run on another goroutine, and
// learns the result through CheckpointDone. Until then the log stays whole.

// checkpoint is the latest encoded checkpoint: the one this replica serves
// to others and the base of its log. Its encoding, a messages.Checkpoint, is
// head followed by state: head holds the op number, the client table and the
// tag and length of the state field, which protobuf lets come last, so the
// state machine's bytes are served as they are, never copied into one more
// buffer of the state's size.
type checkpoint struct {
	opNumber uint64
	head     []byte
	state    []byte
	digest   []byte // SHA-256 of head then state
}

func (cp *checkpoint) size() int { return len(cp.head) + len(cp.state) }

// slice returns bytes lo..hi of the encoding, copying only a range that
// spans head and state.
func (cp *checkpoint) slice(lo, hi int) []byte {
	h := len(cp.head)
	switch {
	case hi <= h:
		return cp.head[lo:hi]
	case lo >= h:
		return cp.state[lo-h : hi-h]
	}
	return append(append(make([]byte, 0, hi-lo), cp.head[lo:]...), cp.state[:hi-h]...)
}

// CheckpointJob encodes one checkpoint. Run may be called on any goroutine,
// at most once; hand its result to the replica's CheckpointDone.
type CheckpointJob struct {
	// OpNumber is the committed op the checkpoint is taken at.
	OpNumber    uint64
	clientTable []*messages.ClientSession
	encodeState func() ([]byte, error)
	// The configuration at OpNumber: a replica that restarts from the
	// checkpoint knows its epoch from it.
	epoch, epochOp    uint64
	members, previous []string
	recent            []pastConfig
}

// CheckpointResult is what a CheckpointJob produced.
type CheckpointResult struct {
	OpNumber uint64
	Digest   []byte
	Err      error
	head     []byte
	state    []byte
}

// Encoded returns the whole encoding (a messages.Checkpoint), in a new
// buffer.
func (res CheckpointResult) Encoded() []byte {
	return append(append([]byte{}, res.head...), res.state...)
}

// Parts returns the encoding as its two parts, head then state, without
// copying: a caller that writes the checkpoint to disk writes both.
func (res CheckpointResult) Parts() (head, state []byte) { return res.head, res.state }

// Run encodes the checkpoint and hashes it. A panic in the state machine's
// encoding is returned as an error: the replica then keeps its log whole
// until the next checkpoint, rather than the caller's goroutine dying.
func (j *CheckpointJob) Run() (res CheckpointResult) {
	defer func() {
		if p := recover(); p != nil {
			res = CheckpointResult{OpNumber: j.OpNumber, Err: fmt.Errorf("%w: state machine panicked: %v", ErrCheckpoint, p)}
		}
	}()
	state, err := j.encodeState()
	if err != nil {
		return CheckpointResult{OpNumber: j.OpNumber, Err: err}
	}
	head, err := proto.MarshalOptions{Deterministic: true}.Marshal(&messages.Checkpoint{
		OpNumber: j.OpNumber, ClientTable: j.clientTable, Epoch: j.epoch, EpochOp: j.epochOp,
		Members: j.members, PreviousMembers: j.previous, Recent: pastConfigsMessage(j.recent)})
	if err != nil {
		return CheckpointResult{OpNumber: j.OpNumber, Err: err}
	}
	head = protowire.AppendTag(head, 2, protowire.BytesType) // Checkpoint.state, last
	head = protowire.AppendVarint(head, uint64(len(state)))
	h := sha256.New()
	h.Write(head)
	h.Write(state)
	return CheckpointResult{OpNumber: j.OpNumber, head: head, state: state, Digest: h.Sum(nil)}
}

// ErrCheckpoint is wrapped by checkpoint failures the replica reports.
var ErrCheckpoint = errors.New("vsr: checkpoint failed")

// maybeCheckpoint runs after op is executed: at a multiple of the interval,
// and when no other checkpoint is being encoded, it captures the state. A
// job still out after two intervals is given up (its caller dropped it, or
// the encoding hangs) and a new one is captured, so that the log is trimmed
// whatever becomes of one job.
func (r *Replica) maybeCheckpoint(op uint64) {
	interval := uint64(r.cfg.CheckpointInterval)
	if r.status == StatusLeaving {
		// It keeps no state for anyone: its log is only what it replays to
		// learn, after a restart, that it is leaving.
		return
	}
	if op%interval != 0 || (r.checkpointPending != 0 && op < r.checkpointPending+2*interval) {
		return
	}
	if r.checkpoint != nil && r.checkpoint.opNumber >= op {
		return
	}
	job := &CheckpointJob{OpNumber: op, clientTable: r.clientTable.rows(), encodeState: r.captureState(),
		epoch: r.epoch, epochOp: r.change.op, members: r.members, previous: r.change.previous,
		recent: slices.Clone(r.recent)}
	if r.buggy(BugCheckpointUncommitted) {
		job.OpNumber = r.opNumber() // names ops the state does not hold
	}
	r.checkpointPending = job.OpNumber
	r.out.Checkpoint = job

}

// captureState returns the state machine's state as of now, to be encoded
// later.
func (r *Replica) captureState() func() ([]byte, error) {
	if c, ok := r.sm.(statemachine.Checkpointer); ok {
		return c.Checkpoint()
	}
	state, err := r.sm.Snapshot()
	return func() ([]byte, error) { return state, err }
}

// CheckpointDone hands the replica the result of the CheckpointJob it asked
// for. A result for a checkpoint it no longer waits for (it installed a later
// one from a peer meanwhile) is ignored. A failed job leaves the log whole;
// the next interval tries again.
func (r *Replica) CheckpointDone(res CheckpointResult) Output {
	if res.OpNumber == 0 || res.OpNumber != r.checkpointPending {
		return r.takeOutput()
	}
	r.checkpointPending = 0
	if res.Err != nil {
		r.checkpointFailures++
		return r.takeOutput()
	}
	if r.checkpoint == nil || res.OpNumber > r.checkpoint.opNumber {
		r.retainCheckpoint(r.checkpoint, r.checkpointServedAt)
		r.checkpoint = &checkpoint{opNumber: res.OpNumber, head: res.head, state: res.state, digest: res.Digest}
		r.checkpointServedAt = 0
		r.trimLog()
	}
	return r.takeOutput()
}

// trimLog discards the log below the checkpoint but for the trailing window,
// and but for the log after a retained checkpoint that a peer is still
// fetching: once that peer has installed it, it catches up from this log.
func (r *Replica) trimLog() {
	if r.checkpoint == nil {
		return
	}
	base := r.checkpoint.opNumber
	if r.retained != nil {
		base = min(base, r.retained.opNumber)
	}
	keep := uint64(r.cfg.TrailingOps)
	if base > keep {
		r.discardThrough(base - keep)
	}
}

// installCheckpoint makes the replica's state the checkpoint's: a checkpoint
// fetched from a peer because the ops before it are gone from every log this
// replica could ask. The replica's own entries past the checkpoint stay as
// candidates; those before it are replaced by the state they led to.
func (r *Replica) installCheckpoint(cp *messages.Checkpoint, encoded, digest []byte) bool {
	if cp.OpNumber <= r.commitNumber {
		return false
	}
	if err := r.sm.Restore(cp.State); err != nil {
		r.drop(DropMalformed)
		return false
	}
	r.clientTable.restore(cp.ClientTable)
	if cp.Epoch == r.epoch && cp.EpochOp > r.change.op {
		r.change.op = cp.EpochOp // as for a recovery answer (onRecoveryResponse)
	}
	var keep []*messages.Entry
	if r.opNumber() > cp.OpNumber {
		keep = r.entriesFrom(max(cp.OpNumber, r.logBase)+1, r.opNumber())
	}
	r.resetLog(cp.OpNumber)
	for _, e := range keep {
		r.appendEntry(e)
	}
	r.commitNumber = cp.OpNumber
	r.retained = nil
	r.checkpoint = &checkpoint{opNumber: cp.OpNumber, head: encoded, digest: digest}
	r.checkpointServedAt = 0
	r.checkpointPending = 0
	r.checkpointsInstalled++
	r.out.InstalledCheckpoint = &SavedCheckpoint{OpNumber: cp.OpNumber, Encoded: encoded}
	return true
}

// validCheckpoint reports whether cp is well formed: named op, client-table
// rows each with a client, a request number, a session opened no later than
// the row's last op, and no client twice.
func validCheckpoint(cp *messages.Checkpoint, op uint64) bool {
	if cp.OpNumber != op || op == 0 {
		return false
	}
	seen := make(map[uint64]bool, len(cp.ClientTable))
	for _, row := range cp.ClientTable {
		if row == nil || row.ClientId == 0 || row.RequestNumber == 0 || row.LastOp > op || seen[row.ClientId] ||
			row.Session == 0 || row.Session > row.LastOp {
			return false
		}
		seen[row.ClientId] = true
	}
	return true
}

// pastConfigsMessage is the wire form of a replica's past configurations.
func pastConfigsMessage(cs []pastConfig) []*messages.PastConfiguration {
	out := make([]*messages.PastConfiguration, len(cs))
	for k, c := range cs {
		out[k] = &messages.PastConfiguration{Epoch: c.epoch, Members: c.members}
	}
	return out
}
