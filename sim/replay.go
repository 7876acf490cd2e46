package sim

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The replayer is the network at its most adversarial within VR's model,
// where messages may be duplicated and delayed without bound: it delivers
// again a copy of a message delivered long ago, chosen to be as confusing as
// the model allows. For each replica and message kind it keeps the last
// message of each of the last few views, and it replays to a replica only a
// message of another view than the one the replica is in: a PrepareOK or a
// ConfirmViewOK of an earlier view of the same primary, a StartView of a
// view the replica has left, a RecoveryResponse to an earlier recovery. Such
// a message is legal, and only the checks against views, nonces and rounds
// keep it harmless. Holding messages back (Faults.Hold) delays the one copy;
// replaying sends a second one after the first has done its work.

// replayViews is how many views of each kind the archive keeps per replica.
const replayViews = 6

type archived struct {
	view uint64
	p    packet
}

// replayArchive is, per destination replica, the archived messages of each
// kind, in the order the kinds were first seen (a slice, not a map, so that
// replays are the same on every run of a seed).
type replayArchive struct {
	byReplica [][]kindArchive
}

type kindArchive struct {
	kind  protoreflect.FullName
	views []archived // oldest first, one per view
}

// viewed is a message that names a view.
type viewed interface{ GetView() uint64 }

func newReplayArchive(n int) *replayArchive {
	return &replayArchive{byReplica: make([][]kindArchive, n)}
}

// keep archives a message delivered to a replica from another replica: the
// latest of its kind and view replaces an earlier one.
func (a *replayArchive) keep(p packet) {
	if p.from.isClient() || p.to.isClient() {
		return
	}
	var view uint64
	if v, ok := p.msg.(viewed); ok {
		view = v.GetView()
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
	views := kinds[k].views
	if last := len(views) - 1; last >= 0 && views[last].view == view {
		views[last].p = p
		return
	}
	if len(views) == replayViews {
		views = append(views[:0], views[1:]...)
	}
	kinds[k].views = append(views, archived{view: view, p: p})
}

// replay sends again, to a random live replica, an archived message of
// another view than the replica's own, if it has one.
func (inj *injector) replay() {
	c := inj.c
	to := c.rng.IntN(c.n)
	r := c.replicas[to]
	kinds := c.archive.byReplica[to]
	if r == nil || c.paused[to] || len(kinds) == 0 {
		return
	}
	views := kinds[c.rng.IntN(len(kinds))].views
	var stale []archived
	for _, a := range views {
		if a.view != r.View() {
			stale = append(stale, a)
		}
	}
	if len(stale) == 0 {
		return
	}
	a := stale[c.rng.IntN(len(stale))]
	c.stats.Faults["replay"]++
	c.trace.add(event{tick: c.now, what: "replay", from: a.p.from, to: a.p.to, msg: a.p.msg,
		note: fmt.Sprintf("of view %d, r%d in view %d", a.view, to, r.View())})
	c.net.send(a.p.from, a.p.to, proto.Clone(a.p.msg), true)
}
