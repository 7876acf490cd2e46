package sim

import (
	"math/rand/v2"

	"github.com/vsrgo/vsr/messages"
)

// Batching. The replica actor steps whatever its mailbox holds as one batch
// (vsr.Replica.StepBatch), so the simulator does too: in two seeds in three,
// the packets due at a replica in one tick are handed to it in batches whose
// boundaries are drawn, from single messages to the whole tick's worth.
// Seeds drawn without batching step every message alone, as before.
//
// The draws come from a generator of their own, so that a seed drawn
// without batching replays exactly as it did before batching existed.

// batching is a seed's batching draw.
type batching struct {
	// join is the chance that a packet joins the batch before it rather
	// than starting a new one; 0 steps every message alone.
	join float64
	rng  *rand.Rand
}

func newBatching(seed uint64) batching {
	rng := rand.New(rand.NewPCG(seed, 0xba7c4ed))
	if rng.IntN(3) == 0 {
		return batching{}
	}
	return batching{join: rng.Float64(), rng: rng}
}

// isAck is a message whose only use to the oracle is as evidence that a
// primary heard its backups (oracle_quorum.go), and whose step can commit.
func isAck(m any) bool {
	switch m.(type) {
	case *messages.PrepareOK, *messages.ConfirmViewOK:
		return true
	}
	return false
}

// keepsRole is a message that cannot change its receiver's view or role:
// requests, and acknowledgements at a primary.
func keepsRole(m any) bool {
	_, isRequest := m.(*messages.Request)
	return isRequest || isAck(m)
}

// batches splits the packets due at one replica, in order, into the batches
// it steps: a packet joins the batch before it with the drawn chance, unless
// that would put an ack and a message that may change the role (a view
// change, a recovery, a state transfer) into one batch. The core handles
// such a batch correctly, but the oracle sees a replica only between steps:
// it notes an ack against the role its receiver had before the batch, and
// judges a commit (which an ack can make) against the role after it, so a
// primary that committed and then began a view change within one batch
// would look like a backup that committed first.
func (b batching) batches(due []packet) [][]packet {
	var out [][]packet
	var hasAck, roleMayChange bool
	for _, p := range due {
		ack, changes := isAck(p.msg), !keepsRole(p.msg)
		if n := len(out); n > 0 && b.join > 0 && b.rng.Float64() < b.join &&
			!(ack && roleMayChange) && !(changes && hasAck) {
			out[n-1] = append(out[n-1], p)
		} else {
			out = append(out, []packet{p})
			hasAck, roleMayChange = false, false
		}
		hasAck = hasAck || ack
		roleMayChange = roleMayChange || changes
	}
	return out
}
