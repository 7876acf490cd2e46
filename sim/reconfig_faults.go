package sim

import (
	"fmt"
	"slices"

	"github.com/vsrgo/vsr/vsr"
)

// The faults of a reconfiguration run, and its end: healing, then the wait
// for the group to converge in its last configuration.

// injectFaults crashes and restarts replicas and partitions the network.
func (w *world) injectFaults() {
	f := w.o.Faults
	if w.healAt > 0 && w.now >= w.healAt {
		w.healAt = 0
		clear(w.cut)
		w.trace.add(event{tick: w.now, what: "heal"})
	}
	for slot, n := range w.nodes {
		if n.r == nil && !n.left && n.restarts > 0 && w.now >= n.restarts {
			n.restarts = 0
			w.trace.add(event{tick: w.now, what: "restart", note: nodeName(slot)})
			w.boot(slot, !w.durable)
		}
	}
	if w.healAt == 0 && w.rng.Float64() < f.Partition {
		w.partition()
		w.healAt = w.now + 1 + w.rng.IntN(f.PartitionTicks)
	}
	if w.rng.Float64() < f.Crash*3 {
		w.crash()
	}
}

// crash stops a live replica. Without disks it never takes a
// configuration's count of down, recovering or joining members past f, for
// the latest two configurations and the one the operator asked for (during
// a change they all matter): beyond that, VR without disks may lawfully lose
// liveness or data.
func (w *world) crash() {
	slot := w.rng.IntN(len(w.nodes))
	n := w.nodes[slot]
	if n.r == nil || n.left {
		return
	}
	if !w.durable {
		configs := [][]string{w.admin.target} // the change asked for, if any, may commit any time
		for e := max(0, len(w.epochs)-2); e < len(w.epochs); e++ {
			configs = append(configs, w.epochs[e].members)
		}
		for _, members := range configs {
			if !slices.Contains(members, nodeName(slot)) {
				continue
			}
			down := 0
			for _, name := range members {
				// A member still joining holds no state yet: it counts
				// as down.
				m := w.nodes[slotOf(name)]
				if m.r == nil || m.r.Status() == vsr.StatusRecovering || m.r.Status() == vsr.StatusJoining {
					down++
				}
			}
			if down >= (len(members)-1)/2 {
				return
			}
		}
	}
	n.r = nil
	if n.store != nil {
		_ = n.store.Close()
		n.store = nil
	}
	n.restarts = w.now + 1 + w.rng.IntN(w.o.Faults.RestartTicks)
	w.stats.Faults["crash"]++
	w.trace.add(event{tick: w.now, what: "crash", note: nodeName(slot)})
}

// partition cuts the live nodes into two random sides, or cuts a few links
// one way.
func (w *world) partition() {
	if w.rng.IntN(2) == 0 {
		side := make([]int, len(w.nodes))
		for i := range side {
			side[i] = w.rng.IntN(2)
		}
		for a := range w.nodes {
			for b := range w.nodes {
				if side[a] != side[b] {
					w.cut[[2]int{a, b}] = true
				}
			}
		}
		w.stats.Faults["partition-symmetric"]++
		w.trace.add(event{tick: w.now, what: "partition", note: fmt.Sprint(side)})
		return
	}
	for k := 0; k < 1+w.rng.IntN(len(w.nodes)); k++ {
		a, b := w.rng.IntN(len(w.nodes)), w.rng.IntN(len(w.nodes))
		w.cut[[2]int{a, b}] = true
	}
	w.stats.Faults["partition-asymmetric"]++
	w.trace.add(event{tick: w.now, what: "partition", note: "asymmetric"})
}

// heal ends the faults: the network is reliable and whole, and crashed
// replicas restart.
func (w *world) heal() {
	w.faulty = false
	clear(w.cut)
	w.isolated = -1
	w.healAt = 0
	for slot, n := range w.nodes {
		if n.r == nil && !n.left {
			w.boot(slot, !w.durable)
		}
	}
	for _, cl := range w.clients {
		cl.budget = false
	}
	w.trace.add(event{tick: w.now, what: "healed", note: "faults stop"})
}

// awaitConverged runs until the operator's changes are done, every client
// is idle, the last configuration's members are normal in the last epoch
// with one state, and every removed member has left.
func (w *world) awaitConverged(limit int) error {
	deadline := w.now + limit
	for w.now < deadline && w.violation == nil {
		w.admin.step()
		w.tick()
		if w.converged() == nil {
			return nil
		}
	}
	if w.violation != nil {
		return w.violation
	}
	return fmt.Errorf("liveness: %d ticks after faults healed: %w", limit, w.converged())
}

func (w *world) converged() error {
	if !w.admin.idle() {
		return fmt.Errorf("the operator's reconfiguration to %v is not done", w.admin.target)
	}
	for _, cl := range w.clients {
		if cl.op >= 0 {
			return fmt.Errorf("client %d's operation started at t=%d is not done", cl.k, cl.since)
		}
	}
	last := len(w.epochs) - 1
	members := w.epochs[last].members
	var want []byte
	var first *vsr.Replica
	for _, name := range members {
		r := w.nodes[slotOf(name)].r
		if r == nil || r.Status() != vsr.StatusNormal || r.Epoch() != uint64(last) {
			return fmt.Errorf("%s is not normal in epoch %d", name, last)
		}
		if first == nil {
			first = r
		} else if r.View() != first.View() || r.CommitNumber() != first.CommitNumber() {
			return fmt.Errorf("%s at view %d commit %d, %s at view %d commit %d", name, r.View(), r.CommitNumber(),
				members[0], first.View(), first.CommitNumber())
		}
		snap, err := w.nodes[slotOf(name)].sm.Snapshot()
		if err != nil {
			return err
		}
		if want == nil {
			want = snap
		} else if string(snap) != string(want) {
			return fmt.Errorf("%s's state differs from %s's", name, members[0])
		}
	}
	for slot, n := range w.nodes {
		if !slices.Contains(members, nodeName(slot)) && !n.left && n.r != nil && n.r.Status() == vsr.StatusLeaving {
			return fmt.Errorf("%s, removed, has not left", nodeName(slot))
		}
		if e, ok := w.endedWithoutIt(slot, last); ok {
			return fmt.Errorf("%s, started to join epoch %d, which ended without it, has not left", nodeName(slot), e)
		}
	}
	return nil
}

// endedWithoutIt reports whether slot, started as a joiner, still waits, its
// configuration began an epoch that has ended, while a member of that
// configuration runs normal in the last epoch, last, which does not name
// it: that member answers its EpochQuery, so it must have left (the
// epoch it never heard of is e).
func (w *world) endedWithoutIt(slot, last int) (e int, ok bool) {
	n := w.nodes[slot]
	if !n.cfg.Joining || n.left || n.r == nil || n.r.Status() != vsr.StatusJoining ||
		slices.Contains(w.epochs[last].members, nodeName(slot)) {
		return 0, false
	}
	e = slices.IndexFunc(w.epochs[:last], func(r epochRecord) bool { return slices.Equal(r.members, n.cfg.Members) })
	if e < 0 || n.r.Epoch() > uint64(e) {
		// Never an epoch, or the replica has heard of a later one (it
		// restarted while it fetched that one's state): no EpochEnded
		// about its configuration applies to it.
		return 0, false
	}
	for _, name := range n.cfg.Members {
		if m := w.nodes[slotOf(name)]; name != nodeName(slot) && !m.left && m.r != nil &&
			m.r.Status() == vsr.StatusNormal && m.r.Epoch() == uint64(last) {
			return e, true
		}
	}
	return 0, false
}
