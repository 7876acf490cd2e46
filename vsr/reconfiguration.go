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

// pastConfig is the configuration of an epoch before the current one.
type pastConfig struct {
	epoch   uint64
	members []string
}

// keptConfigs is how many configurations of past epochs a replica keeps, so
// that it can name the sender of a message from a replica that is that many
// epochs behind and tell it what it missed (answerOldEpoch). A replica
// further behind hears from no one: it must be restarted with an empty
// disk. The bound keeps the history a replica holds constant.
const keptConfigs = 8

// remember records members as the configuration of a past epoch.
func (r *Replica) remember(epoch uint64, members []string) {
	if len(r.recent) > 0 && r.recent[len(r.recent)-1].epoch >= epoch {
		return
	}
	r.recent = append(r.recent, pastConfig{epoch: epoch, members: members})
	if len(r.recent) > keptConfigs {
		r.recent = slices.Delete(r.recent, 0, len(r.recent)-keptConfigs)
	}
}

// pastMembers is the configuration of past epoch e, if the replica keeps it.
func (r *Replica) pastMembers(e uint64) []string {
	for _, c := range r.recent {
		if c.epoch == e {
			return c.members
		}
	}
	return nil
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
	r.status = StatusLeaving
	r.primary = primaryState{}
	r.viewChange.reset()
	r.probe = probeState{}
	r.syncing = false
	r.catchUp = catchUpState{}
	r.fetch = fetchState{}
	r.election.stop()
	r.clientTable.clearInProgress()
	r.sendStartEpochs()
}

// announceEpochStarted tells every other member of the old and the new
// configuration that this replica holds the state the epoch began with.
func (r *Replica) announceEpochStarted() {
	m := &messages.EpochStarted{ClusterId: r.cfg.ClusterID, Epoch: r.epoch, Replica: uint32(r.index)}
	for j := range r.members {
		if j != r.index {
			r.send(j, m)
		}
	}
	for _, name := range r.change.previous {
		if !slices.Contains(r.members, name) {
			r.sendTo(name, m)
		}
	}
}

// startEpochMessage describes the change that began epoch (the current one,
// or the next for a replica that is leaving).
func (r *Replica) startEpochMessage() *messages.StartEpoch {
	m := &messages.StartEpoch{ClusterId: r.cfg.ClusterID, OpNumber: r.change.op,
		Replica: uint32(r.index), SenderEpoch: r.epoch, EntryView: r.change.entry.view,
		EntryClient: r.change.entry.client, EntryRequest: r.change.entry.request}
	if r.status == StatusLeaving {
		// PreviousMembers is then its own configuration, which names it.
		m.Epoch, m.PreviousMembers, m.Members = r.change.nextEpoch, r.members, r.change.next
	} else {
		m.Epoch, m.PreviousMembers, m.Members = r.epoch, r.change.previous, r.members
	}
	return m
}

// sendStartEpochs runs every heartbeat while a change is recent: a member
// that holds the state tells the members of its configuration that have not
// said they hold it too (joiners, and members that missed the commit); a
// replica that is leaving asks the members of the new configuration, whose
// answers tell it when it may stop.
func (r *Replica) sendStartEpochs() {
	if r.change.started == nil || r.left ||
		(r.status != StatusNormal && r.status != StatusViewChange && r.status != StatusLeaving) {
		return
	}
	m := r.startEpochMessage()
	if r.status == StatusLeaving {
		for j, name := range r.change.next {
			if j >= len(r.change.started) || !r.change.started[j] {
				r.sendTo(name, m)
			}
		}
		return
	}
	for j := range r.members {
		if j != r.index && (j >= len(r.change.started) || !r.change.started[j]) {
			r.send(j, m)
		}
	}
}

