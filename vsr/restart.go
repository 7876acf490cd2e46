package vsr

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// Restart from a disk. VR Revisited keeps no disk: a restarted replica
// recovers from its peers (section 4.3), and section 5.1 notes that a
// replica that keeps a checkpoint on disk need only fetch what follows it.
// A replica that keeps everything it promised on disk (its caller made the
// log, the view and the commit number durable before every message, see
// Output) has, after a crash, broken no promise: restarting it is, to its
// peers, the same as hearing from it again after a long pause. So a replica
// whose disk is intact comes back in the view and status it had, with no
// recovery round (as in TigerBeetle, whose replicas open their journal and
// rejoin in their durable view).
//
// A replica whose disk lost or corrupted part of what it wrote cannot tell
// which of its acknowledgements it still backs: "Protocol-Aware Recovery for
// Consensus-Based Storage" (Alagappan et al., FAST 2018) shows that such a
// replica must not vote or acknowledge with what it no longer has. It keeps
// only its committed prefix (committed ops are the same in every log, so
// they need no one's word) and runs VR recovery for the rest, answering
// nothing until recovery ends. The recovering flag is made durable first,
// so that a crash during recovery restarts recovery rather than trusting a
// half-learned state.

// DurableState is what a replica's disk held when it restarted.
type DurableState struct {
	HardState HardState
	// Checkpoint is the latest checkpoint on disk, encoded (a
	// messages.Checkpoint), or nil.
	Checkpoint []byte
	// Entries is the log after the checkpoint, with contiguous op numbers
	// from the checkpoint's op + 1 (or 1).
	Entries []*messages.Entry
	// Damaged says that the disk lost or corrupted part of what the replica
	// wrote; the fields above then hold only what came before the damage.
	Damaged bool
}

// ErrDurableState is returned by Restart for a durable state that cannot be
// a replica's: a checkpoint that does not decode, or a log that does not
// follow it.
var ErrDurableState = errors.New("vsr: durable state is inconsistent")

// Restart makes a replica from its durable state. cfg.Recovering and
// cfg.Epoch are ignored: Restart decides. The state machine must be new and empty.
//
// With an intact disk the replica comes back normal in its view if it was
// normal there, or in view-change status in its view otherwise. With a
// damaged disk, or one written while it was recovering, it keeps its
// committed prefix and recovers.
//
// A group of one cannot recover (there is no peer to ask): its damaged disk
// is an error wrapping ErrCannotRecover, never a replica that waits for ever.
//
// The returned Output holds what the caller must make durable before the
// replica takes any step: for a recovering replica, that it is recovering
// and that its log ends at its commit number.
func Restart(cfg Config, d DurableState) (*Replica, Output, error) {
	// The epoch, like whether it recovers, comes from the durable state.
	cfg.Recovering, cfg.Epoch = false, 0
	r, err := newReplica(cfg)
	if err != nil {
		return nil, Output{}, err
	}
	// A replica started to join knows no configuration before the one it
	// joined: it replays the epochs its log and checkpoint hold as an
	// outsider until the reconfiguration that names it.
	r.outsider = cfg.Joining
	if err := r.restore(d); err != nil {
		return nil, Output{}, err
	}
	r.hardState = d.HardState
	reached := r.reachEpoch(d.HardState.Epoch) && !r.outsider
	switch {
	case r.status == StatusLeaving:
		// It executed the reconfiguration that removed it: it goes on
		// waiting to be released.
		r.sendStartEpochs()
		return r, r.takeOutput(), nil
	case !reached && (cfg.Joining || (!d.Damaged && !d.HardState.Recovering)):
		// It was fetching the state of the epoch it joins (or skipped to):
		// its log does not reach that epoch's first op, and an intact disk
		// holds everything a replica had when it took part, so it never
		// did in that epoch. It keeps the committed ops it has and waits
		// for StartEpoch again, as the member its configuration names.
		r.truncateAfter(r.commitNumber)
		r.epoch, r.change, r.outsider = d.HardState.Epoch, epochChange{}, false
		r.members, r.index = cfg.members(), cfg.ReplicaIndex
		r.n, r.f = len(r.members), faultTolerance(len(r.members))
		r.becomeJoining()
		return r, r.takeOutput(), nil
	case r.outsider:
		return nil, Output{}, fmt.Errorf("%w: its checkpoint's configuration does not name it, and it was not started to join",
			ErrDurableState)
	}
	if reached && r.commitNumber < r.change.op && !d.Damaged {
		// Its epoch began after op change.op, so every op up to it is
		// committed; a replica that joined (or skipped to) the epoch may
		// have stopped before it held them all, and fetches the rest
		// before it takes part, as it was doing.
		r.commitUpTo(r.change.op)
		if r.commitNumber < r.change.op {
			r.truncateAfter(r.commitNumber)
			r.becomeJoining()
			return r, r.takeOutput(), nil
		}
	}
	if reached && r.trusts(d) {
		r.rejoin(d.HardState)
		return r, r.takeOutput(), nil
	}
	if r.n == 1 {
		return nil, Output{}, fmt.Errorf("%w: its disk is damaged or was left mid-recovery; restore it from a backup",
			ErrCannotRecover)
	}
	if r.opNumber() > r.commitNumber {
		r.truncateAfter(r.commitNumber)
	}
	r.startRecovery()
	return r, r.takeOutput(), nil
}

