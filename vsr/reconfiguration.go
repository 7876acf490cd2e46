package vsr

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// Reconfiguration (paper section 7, with the variant docs/reconfiguration.md
// defends): a reconfiguration request goes through the log like a write and
// is the last op of its epoch. The replica that executes it moves to the next
// epoch, as a member of the new configuration (it stays) or as a replica that
// is leaving; members that were not in the old configuration join through
// StartEpoch and a transfer of committed state. The new configuration must
// keep a majority of itself from the old one, so the members that stay form a
// quorum of the new epoch the moment they execute the reconfiguration, and no
// transfer ever crosses epochs.

// epochChange is what a replica keeps of the change that began its current
// epoch, or, while it is leaving, of the change that ends its membership.
type epochChange struct {
	// op is the reconfiguration's op number: the last op of the epoch before.
	op uint64
	// previous is the configuration of the epoch before (nil in epoch 0,
	// and for a joiner that has not heard StartEpoch yet).
	previous []string
	// next is, for a replica that is leaving, the configuration of epoch
	// nextEpoch, the latest it has heard of, which does not name it.
	next      []string
	nextEpoch uint64
	// entry names the reconfiguration at op, when known (see
	// StartEpoch.entry_view).
	entry struct{ view, client, request uint64 }
	// started[j] is set once member j of the new configuration (the current
	// one, or next for a replica that is leaving) is known to hold the state
	// up to op: it sent EpochStarted, or StartEpoch from that epoch.
	started []bool
}

// Errors a reconfiguration request is refused with (in the reply's result).
var (
	ErrNotReconfigurable = errors.New("this group does not take reconfigurations (Config.Reconfigurable is off)")
	ErrSameConfiguration = errors.New("the new configuration is the current one")
	ErrNewMajority       = errors.New("new members must be a minority of the new configuration: replace or add members a few at a time")
)

// checkReconfiguration reports what is wrong with next as the configuration
// to follow the current one, or nil.
func (r *Replica) checkReconfiguration(next []string) error {
	if err := validMembers(next); err != nil {
		return err
	}
	if slices.Equal(next, r.members) && !r.buggy(BugReconfigureTwice) {
		return ErrSameConfiguration
	}
	kept := 0
	for _, name := range next {
		if slices.Contains(r.members, name) {
			kept++
		}
	}
	if kept < faultTolerance(len(next))+1 {
		return fmt.Errorf("%w (%d of %d are new, at most %d may be)", ErrNewMajority,
			len(next)-kept, len(next), faultTolerance(len(next)))
	}
	return nil
}

// reconfiguring reports whether the log ends in a reconfiguration of the
// current epoch that has not committed: the epoch then takes no new op.
func (r *Replica) reconfiguring() bool {
	op := r.opNumber()
	return op > r.change.op && op > r.commitNumber && r.entryAt(op).GetReconfigure() != nil
}

// refuseForEpoch answers a request that this replica will not take because
// of its epoch: the reply names the configuration the client should use.
func (r *Replica) refuseForEpoch(m *messages.Request, why messages.ReplyError) {
	rep := &messages.Reply{View: r.viewNumber, ClientId: m.ClientId, RequestNumber: m.RequestNumber, Error: why}
	r.reply(m.ReplyTo, rep)
	rep.Epoch, rep.Members = r.epoch, r.members
	if r.status == StatusLeaving {
		rep.Epoch, rep.Members = r.change.nextEpoch, r.change.next
	}
}