// onStartEpoch handles news of an epoch change.
func (r *Replica) onStartEpoch(m *messages.StartEpoch) {
	switch {
	case r.status == StatusLeaving:
		// A member of the new epoch that holds the state asks the leaving
		// replica nothing; its StartEpoch counts as its EpochStarted. One
		// of a later epoch still may name it again, or not.
		switch {
		case m.SenderEpoch != m.Epoch || r.left:
		case m.Epoch == r.change.nextEpoch && int(m.Replica) < len(r.change.next):
			r.countStarted(int(m.Replica))
		case m.Epoch > r.change.nextEpoch:
			r.skipToEpoch(m)
		}
	case r.status == StatusJoining:
		r.joinEpoch(m)
	case r.status == StatusRecovering:
		r.recoverInEpoch(m)
	case m.Epoch < r.epoch:
		// News of an epoch since ended: tell its sender of this one.
		if name := startEpochSender(m); name != "" && name != r.self {
			r.answerWith(name)
		}
	case m.Epoch == r.epoch+1 && m.SenderEpoch == r.epoch:
		r.learnEndOfEpoch(m)
	case m.Epoch > r.epoch && m.SenderEpoch == m.Epoch:
		r.skipToEpoch(m)
	case m.Epoch == r.epoch && m.SenderEpoch < m.Epoch:
		// A replica that is leaving asks whether this member holds the
		// state: it does, if it takes part in the epoch.
		if (r.status == StatusNormal || r.status == StatusViewChange) && int(m.Replica) < len(m.PreviousMembers) &&
			validMembers(m.PreviousMembers) == nil && !slices.Contains(r.members, m.PreviousMembers[m.Replica]) {
			r.sendTo(m.PreviousMembers[m.Replica], &messages.EpochStarted{ClusterId: r.cfg.ClusterID, Epoch: r.epoch,
				Replica: uint32(r.index)})
		}
	case m.Epoch == r.epoch && m.SenderEpoch == r.epoch && int(m.Replica) < r.n && int(m.Replica) != r.index &&
		r.change.started != nil:
		// A member of this epoch that holds the state: answer, so that it
		// stops asking.
		if r.status == StatusNormal || r.status == StatusViewChange {
			r.markStarted(int(m.Replica))
			r.send(int(m.Replica), &messages.EpochStarted{ClusterId: r.cfg.ClusterID, Epoch: r.epoch,
				Replica: uint32(r.index)})
		}
	}
}

// learnEndOfEpoch handles StartEpoch from a member of this replica's own
// epoch that has executed the reconfiguration (it is leaving, or it stays
// and sends from the new epoch's side; either way it is stamped with the
// epoch both share). This replica fetches the committed ops up to the
// reconfiguration from it, within the epoch they share; executing the
// reconfiguration then moves it on as it would any replica.
func (r *Replica) learnEndOfEpoch(m *messages.StartEpoch) {
	if r.status == StatusRecovering || int(m.Replica) >= r.n || int(m.Replica) == r.index ||
		!slices.Equal(m.PreviousMembers, r.members) || validMembers(m.Members) != nil || m.OpNumber < r.commitNumber {
		r.drop(DropMalformed)
		return
	}
	r.catchUpTo(int(m.Replica), m.OpNumber)
}

// skipToEpoch handles StartEpoch from a member of a later epoch: this
// replica missed the commit of the reconfiguration that ended its epoch (and
// perhaps of later ones, while it was down or cut off). Its committed prefix
// is good in every epoch; the entries after it may belong to an abandoned
// view, so they go. If the new configuration names it, it is a member of
// that epoch that does not hold the state yet, and fetches the committed ops
// up to the reconfiguration from the sender; otherwise it is leaving. Either
// way it never voted in the new epoch (a replica's epoch only grows, and it
// is durable), so it may join it with only the committed prefix.
func (r *Replica) skipToEpoch(m *messages.StartEpoch) {
	if r.status == StatusRecovering || (m.Epoch == r.epoch+1 && !slices.Equal(m.PreviousMembers, r.members)) ||
		validMembers(m.Members) != nil || int(m.Replica) >= len(m.Members) || m.OpNumber < r.commitNumber {
		r.drop(DropMalformed)
		return
	}
	if e := r.entryAt(m.OpNumber); e != nil && m.EntryClient != 0 && m.OpNumber > r.change.op &&
		e.View == m.EntryView && e.ClientId == m.EntryClient && e.RequestNumber == m.EntryRequest {
		// This replica holds the very reconfiguration that began the
		// epoch, so its log up to it is the committed one (an entry names
		// its view's log up to it): it commits and moves on as any member
		// that executes it does, through every epoch between.
		r.commitUpTo(m.OpNumber)
		return
	}
	self := r.self
	j := slices.Index(m.Members, self)
	if j < 0 {
		r.truncateAfter(r.commitNumber)
		r.change = epochChange{op: m.OpNumber, next: m.Members, nextEpoch: m.Epoch, started: make([]bool, len(m.Members))}
		r.becomeLeaving()
		r.countStarted(int(m.Replica))
		return
	}
	r.remember(r.epoch, r.members)
	r.remember(m.Epoch-1, m.PreviousMembers)
	// Its entries past the commit number go: they are not the committed
	// log (that would hold the reconfiguration above), and a restart must
	// find only committed entries below the epoch's first op (reachEpoch).
	// None of them is a copy that the reconfiguration's commit counted: a
	// replica that acknowledged it holds it.
	r.truncateAfter(r.commitNumber)
	r.change = epochChange{op: m.OpNumber, previous: m.PreviousMembers, started: make([]bool, len(m.Members))}
	r.change.entry.view, r.change.entry.client, r.change.entry.request = m.EntryView, m.EntryClient, m.EntryRequest
	r.enterEpoch(m.Epoch, m.Members, j)
	r.becomeJoining()
	r.markStarted(int(m.Replica))
	r.catchUpTo(int(m.Replica), m.OpNumber)
	if r.commitNumber >= r.change.op {
		r.finishJoining()
	}
}

