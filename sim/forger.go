package sim

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// forger is a Byzantine-ish peer: it sends replicas well-formed messages with
// extreme fields. It knows the group's current view and primary (it may be a
// member with a corrupt memory, or a stranger that listened), so its messages
// look as if they came from the right replica in the right view, but every
// one carries at least one number no honest replica could send: a view or op
// number near the top of the range, a commit number far past any log, a
// round no primary started, or a sender index that is not the sender's.
// Safety must hold, and the honest quorum must stay live (liveness.go),
// whatever it sends. It does not forge plausible messages (a Prepare of the
// current view with made-up entries): VR trusts its peers, and no protocol
// without signatures survives those.
type forger struct {
	c *Cluster
}

func newForger(c *Cluster) *forger { return &forger{c: c} }

// maxNumber mirrors the core's bound on every number a message carries.
const maxNumber = 1 << 62

// extreme is a number near the top of the admitted range, or just past it.
func (fg *forger) extreme() uint64 {
	switch fg.c.rng.IntN(4) {
	case 0:
		return maxNumber
	case 1:
		return maxNumber + 1 + uint64(fg.c.rng.IntN(1000))
	default:
		return maxNumber - uint64(fg.c.rng.IntN(1<<30))
	}
}

// forge sends one forged message to a random live replica.
func (fg *forger) forge() {
	c := fg.c
	if c.n == 1 {
		return // no peer to pretend to be
	}
	to := c.rng.IntN(c.n)
	if c.replicas[to] == nil || c.paused[to] {
		return
	}
	view, primary := uint64(0), 0
	for _, r := range c.replicas {
		if r != nil && r.View() >= view {
			view = r.View()
		}
	}
	primary = int(view % uint64(c.n))
	if primary == to {
		primary = (to + 1) % c.n
	}
	m := fg.message(to, view, primary)
	c.stats.Faults["forged"]++
	c.trace.add(event{tick: c.now, what: "forge", to: node(to), msg: m, note: fmt.Sprintf("%T", m)})
	c.net.send(node((to+1)%c.n), node(to), m, false)
}

// message builds a forged message for replica to, in the group's view view,
// claiming to come from sender (the primary of view unless the kind says
// otherwise).
func (fg *forger) message(to int, view uint64, sender int) proto.Message {
	c := fg.c
	x := fg.extreme()
	rep := uint32(sender)
	other := uint32((to + 1 + c.rng.IntN(c.n-1)) % c.n) // someone else, not the primary as a rule
	entry := func(op uint64) *messages.Entry {
		return &messages.Entry{OpNumber: op, View: view, ClientId: 9999, RequestNumber: 1, Operation: []byte("forged")}
	}
	switch c.rng.IntN(16) {
	case 0: // a view change to a view near the top of the range
		return &messages.StartViewChange{ClusterId: clusterID, View: x, Replica: rep}
	case 1:
		return &messages.StartViewChange{ClusterId: clusterID, View: x, Replica: other}
	case 2:
		return &messages.ViewChangeProbe{ClusterId: clusterID, View: x, Replica: other}
	case 3:
		return &messages.ViewChangeProbeOK{ClusterId: clusterID, View: x, Replica: other}
	case 4:
		return &messages.DoViewChange{ClusterId: clusterID, View: x, LastNormalView: x - 1, OpNumber: x,
			CommitNumber: x - 1, Entries: []*messages.Entry{entry(x)}, Replica: other}
	case 5:
		return &messages.StartView{ClusterId: clusterID, View: x, OpNumber: x, CommitNumber: x - 1,
			Entries: []*messages.Entry{entry(x)}, Replica: uint32(x % uint64(c.n))}
	case 6: // the primary's heartbeat, with a commit number past any log
		return &messages.Commit{ClusterId: clusterID, View: view, CommitNumber: x, Replica: rep}
	case 7: // a Prepare of the current view for ops near the top of the range
		return &messages.Prepare{ClusterId: clusterID, View: view, CommitNumber: x - 1,
			Entries: []*messages.Entry{entry(x)}, Replica: rep}
	case 8: // a later view's heartbeat
		return &messages.Commit{ClusterId: clusterID, View: x, CommitNumber: x, Replica: uint32(x % uint64(c.n))}
	case 9: // a Commit from a replica that is not the primary
		return &messages.Commit{ClusterId: clusterID, View: view, CommitNumber: c.committedOps(), Replica: other}
	case 10: // an acknowledgement of ops no log holds
		return &messages.PrepareOK{ClusterId: clusterID, View: view, OpNumber: x, Replica: other}
	case 11: // a read confirmation for a round no primary started
		return &messages.ConfirmViewOK{ClusterId: clusterID, View: view, Round: x, Replica: other}
	case 12:
		return &messages.ConfirmView{ClusterId: clusterID, View: view, Round: x, Replica: other}
	case 13: // state requests for ops no one holds
		return &messages.GetState{ClusterId: clusterID, View: view, OpNumber: x, Replica: other,
			CommittedOnly: c.rng.IntN(2) == 0}
	case 14: // a sender index outside the configuration
		return &messages.StartViewChange{ClusterId: clusterID, View: view + 1, Replica: uint32(c.n + c.rng.IntN(200))}
	default: // a recovery answer to a nonce no one chose
		return &messages.RecoveryResponse{ClusterId: clusterID, View: x, Nonce: c.rng.Uint64(), OpNumber: x,
			CommitNumber: x, Replica: rep, FromPrimary: true}
	}
}

// committedOps is the highest op number any replica committed.
func (c *Cluster) committedOps() uint64 {
	var k uint64
	for _, r := range c.replicas {
		if r != nil {
			k = max(k, r.CommitNumber())
		}
	}
	return k
}
