package sim

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// The replayer is the network at its most adversarial within VR's model,
// where messages may be duplicated and delayed without bound: it delivers
// again a copy of a message delivered long ago, chosen to be as confusing as
// the model allows. For each replica and message kind it keeps messages of
// each of the last few views (sent, whether delivered or not), and it
// replays to a replica only a message of another view than the one the
// replica is in: a PrepareOK or a
// ConfirmViewOK of an earlier view of the same primary, a StartView of a
// view the replica has left, a RecoveryResponse to an earlier recovery. Such
// a message is legal, and only the checks against views, nonces and rounds
// keep it harmless. Holding messages back (Faults.Hold) delays the one copy;
// replaying sends a second one after the first has done its work.

// replayKeys is how many views (nonces, for recovery answers) of each kind
// the archive keeps per replica, and replayPerKey how many messages of each:
// the first ones and the latest.
const (
	replayKeys   = 6
	replayPerKey = 16
)

// archived is the messages of one kind and one view (or nonce) sent to a
// replica.
type archived struct {
	key, view uint64
	packets   []packet
}

// replayArchive is, per destination replica, the archived messages of each
// kind, in the order the kinds were first seen (a slice, not a map, so that
// replays are the same on every run of a seed).
type replayArchive struct {
	byReplica [][]kindArchive
	// nonce is each replica's current recovery nonce, from the Recovery it
	// last sent: an answer with another one is stale.
	nonce []uint64
}

type kindArchive struct {
	kind protoreflect.FullName
	keys []archived // oldest first
}

// viewed is a message that names a view.
type viewed interface{ GetView() uint64 }

func newReplayArchive(n int) *replayArchive {
	return &replayArchive{byReplica: make([][]kindArchive, n), nonce: make([]uint64, n)}
}

// keep archives a message a replica sent to another replica, when it was
// sent: whether the network then lost it or not, VR's model lets a copy
// arrive at any later time.
func (a *replayArchive) keep(p packet) {
	if p.from.isClient() || p.to.isClient() {
		return
	}
	if m, ok := p.msg.(*messages.Recovery); ok {
		a.nonce[p.from] = m.Nonce
	}
	var view uint64
	if v, ok := p.msg.(viewed); ok {
		view = v.GetView()
	}
	key := view
	if m, ok := p.msg.(*messages.RecoveryResponse); ok {
		key = m.Nonce
	}
	kind := p.msg.ProtoReflect().Descriptor().FullName()
	kinds := a.byReplica[p.to]
	k := 0
	for k < len(kinds) && kinds[k].kind != kind {
		k++
	}
	if k == len(kinds) {
		a.byReplica[p.to] = append(kinds, kindArchive{kind: kind})
		kinds = a.byReplica[p.to]
	}
	keys := kinds[k].keys
	if last := len(keys) - 1; last >= 0 && keys[last].key == key {
		if len(keys[last].packets) < replayPerKey {
			keys[last].packets = append(keys[last].packets, p)
		} else {
			keys[last].packets[replayPerKey-1] = p
		}
		return
	}
	if len(keys) == replayKeys {
		keys = append(keys[:0], keys[1:]...)
	}
	kinds[k].keys = append(keys, archived{key: key, view: view, packets: []packet{p}})
}

// stale lists the archived messages of one kind to replica i that belong to
// another view than its own, or, for recovery answers, to another recovery.
func (a *replayArchive) stale(i int, ka kindArchive, view uint64) []packet {
	var out []packet
	for _, g := range ka.keys {
		if ka.kind == recoveryResponseKind && g.key != a.nonce[i] || ka.kind != recoveryResponseKind && g.view != view {
			out = append(out, g.packets...)
		}
	}
	return out
}

var recoveryResponseKind = (&messages.RecoveryResponse{}).ProtoReflect().Descriptor().FullName()

// replay sends a replica again an archived message of another view than its
// own (or of another recovery). Half the time the replica and the message
// are chosen where a stale message can do the most harm: a recovering
// replica gets an answer to an earlier recovery, a primary gets an earlier
// view's acknowledgement of ops it has not committed, or read
// confirmations of an earlier view.
func (inj *injector) replay() {
	c := inj.c
	to, aimed := c.rng.IntN(c.n), c.rng.IntN(2) == 0
	if aimed {
		if v := inj.vulnerable(); v >= 0 {
			to = v
		}
	}
	r := c.replicas[to]
	kinds := c.archive.byReplica[to]
	if r == nil || c.paused[to] || len(kinds) == 0 {
		return
	}
	ka := kinds[c.rng.IntN(len(kinds))]
	if aimed {
		ka = inj.aimKind(to, kinds, ka)
	}
	stale := c.archive.stale(to, ka, r.View())
	if len(stale) == 0 {
		return
	}
	picked := []packet{stale[c.rng.IntN(len(stale))]}
	if aimed && ka.kind == prepareOKKind {
		// Every acknowledgement of an op this primary has not committed yet.
		var open []packet
		for _, q := range stale {
			if k := q.msg.(*messages.PrepareOK).OpNumber; k > r.CommitNumber() && k <= r.OpNumber() {
				open = append(open, q)
			}
		}
		if len(open) > 0 {
			picked = open
		}
	}
	for _, p := range picked {
		c.stats.Faults["replay"]++
		c.trace.add(event{tick: c.now, what: "replay", from: p.from, to: p.to, msg: p.msg,
			note: fmt.Sprintf("r%d in view %d", to, r.View())})
		c.net.send(p.from, p.to, proto.Clone(p.msg), true)
	}
}

var (
	prepareOKKind     = (&messages.PrepareOK{}).ProtoReflect().Descriptor().FullName()
	confirmViewOKKind = (&messages.ConfirmViewOK{}).ProtoReflect().Descriptor().FullName()
)

// vulnerable picks a replica a stale message can hurt: one recovering, or
// a primary (above all one a later view has deposed), or -1.
func (inj *injector) vulnerable() int {
	c := inj.c
	var recovering, primaries []int
	for i, r := range c.replicas {
		switch {
		case r == nil || c.paused[i]:
		case r.Status() == vsr.StatusRecovering:
			recovering = append(recovering, i)
		case r.IsPrimary():
			primaries = append(primaries, i)
		}
	}
	pool := append(recovering, primaries...)
	if len(pool) == 0 {
		return -1
	}
	return pool[c.rng.IntN(len(pool))]
}

// aimKind picks the kind of stale message that can hurt replica i.
func (inj *injector) aimKind(i int, kinds []kindArchive, fallback kindArchive) kindArchive {
	c := inj.c
	want := []protoreflect.FullName{prepareOKKind, confirmViewOKKind}
	if c.replicas[i].Status() == vsr.StatusRecovering {
		want = []protoreflect.FullName{recoveryResponseKind}
	}
	kind := want[c.rng.IntN(len(want))]
	for _, ka := range kinds {
		if ka.kind == kind {
			return ka
		}
	}
	return fallback
}
