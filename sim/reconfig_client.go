package sim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// rclient is a client of a reconfiguration run: the vsr client core, which
// follows the group from configuration to configuration by the replies it
// gets, and a workload of puts and reads on a few keys.
type rclient struct {
	w      *world
	k      int
	core   *vsr.Client
	op     int // history id of the operation in flight, or -1
	input  Input
	since  int
	budget bool
}

func newRClient(w *world, k int, members []string) *rclient {
	core, err := vsr.NewClient(vsr.ClientConfig{ClusterID: clusterID, ClientID: uint64(k + 1),
		ReplicaCount: len(members), Members: members,
		ReplyTo: &messages.ClientAddress{Address: "sim", Id: strconv.Itoa(k)}, RetryTicks: retryTicks})
	if err != nil {
		w.fail("client %d: %v", k, err)
	}
	return &rclient{w: w, k: k, core: core, op: -1, budget: true}
}

func (cl *rclient) tick() {
	w := cl.w
	if cl.op >= 0 {
		if w.faulty && w.now-cl.since > giveUpTicks {
			cl.core.Cancel()
			cl.op = -1
			w.stats.OpsUnknown++
		} else {
			cl.send(cl.core.Tick())
		}
		return
	}
	if !cl.budget || w.rng.Float64() >= startChance {
		return
	}
	key := "k" + strconv.Itoa(w.rng.IntN(w.o.Keys))
	var op []byte
	mode := messages.ReadMode_READ_MODE_LOG
	switch x := w.rng.IntN(10); {
	case x < 5:
		cl.input = Input{Kind: OpPut, Key: key, Value: fmt.Sprintf("c%d.%d", cl.k, cl.core.RequestNumber()+1)}
		op = kv.PutOp(key, []byte(cl.input.Value))
	case x < 8:
		cl.input = Input{Kind: OpGet, Key: key}
		op, mode = kv.GetOp(key), messages.ReadMode_READ_MODE_LINEARIZABLE
	default:
		cl.input = Input{Kind: OpGet, Key: key}
		op = kv.GetOp(key)
	}
	out, err := cl.core.Submit(op, mode)
	if err != nil {
		w.fail("client %d: %v", cl.k, err)
		return
	}
	cl.since = w.now
	cl.op = w.history.Invoke(cl.k, cl.input, int64(w.now))
	w.stats.OpsInvoked++
	cl.send(out)
}

// send addresses the core's messages by the member names they carry.
func (cl *rclient) send(out vsr.ClientOutput) {
	for _, env := range out.Messages {
		if to := slotOf(env.Member); to >= 0 {
			cl.w.send(int(clientBase)+cl.k, to, env.Msg)
		}
	}
}

func (cl *rclient) onReply(m *messages.Reply) {
	w := cl.w
	out := cl.core.Step(m)
	cl.send(out)
	if out.Done == nil || cl.op < 0 {
		return
	}
	if errors.Is(out.Done.Err, vsr.ErrSessionExpired) {
		cl.op = -1
		w.stats.OpsUnknown++
		return
	}
	if out.Done.Err != nil {
		w.fail("client %d: request %d refused: %v", cl.k, out.Done.RequestNumber, out.Done.Err)
		return
	}
	res, err := kv.DecodeResult(out.Done.Value)
	if err != nil || res.Error != "" {
		w.fail("client %d: bad result %v %v", cl.k, err, res.GetError())
		return
	}
	w.history.Complete(cl.op, Output{Found: res.Found, Value: string(res.Value)}, int64(w.now))
	w.stats.OpsOK++
	cl.op = -1
}

// operator asks for the run's reconfigurations, one at a time, through a
// client core of its own: it starts the new members, submits the change,
// and retries it until it is answered (it never gives up, so every change
// completes once the faults heal).
type operator struct {
	w      *world
	core   *vsr.Client
	target []string // the configuration asked for, until answered
	left   int      // changes still to make
	next   int      // tick of the next change
}

func newOperator(w *world, members []string) *operator {
	core, err := vsr.NewClient(vsr.ClientConfig{ClusterID: clusterID, ClientID: adminClient + 1,
		ReplicaCount: len(members), Members: members,
		ReplyTo: &messages.ClientAddress{Address: "sim", Id: strconv.Itoa(adminClient)}, RetryTicks: retryTicks})
	if err != nil {
		w.fail("operator: %v", err)
	}
	return &operator{w: w, core: core, left: 1 + w.rng.IntN(3), next: 50 + w.rng.IntN(w.o.Ticks/3+1)}
}

func (op *operator) idle() bool { return op.target == nil }