// joinEpoch handles StartEpoch at a replica that was started to join a group
// whose configuration names it (Config.Joining), or that skipped to a new
// epoch and is fetching its state.
//
// The configuration it was given is where it starts looking, not a promise:
// by the time it hears, the group may have moved on to a later epoch that
// still names it, and it joins that one. It never held a vote in any of
// them, so it may join the latest with whatever committed prefix it has.
func (r *Replica) joinEpoch(m *messages.StartEpoch) {
	j := slices.Index(m.Members, r.self)
	if m.Epoch < r.epoch {
		return // news of an epoch this replica is already past: its epoch never goes back
	}
	if m.SenderEpoch != m.Epoch || int(m.Replica) >= len(m.Members) || validMembers(m.Members) != nil || j < 0 ||
		int(m.Replica) == j || m.OpNumber < r.commitNumber {
		r.drop(DropMalformed)
		return
	}
	if r.change.started == nil || m.Epoch > r.epoch { // the first word of the epoch it joins, or of a later one
		r.change = epochChange{op: m.OpNumber, previous: m.PreviousMembers, started: make([]bool, len(m.Members))}
		r.change.entry.view, r.change.entry.client, r.change.entry.request = m.EntryView, m.EntryClient, m.EntryRequest
		if validMembers(m.PreviousMembers) == nil {
			r.remember(m.Epoch-1, m.PreviousMembers)
		}
		r.epoch, r.members, r.index = m.Epoch, m.Members, j
		r.n, r.f = len(m.Members), faultTolerance(len(m.Members))
		r.catchUp = catchUpState{}
		r.fetch = fetchState{}
		r.truncateAfter(r.commitNumber)
	}
	if m.Epoch != r.epoch || m.OpNumber != r.change.op {
		return
	}
	r.markStarted(int(m.Replica))
	r.catchUpTo(int(m.Replica), m.OpNumber)
	if r.commitNumber >= r.change.op || r.buggy(BugJoinBeforeUpToDate) {
		r.finishJoining()
	}
}

// finishJoining runs when a joining replica's commit number reaches the op
// that began its epoch: it holds the state, and becomes a normal backup of
// view 0 (a later view's primary makes it sync that view's log).
func (r *Replica) finishJoining() {
	r.truncateAfter(r.commitNumber) // what lies past it is from an epoch that ended
	r.status = StatusViewChange     // becomeNormal from a status that holds no role
	r.becomeNormal()
	r.markStarted(r.index)
	r.announceEpochStarted()
}

// onEpochStarted counts a member of the new configuration that holds the
// state.
func (r *Replica) onEpochStarted(m *messages.EpochStarted) {
	switch {
	case r.status == StatusLeaving && m.Epoch == r.change.nextEpoch && int(m.Replica) < len(r.change.next):
		r.countStarted(int(m.Replica))
	case r.status != StatusLeaving && m.Epoch == r.epoch && int(m.Replica) < r.n && int(m.Replica) != r.index:
		r.markStarted(int(m.Replica))
	}
}

