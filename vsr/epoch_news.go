package vsr

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// News of epochs (docs/reconfiguration.md, "Messages from other epochs"):
// StartEpoch tells a replica that an epoch began and how, EpochStarted that a
// member of it holds the state it began with. A replica that missed a change,
// by one epoch or several, learns of it here and catches up; a joiner learns
// which epoch it joins; a replica that is leaving learns when it may stop.

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
	if j < 0 && r.change.started != nil && m.Epoch > r.epoch && m.SenderEpoch == m.Epoch {
		// The group reconfigured again, without this replica, before it
		// held the state of the epoch it was joining. It never voted there,
		// and nothing waits for it: it leaves as a member that missed the
		// change does (skipToEpoch), once the new epoch holds the state.
		r.skipToEpoch(m)
		return
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

// SenderOf names the member that replica message m says it comes from, as
// this replica would attribute it, so that a transport can check the name
// against the address the message arrived from before the replica acts on
// it. A StartEpoch names its sender in the configuration it carries; any
// other message by its (epoch, replica) pair, in the current configuration,
// the one being joined or left, or a recent past one. known is false when
// the replica cannot attribute m (an epoch it has not heard of, an index
// past the configuration's end, a message that is not a replica's): it then
// acts on m in no way, and drops it if stepped. SenderOf changes nothing.
func (r *Replica) SenderOf(m proto.Message) (name string, known bool) {
	var members []string
	var j uint32
	switch m := m.(type) {
	case *messages.StartEpoch:
		name = startEpochSender(m)
		return name, name != ""
	case *messages.EpochQuery:
		// The asker names itself; onEpochQuery checks the rest.
		if int(m.Replica) < len(m.Members) {
			return m.Members[m.Replica], true
		}
		return "", false
	case *messages.EpochEnded:
		if r.status == StatusJoining {
			j, members = m.Replica, r.members
		}
	case *messages.EpochStarted:
		j = m.Replica
		switch {
		case m.Epoch == r.epoch:
			members = r.members
		case r.status == StatusLeaving && m.Epoch == r.change.nextEpoch:
			members = r.change.next
		}
	case replicaMessage:
		j = m.GetReplica()
		switch e := m.GetEpoch(); {
		case e == r.epoch:
			members = r.members
		case e < r.epoch:
			members = r.pastMembers(e)
		}
	}
	if int(j) >= len(members) {
		return "", false
	}
	return members[j], true
}