func (op *operator) step() {
	w := op.w
	if op.target != nil {
		op.send(op.core.Tick())
		return
	}
	if op.left == 0 || w.now < op.next || !w.faulty {
		return
	}
	cur := w.epochs[len(w.epochs)-1].members
	next := slices.Clone(cur)
	kind := w.rng.IntN(3)
	isolate := false
	switch {
	case w.isolated >= 0 && slices.Contains(cur, nodeName(w.isolated)):
		// The joiner cut off during the last change is replaced before it
		// ever heard of it.
		next[slices.Index(next, nodeName(w.isolated))] = nodeName(len(w.nodes))
		w.stats.Faults["reconfigure-remove-isolated-joiner"]++
	case w.isolated < 0 && kind == 0 && op.left >= 2 && w.rng.IntN(3) == 0:
		next[w.rng.IntN(len(next))] = nodeName(len(w.nodes))
		isolate = true
		w.stats.Faults["reconfigure-replace-isolated-joiner"]++
	case kind == 1 && len(cur) == 3:
		next = append(next, nodeName(len(w.nodes)), nodeName(len(w.nodes)+1))
		w.stats.Faults["reconfigure-grow"]++
	case kind == 2 && len(cur) == 5:
		for range 2 {
			k := w.rng.IntN(len(next))
			next = slices.Delete(next, k, k+1)
		}
		w.stats.Faults["reconfigure-shrink"]++
	default:
		next[w.rng.IntN(len(next))] = nodeName(len(w.nodes))
		w.stats.Faults["reconfigure-replace"]++
	}
	w.rng.Shuffle(len(next), func(i, j int) { next[i], next[j] = next[j], next[i] })
	if !w.durable && op.unavailable(next) > (len(next)-1)/2 {
		// Without disks a member that is down or recovering has lost its
		// state: an operator does not make a configuration in which those
		// and the new members, who hold nothing yet, are more than f.
		op.next = w.now + 50
		return
	}
	op.left--
	op.next = w.now + 100 + w.rng.IntN(w.o.Ticks/3+1)
	// New machines, started before the change in the order of their
	// names, which are their slots.
	for _, name := range slices.Sorted(slices.Values(next)) {
		if slotOf(name) >= len(w.nodes) {
			if slotOf(name) != len(w.nodes) {
				w.fail("operator: new member %s is not the next slot %d", name, len(w.nodes))
				return
			}
			w.startNode(next, slices.Index(next, name), true)
			if isolate {
				w.isolated = slotOf(name)
			}
		}
	}
	op.target = next
	w.trace.add(event{tick: w.now, what: "reconfigure", note: fmt.Sprint(cur, " -> ", next)})
	out, err := op.core.Reconfigure(next)
	if err != nil {
		w.fail("operator: %v", err)
		return
	}
	op.send(out)
}

func (op *operator) send(out vsr.ClientOutput) {
	for _, env := range out.Messages {
		if to := slotOf(env.Member); to >= 0 {
			op.w.send(int(clientBase)+adminClient, to, env.Msg)
		}
	}
}

func (op *operator) onReply(m *messages.Reply) {
	out := op.core.Step(m)
	op.send(out)
	if out.Done == nil {
		return
	}
	switch {
	case errors.Is(out.Done.Err, vsr.ErrSessionExpired):
		// A replica that did not know the operator's session refused it
		// (a primary restarted from an old disk, say); the change may or
		// may not have run. Asking again is safe: the request names the
		// epoch it changes, so a second copy cannot change a later one.
		op.w.stats.Faults["reconfigure-retried"]++
		op.resubmit()
		return
	case out.Done.Err != nil && slices.Equal(op.core.Members(), op.target):
		// The first copy ran; the second found the change made.
	case out.Done.Err != nil:
		op.w.fail("operator: the reconfiguration to %v was refused: %v (%s)", op.target, out.Done.Err, out.Done.Value)
		return
	}
	op.w.trace.add(event{tick: op.w.now, what: "reconfigured", note: fmt.Sprint(op.target)})
	if i := op.w.isolated; i >= 0 && !slices.Contains(op.target, nodeName(i)) {
		op.w.isolated = -1 // removed before it heard of its epoch: it may hear from the others now
	}
	op.target = nil
}

// unavailable counts the members of a configuration that hold no state now:
// new ones, and those down, recovering or joining.
func (op *operator) unavailable(members []string) int {
	count := 0
	for _, name := range members {
		slot := slotOf(name)
		if slot >= len(op.w.nodes) {
			count++
			continue
		}
		r := op.w.nodes[slot].r
		if r == nil || r.Status() == vsr.StatusRecovering || r.Status() == vsr.StatusJoining {
			count++
		}
	}
	return count
}

// resubmit asks for the operator's target configuration again.
func (op *operator) resubmit() {
	out, err := op.core.Reconfigure(op.target)
	if err != nil {
		op.w.fail("operator: %v", err)
		return
	}
	op.send(out)
}