// countStarted records, at a replica that is leaving, that member j of the
// new configuration holds the state; once f+1 of them do, the new epoch
// never needs this replica, and it has left.
func (r *Replica) countStarted(j int) {
	r.markStarted(j)
	count := 0
	for _, s := range r.change.started {
		if s {
			count++
		}
	}
	if count >= faultTolerance(len(r.change.next))+1 {
		r.out.Left = true
		r.left = true
	}
}

// sendTo queues m for the member named name, which may belong to another
// configuration than the current one (Envelope.To is then -1).
func (r *Replica) sendTo(name string, m proto.Message) {
	r.out.Messages = append(r.out.Messages, Envelope{To: slices.Index(r.members, name), Member: name, Msg: m})
}

// answerOldEpoch answers a message stamped with the epoch before this
// replica's, from a member of that epoch's configuration, with the news of
// the change: the sender missed it.
func (r *Replica) answerOldEpoch(epoch uint64, from int) {
	members := r.pastMembers(epoch)
	if members == nil || from >= len(members) || r.self == members[from] {
		return
	}
	r.answerWith(members[from])
}

// answerWith sends the member named name the news of this replica's epoch,
// if this replica takes part in it.
func (r *Replica) answerWith(name string) {
	if r.status != StatusNormal && r.status != StatusViewChange {
		return
	}
	r.sendTo(name, r.startEpochMessage())
}

// startEpochSender names the sender of m from what m says (its own
// configuration travels in it), or "".
func startEpochSender(m *messages.StartEpoch) string {
	members := m.Members
	if m.SenderEpoch < m.Epoch {
		members = m.PreviousMembers // a replica that is leaving sends its own configuration there
	}
	if int(m.Replica) >= len(members) || validMembers(members) != nil {
		return ""
	}
	return members[m.Replica]
}

// onLeavingMessage handles, at a replica that is leaving, a message of its
// old epoch that asks it to take part: it answers with the news of the
// change instead.
func (r *Replica) onLeavingMessage(from uint32) {
	if r.left || int(from) >= r.n || int(from) == r.index {
		return
	}
	r.send(int(from), r.startEpochMessage())
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

// recoverInEpoch handles StartEpoch at a replica that is recovering in an
// epoch that has ended: it runs recovery again in the later epoch, where it
// may have voted before it lost its state (it cannot tell how far it had
// got), if that epoch's configuration names it; otherwise it was removed,
// and is leaving.
func (r *Replica) recoverInEpoch(m *messages.StartEpoch) {
	if m.Epoch <= r.epoch || m.SenderEpoch != m.Epoch ||
		(m.Epoch == r.epoch+1 && !slices.Equal(m.PreviousMembers, r.members)) ||
		validMembers(m.Members) != nil || int(m.Replica) >= len(m.Members) {
		return
	}
	self := r.self
	j := slices.Index(m.Members, self)
	r.truncateAfter(r.commitNumber)
	if j < 0 {
		r.change = epochChange{op: m.OpNumber, next: m.Members, nextEpoch: m.Epoch, started: make([]bool, len(m.Members))}
		r.recovery = recoveryState{}
		r.becomeLeaving()
		r.countStarted(int(m.Replica))
		return
	}
	r.remember(r.epoch, r.members)
	r.change = epochChange{op: m.OpNumber, previous: m.PreviousMembers, started: make([]bool, len(m.Members))}
	r.epochOpUnknown = false
	r.enterEpoch(m.Epoch, m.Members, j)
	r.startRecovery()
}

// markStarted records that member j of the configuration the change began
// holds the state. The bookkeeping is sized to that configuration; a word
// about any other is ignored.
func (r *Replica) markStarted(j int) {
	if j >= 0 && j < len(r.change.started) {
		r.change.started[j] = true
	}
}

// becomeJoining makes the replica a member that fetches the state its epoch
// began with, holding no role until it has it.
func (r *Replica) becomeJoining() {
	r.status = StatusJoining
	r.primary = primaryState{}
	r.viewChange.reset()
	r.probe = probeState{}
	r.syncing = false
	r.election.stop()
	r.clientTable.clearInProgress()
}
