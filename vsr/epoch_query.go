package vsr

import (
	"slices"

	"github.com/vsrgo/vsr/messages"
)

// A replica started to join a configuration learns of its epoch from
// StartEpoch, which the members send while the change is recent. One that
// was cut off for the whole of its change, and then removed by a later
// change, would never hear from anyone again: it is in no configuration
// that anyone sends to. So while it has heard of no epoch, it asks the other
// members of its configuration every heartbeat (EpochQuery), and a member
// that remembers the configuration as an epoch that has ended, and whose
// own configuration does not name the asker, says so (EpochEnded). The
// asker never held state and never voted: it leaves at once.
//
// The answer is trusted only from a member of the asker's own
// configuration, which the transport authenticates by name (SenderOf), and
// only when it names that very configuration. A configuration reused
// exactly, with the same names in the same order, could make a replica
// started for its second use leave early; it then leaves, which costs the
// group a member but never a vote.

// queryEpoch asks the other members of the configuration this joining
// replica was started with whether its epoch has come and gone.
func (r *Replica) queryEpoch() {
	if r.status != StatusJoining || r.change.started != nil {
		return
	}
	q := &messages.EpochQuery{ClusterId: r.cfg.ClusterID, Members: r.members, Replica: uint32(r.index)}
	for j := range r.members {
		if j != r.index {
			r.send(j, q)
		}
	}
}

// onEpochQuery answers a joining replica whose configuration was an epoch
// that has ended without it.
func (r *Replica) onEpochQuery(m *messages.EpochQuery) {
	if r.status != StatusNormal && r.status != StatusViewChange {
		return
	}
	if validMembers(m.Members) != nil || int(m.Replica) >= len(m.Members) {
		r.drop(DropMalformed)
		return
	}
	asker, k := m.Members[m.Replica], slices.Index(m.Members, r.self)
	if k < 0 || k == int(m.Replica) || slices.Contains(r.members, asker) {
		// Not asked as a member of that configuration, or the asker is a
		// member now: this epoch's StartEpoch reaches it.
		return
	}
	for _, c := range r.recent {
		if c.epoch < r.epoch && slices.Equal(c.members, m.Members) {
			r.sendTo(asker, &messages.EpochEnded{ClusterId: r.cfg.ClusterID, Epoch: c.epoch, CurrentEpoch: r.epoch,
				Replica: uint32(k), Members: m.Members, CurrentMembers: r.members})
			return
		}
	}
}

// onEpochEnded makes a joining replica whose epoch has ended without it
// leave: it holds nothing and never voted, so nothing waits for it.
func (r *Replica) onEpochEnded(m *messages.EpochEnded) {
	if r.status != StatusJoining || r.change.started != nil || m.Epoch < r.epoch {
		// A replica restarted while it fetched a later epoch's state waits
		// for that epoch's StartEpoch; its epoch never goes back.
		return
	}
	if !slices.Equal(m.Members, r.members) || int(m.Replica) >= r.n || int(m.Replica) == r.index ||
		m.Epoch >= m.CurrentEpoch || validMembers(m.CurrentMembers) != nil || slices.Contains(m.CurrentMembers, r.self) {
		r.drop(DropMalformed)
		return
	}
	// It was a member of epoch m.Epoch, as its configuration says, and the
	// group has gone on to m.CurrentEpoch without it.
	r.epoch = m.Epoch
	r.change = epochChange{next: m.CurrentMembers, nextEpoch: m.CurrentEpoch, started: make([]bool, len(m.CurrentMembers))}
	r.dropRole(StatusLeaving)
	r.left, r.out.Left = true, true
}
