package sim

import (
	"math/rand/v2"

	"google.golang.org/protobuf/proto"
)

// node addresses a replica (0..n-1) or a client (clientBase+k) on the
// simulated network.
type node int

const clientBase node = 1000

func (a node) isClient() bool { return a >= clientBase }

// packet is a message in flight.
type packet struct {
	from, to node
	msg      proto.Message
}

// network holds the messages in flight, each due at a tick. It delays,
// reorders, drops, duplicates and partitions, all drawn from the
// simulation's one seeded source.
type network struct {
	rng *rand.Rand
	// due[t % len(due)] holds the packets due at tick t.
	due   [][]packet
	now   int
	links [][]bool // links[a][b] false: a cannot reach replica b (partition)
	// held are replica messages held back far longer than any delay, each
	// delivered at its tick (Faults.Hold).
	held  []heldPacket
	mix   *Faults
	stats *Stats
}

type heldPacket struct {
	due int
	p   packet
}

func newNetwork(rng *rand.Rand, n int, mix *Faults, stats *Stats) *network {
	nw := &network{rng: rng, due: make([][]packet, mix.MaxDelay+2), mix: mix, stats: stats}
	nw.links = make([][]bool, n)
	for a := range nw.links {
		nw.links[a] = make([]bool, n)
		for b := range nw.links[a] {
			nw.links[a][b] = true
		}
	}
	return nw
}

// send puts a message in flight, subject to the fault mix. Partitions cut
// replica-to-replica links only; clients reach every replica, but their
// messages are dropped, delayed and duplicated like any other.
func (nw *network) send(from, to node, msg proto.Message, faulty bool) {
	if !from.isClient() && !to.isClient() && !nw.links[from][to] {
		nw.stats.Faults["partition-drop"]++
		return
	}
	copies := 1
	if faulty {
		if nw.rng.Float64() < nw.mix.Drop {
			nw.stats.Faults["drop"]++
			return
		}
		if nw.rng.Float64() < nw.mix.Duplicate {
			nw.stats.Faults["duplicate"]++
			copies = 2
		}
	}
	if faulty && !from.isClient() && !to.isClient() && nw.mix.Hold > 0 && nw.rng.Float64() < nw.mix.Hold {
		nw.stats.Faults["hold"]++
		due := nw.now + nw.mix.MaxDelay + 1 + nw.rng.IntN(nw.mix.HoldTicks)
		nw.held = append(nw.held, heldPacket{due: due, p: packet{from: from, to: to, msg: msg}})
		return
	}
	for c := 0; c < copies; c++ {
		delay := 1
		if faulty && nw.mix.MaxDelay > 1 {
			delay += nw.rng.IntN(nw.mix.MaxDelay)
		}
		slot := (nw.now + delay) % len(nw.due)
		nw.due[slot] = append(nw.due[slot], packet{from: from, to: to, msg: msg})
	}
}

// takeDue removes and returns the packets due now, shuffled: messages due at
// the same tick arrive in any order.
func (nw *network) takeDue() []packet {
	slot := nw.now % len(nw.due)
	batch := nw.due[slot]
	nw.due[slot] = nil
	kept := nw.held[:0]
	for _, h := range nw.held {
		if h.due <= nw.now {
			batch = append(batch, h.p)
		} else {
			kept = append(kept, h)
		}
	}
	nw.held = kept
	nw.rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	return batch
}

// heal restores every link.
func (nw *network) heal() {
	for a := range nw.links {
		for b := range nw.links[a] {
			nw.links[a][b] = true
		}
	}
}

// cut removes the link from a to b.
func (nw *network) cut(a, b int) { nw.links[a][b] = false }

// restore puts back the link from a to b.
func (nw *network) restore(a, b int) { nw.links[a][b] = true }