// endEpoch runs when the replica executes the reconfiguration e, the last op
// of its epoch: it moves to the next epoch, as a member if the new
// configuration names it, or as a replica that is leaving.
func (r *Replica) endEpoch(e *messages.Entry) {
	if r.status == StatusNormal && r.isPrimary() {
		// The old epoch's backups learn of the commit now, not when
		// their inactivity timeouts make them ask: after this step the
		// primary speaks only for the new epoch.
		r.sendHeartbeatCommits()
	}
	next := e.Reconfigure.Members
	self := r.self
	change := epochChange{op: e.OpNumber, previous: r.members, started: make([]bool, len(next))}
	change.entry.view, change.entry.client, change.entry.request = e.View, e.ClientId, e.RequestNumber
	j := slices.Index(next, self)
	if j < 0 && r.buggy(BugOldMemberVotes) {
		// It takes the place of the first member that is new.
		for k, name := range next {
			if !slices.Contains(r.members, name) {
				j = k
				break
			}
		}
	}
	if j < 0 && r.outsider {
		// Restoring from a checkpoint older than its membership: this
		// epoch does not name it either; the next may.
		r.remember(r.epoch, r.members)
		r.change = change
		r.epoch, r.members, r.n, r.f = r.epoch+1, next, len(next), faultTolerance(len(next))
		return
	}
	if j < 0 {
		change.previous, change.next, change.nextEpoch = nil, next, r.epoch+1
		r.change = change
		r.becomeLeaving()
		return
	}
	r.remember(r.epoch, r.members)
	r.change = change
	r.outsider = false
	r.enterEpoch(r.epoch+1, next, j)
	r.becomeNormal()
	r.announceEpochStarted()
}

// enterEpoch makes the replica member index of epoch with configuration
// members, in view 0, with no vote state of the epoch before.
func (r *Replica) enterEpoch(epoch uint64, members []string, index int) {
	r.epoch, r.members, r.index = epoch, members, index
	r.n, r.f = len(members), faultTolerance(len(members))
	r.viewNumber, r.lastNormalView = 0, 0
	r.viewChange.reset()
	r.probe = probeState{}
	r.syncing = false
	r.catchUp = catchUpState{}
	r.fetch = fetchState{}
	r.markStarted(index)
}

// becomeLeaving makes the replica one that the new configuration does not
// name: it takes no part in any epoch any more, and waits only until a quorum
// of the new configuration holds the state (see onEpochStarted).
func (r *Replica) becomeLeaving() {
	r.dropRole(StatusLeaving)
	r.catchUp = catchUpState{}
	r.fetch = fetchState{}
	r.sendStartEpochs()
}

// sendTo queues m for the member named name, which may belong to another
// configuration than the current one (Envelope.To is then -1).
func (r *Replica) sendTo(name string, m proto.Message) {
	r.out.Messages = append(r.out.Messages, Envelope{To: slices.Index(r.members, name), Member: name, Msg: m})
}

// Left reports whether this replica, removed by a reconfiguration, has
// seen a quorum of the new configuration hold the state: it is no longer
// needed, and its caller may stop it.
func (r *Replica) Left() bool { return r.left }

// endsWithReconfiguration reports whether entries, to follow this replica's
// log in its epoch, keep a reconfiguration last: none but the last of them is
// one, and the log does not already end in one.
func (r *Replica) endsWithReconfiguration(entries []*messages.Entry) bool {
	for k, e := range entries {
		if e.Reconfigure != nil && k != len(entries)-1 {
			return false
		}
	}
	op := r.opNumber()
	if op > r.change.op && r.entryAt(op).GetReconfigure() != nil && entries[len(entries)-1].OpNumber > op {
		return false
	}
	return true
}

// sendHeartbeatCommits sends every backup of the current view a Commit.
func (r *Replica) sendHeartbeatCommits() {
	for j := range r.members {
		if j != r.index {
			r.send(j, &messages.Commit{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, View: r.viewNumber,
				CommitNumber: r.commitNumber, Replica: uint32(r.index)})
		}
	}
}

// becomeJoining makes the replica a member that fetches the state its epoch
// began with, holding no role until it has it.
func (r *Replica) becomeJoining() {
	r.dropRole(StatusJoining)
}

// dropRole puts the replica in a status that holds no role in any view
// (joining, leaving, recovering): no primary's state, no vote, no probe, no
// election timer, no requests in progress.
func (r *Replica) dropRole(s Status) {
	r.status = s
	r.primary = primaryState{}
	r.viewChange.reset()
	r.probe = probeState{}
	r.syncing = false
	r.election.stop()
	r.clientTable.clearInProgress()
}