// trusts reports whether the restored state may be used as the replica's
// own: nothing was damaged, recovery was not under way, and the commit
// number does not point past the log.
func (r *Replica) trusts(d DurableState) bool {
	return !d.Damaged && !d.HardState.Recovering && d.HardState.CommitNumber <= r.opNumber()
}

// restore loads the checkpoint and the log, and executes the committed
// ops, as the replica did before it stopped. Nothing it does is told to
// anyone: replies and checkpoint jobs it makes are dropped.
func (r *Replica) restore(d DurableState) error {
	r.status = StatusRecovering // no primary's or backup's duties while replaying
	if d.Checkpoint != nil {
		var cp messages.Checkpoint
		if err := proto.Unmarshal(d.Checkpoint, &cp); err != nil || !validCheckpoint(&cp, cp.OpNumber) {
			return fmt.Errorf("%w: the checkpoint does not decode", ErrDurableState)
		}
		if err := r.sm.Restore(cp.State); err != nil {
			return fmt.Errorf("%w: the state machine refused the checkpoint: %w", ErrDurableState, err)
		}
		r.clientTable.restore(cp.ClientTable)
		if err := r.restoreEpoch(&cp); err != nil {
			return err
		}
		digest := sha256.Sum256(d.Checkpoint)
		r.checkpoint = &checkpoint{opNumber: cp.OpNumber, head: d.Checkpoint, digest: digest[:]}
		r.logBase, r.commitNumber = cp.OpNumber, cp.OpNumber
	}
	for _, e := range d.Entries {
		if e == nil || e.OpNumber != r.opNumber()+1 {
			return fmt.Errorf("%w: the log does not follow op %d", ErrDurableState, r.opNumber())
		}
		r.appendEntry(e)
	}
	r.commitUpTo(min(d.HardState.CommitNumber, r.opNumber()))
	r.out, r.logChangedFrom, r.checkpointPending, r.compacted = Output{}, 0, 0, r.logBase
	return nil
}

// rejoin puts a replica whose disk is intact back in the view it had.
func (r *Replica) rejoin(hs HardState) {
	r.viewNumber, r.lastNormalView = hs.View, min(hs.LastNormalView, hs.View)
	if r.lastNormalView == r.viewNumber {
		r.becomeNormal()
		return
	}
	// It voted for this view: it says so again, and waits for the view
	// change to end or time out.
	r.enterView(hs.View)
	r.status = StatusViewChange
	r.viewChange.started = true
	r.election.start(r.cfg.ViewChangeTicks + r.jitter())
}

// restoreEpoch takes the configuration a checkpoint was taken in. The
// replica is the member the configuration it was started with names at its
// index; the checkpoint must name it too.
func (r *Replica) restoreEpoch(cp *messages.Checkpoint) error {
	if cp.Members == nil { // A checkpoint of a group that was never reconfigured.
		return nil
	}
	self := r.self
	j := slices.Index(cp.Members, self)
	r.outsider = j < 0
	if j < 0 && validMembers(cp.Members) == nil {
		// A joiner's checkpoint from before its epoch: replaying the log
		// to the reconfiguration that names it makes it a member (or the
		// replica goes on joining, see Restart). Until then it is member 0
		// of a configuration it is not in, which nothing sees: it is
		// restoring, and sends nothing.
		j = 0
	}
	// EpochOp may lie past the checkpoint: a joiner stamps the checkpoints
	// it takes while fetching the state its epoch began with with that
	// epoch, and replaying the log then executes the reconfiguration at
	// EpochOp without ending the epoch again.
	if validMembers(cp.Members) != nil || j < 0 ||
		(cp.PreviousMembers != nil && validMembers(cp.PreviousMembers) != nil) {
		return fmt.Errorf("%w: the checkpoint at op %d (epoch %d, begun at op %d) has configuration %v (previous %v), which does not name this replica (%s)",
			ErrDurableState, cp.OpNumber, cp.Epoch, cp.EpochOp, cp.Members, cp.PreviousMembers, self)
	}
	r.epoch, r.members, r.index = cp.Epoch, cp.Members, j
	r.n, r.f = len(cp.Members), faultTolerance(len(cp.Members))
	r.change = epochChange{op: cp.EpochOp, previous: cp.PreviousMembers, started: make([]bool, len(cp.Members))}
	for _, c := range cp.Recent {
		if c != nil && c.Epoch < cp.Epoch && validMembers(c.Members) == nil {
			r.remember(c.Epoch, c.Members)
		}
	}
	r.change.started[j] = !r.outsider
	return nil
}

// reachEpoch brings a restored replica to the epoch its hard state names.
// Replaying the log executed the reconfigurations up to the durable commit
// number, but that number is written lazily (see sameVote), so it may lie
// before a reconfiguration the replica had executed: the hard state's later
// epoch says that the reconfiguration committed, and with it every op before
// it. It reports whether the replica got there.
func (r *Replica) reachEpoch(epoch uint64) bool {
	for r.epoch < epoch && r.status != StatusLeaving {
		next := uint64(0)
		for op := max(r.commitNumber, r.change.op) + 1; op <= r.opNumber(); op++ {
			if r.entryAt(op).GetReconfigure() != nil {
				next = op
				break
			}
		}
		if next == 0 {
			return false
		}
		r.commitUpTo(next)
	}
	r.out = Output{}
	return r.epoch == epoch || r.status == StatusLeaving
}
