package sim

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// The reconfiguration run's checks of what replicas commit and send.

// checkCommitted checks that every op is committed as the same entry
// everywhere, and follows the epochs the committed reconfigurations make: a
// reconfiguration request ends at most one epoch.
func (w *world) checkCommitted(slot int, entries []*messages.Entry) {
	for _, e := range entries {
		if prev, ok := w.committed[e.OpNumber]; ok {
			if !proto.Equal(prev, e) {
				w.fail("r%d committed op %d as (client %d, request %d); another replica committed (client %d, request %d)",
					slot, e.OpNumber, e.ClientId, e.RequestNumber, prev.ClientId, prev.RequestNumber)
			}
			continue
		}
		w.committed[e.OpNumber] = e
		if e.Reconfigure == nil {
			continue
		}
		for _, ep := range w.epochs[1:] {
			if ep.client == e.ClientId && ep.request == e.RequestNumber {
				w.fail("the reconfiguration (client %d, request %d) that began an epoch at op %d is in the log again at op %d",
					e.ClientId, e.RequestNumber, ep.op, e.OpNumber)
			}
		}
		w.epochs = append(w.epochs, epochRecord{members: e.Reconfigure.Members, op: e.OpNumber,
			client: e.ClientId, request: e.RequestNumber})
		w.trace.add(event{tick: w.now, what: "epoch", note: "op " + itoa(e.OpNumber)})
	}
	// Each replica's epoch, and the configuration it holds, must be one
	// that the committed log made.
	r := w.nodes[slot].r
	if r == nil || r.Status() == vsr.StatusJoining {
		return
	}
	e := r.Epoch()
	if r.Status() == vsr.StatusRecovering {
		return // it may know its epoch from the operator, ahead of what it has replayed
	}
	if e >= uint64(len(w.epochs)) {
		w.fail("r%d is in epoch %d, which no committed reconfiguration began", slot, e)
		return
	}
	if !slices.Equal(r.Members(), w.epochs[e].members) {
		w.fail("r%d holds %v as epoch %d's configuration, which is %v", slot, r.Members(), e, w.epochs[e].members)
	}
}

// checkSent checks each replica message against the epoch it is stamped
// with: the configuration of that epoch names its sender at the index it
// claims, and a vote comes from a replica that holds the state its epoch
// began with.
func (w *world) checkSent(slot int, r *vsr.Replica, msgs []vsr.Envelope) {
	for _, env := range msgs {
		var epoch uint64
		var from uint32
		switch m := env.Msg.(type) {
		case *messages.StartEpoch:
			epoch, from = m.SenderEpoch, m.Replica
		case *messages.Request:
			continue // forwarded from a client
		case interface {
			GetEpoch() uint64
			GetReplica() uint32
		}:
			epoch, from = m.GetEpoch(), m.GetReplica()
		default:
			continue
		}
		if epoch >= uint64(len(w.epochs)) {
			w.fail("r%d sent %T stamped epoch %d, which no committed reconfiguration began", slot, env.Msg, epoch)
			continue
		}
		members := w.epochs[epoch].members
		if int(from) >= len(members) || members[from] != nodeName(slot) {
			w.fail("r%d sent %T as member %d of epoch %d, whose configuration %v does not name it there",
				slot, env.Msg, from, epoch, members)
			continue
		}
		switch env.Msg.(type) {
		case *messages.PrepareOK, *messages.StartViewChange, *messages.DoViewChange, *messages.ViewChangeProbeOK,
			*messages.ConfirmViewOK, *messages.EpochStarted:
			if start := w.epochs[epoch].op; r.CommitNumber() < start {
				w.fail("r%d voted (%T) in epoch %d at commit number %d, before it held op %d, which began the epoch",
					slot, env.Msg, epoch, r.CommitNumber(), start)
			}
		}
	}
}

func itoa(v uint64) string { return string(appendUint(nil, v)) }

func appendUint(b []byte, v uint64) []byte {
	if v >= 10 {
		b = appendUint(b, v/10)
	}
	return append(b, byte('0'+v%10))
}
