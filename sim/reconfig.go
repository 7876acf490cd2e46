package sim

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/anishathalye/porcupine"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// Reconfiguration runs (docs/reconfiguration.md). A group starts with
// Options.Replicas members named r0, r1, ...; an operator's client asks for
// up to three reconfigurations while the network drops, duplicates, delays
// and partitions messages and members crash and restart: replace a member
// by a new one, grow a group of three to five, shrink five to three. New
// members are started before their change, as an operator would start them,
// and removed ones are stopped once they report that they have left. Names
// are never reused, so a name is one machine for the whole run.
//
// Beside the core's invariants, the agreement of every committed op, and the
// linearizability of the clients' history across epochs, the run checks what
// reconfiguration promises (reconfig_oracle.go): every replica message is
// stamped with an epoch whose configuration names its sender at the index it
// claims (so a removed member never takes part in a later epoch), no member
// votes before it holds the state its epoch began with, each epoch has one
// configuration, and each reconfiguration request ends at most one epoch.
// After the faults heal, every member of the last configuration must be
// normal in its last epoch with the same state, and every removed member
// must have left.
//
// The replicas in the seeds drawn durable keep an in-memory disk (what each
// output asked to be durable, kept before its messages are sent) and come
// back from it after a crash; the others restart empty and recover from
// their peers, never more than f of a configuration down at once.

// RunReconfig simulates one seed with reconfigurations.
func RunReconfig(o Options) (res Result) {
	res = Result{Options: o}
	if err := o.Validate(); err != nil {
		res.Violation = err
		return res
	}
	w := newWorld(o)
	res.History = w.history
	defer func() {
		if p := recover(); p != nil {
			w.trace.add(event{tick: w.now, what: "panic", note: string(debug.Stack())})
			w.fail("panic: %v", p)
			res.Violation, res.Stats, res.Trace = w.violation, w.stats, w.trace.lines()
		}
	}()
	for w.now < o.Ticks && w.violation == nil {
		w.injectFaults()
		w.admin.step()
		w.tick()
	}
	if w.violation == nil {
		w.heal()
		w.violation = w.awaitConverged(o.LivenessTicks)
	}
	res.Stats = w.stats
	if w.violation == nil {
		ok, result, info := w.history.Check(o.CheckTimeout)
		res.Linearizable = ok
		res.Inconclusive = !ok && result == porcupine.Unknown
		if !ok && !res.Inconclusive {
			w.violation = fmt.Errorf("the client history is not linearizable")
			res.linearization = &info
		}
	}
	res.Violation = w.violation
	if res.Violation != nil {
		res.Trace = w.trace.lines()
	}
	return res
}

// world is the group, its clients, the operator and the network, in one
// goroutine.
type world struct {
	o       Options
	rng     *rand.Rand
	now     int
	faulty  bool
	durable bool
	bugs    vsr.Bug
	nodes   []*rnode // by slot; a node's name is "r" + its slot
	// inflight[t] holds the packets due at tick t (mod its length).
	inflight [][]rpacket
	cut      map[[2]int]bool
	healAt   int
	clients  []*rclient
	admin    *operator
	history  *History
	trace    *trace
	stats    Stats
	// committed is every op anyone committed; epochs is each epoch's
	// configuration and the op of the reconfiguration that began it, as the
	// committed log says.
	committed map[uint64]*messages.Entry
	epochs    []epochRecord
	// isolated is a joiner cut off from everyone from its start until the
	// operator's next change, which removes it, is answered (or the faults
	// heal); -1 for none. It never hears of the epoch it was started for,
	// and must find out from its EpochQuery that the epoch has ended
	// without it.
	isolated  int
	violation error
	padding   int
}

type rnode struct {
	r        *vsr.Replica // nil while down
	sm       *recordingSM
	fs       *storage.MemFS // its disk, in seeds drawn durable
	store    *storage.FileStore
	cfg      vsr.Config // as the node was started
	restarts int        // tick it restarts at, while down
	left     bool       // stopped for good after it left the group
}

type rpacket struct {
	from, to int // slots; a client is clientBase + its index
	msg      proto.Message
}

type epochRecord struct {
	members []string
	op      uint64 // the reconfiguration that began it (0 for epoch 0)
	// client and request name that reconfiguration.
	client, request uint64
}

const maxDelayTicks = 8

func newWorld(o Options) *world {
	w := &world{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x7265636f6e666967)), faulty: true,
		bugs: o.Bugs, inflight: make([][]rpacket, maxDelayTicks+2), cut: map[[2]int]bool{},
		history: &History{}, trace: newTrace(o.TraceEvents), stats: Stats{Faults: map[string]int{}},
		committed: map[uint64]*messages.Entry{}, isolated: -1}
	w.durable = w.rng.Float64() < o.Faults.Durable
	w.padding = w.rng.IntN(2) * 3000
	members := make([]string, o.Replicas)
	for i := range members {
		members[i] = nodeName(i)
	}
	w.epochs = []epochRecord{{members: members}}
	for i := range members {
		w.startNode(members, i, false)
	}
	for k := 0; k < o.Clients; k++ {
		w.clients = append(w.clients, newRClient(w, k, members))
	}
	w.admin = newOperator(w, members)
	return w
}

func nodeName(slot int) string { return "r" + strconv.Itoa(slot) }

func slotOf(name string) int {
	if len(name) < 2 || name[0] != 'r' {
		return -1
	}
	k, err := strconv.Atoi(name[1:])
	if err != nil {
		return -1
	}
	return k
}

// startNode starts the next slot as member index of members: a founding
// member, or (joining) a new machine for a reconfiguration.
func (w *world) startNode(members []string, index int, joining bool) {
	slot := len(w.nodes)
	cfg := vsr.Config{ClusterID: clusterID, ReplicaCount: len(members), ReplicaIndex: index, Members: members,
		Joining: joining, Reconfigurable: true, CheckpointInterval: 8 + w.rng.IntN(40), TrailingOps: w.rng.IntN(8) - 1,
		MaxMessageBytes: vsr.MinMaxMessageBytes * (2 + w.rng.IntN(4))}
	n := &rnode{cfg: cfg}
	if w.durable {
		n.fs = storage.NewMemFS()
	}
	w.nodes = append(w.nodes, n)
	w.boot(slot, false)
}

// boot makes slot's replica: new, restarted from its disk, or (recovering)
// restarted empty with the configuration an operator would give it now.
func (w *world) boot(slot int, recovering bool) {
	n := w.nodes[slot]
	n.sm = newRecordingSM(w.padding)
	cfg := n.cfg
	cfg.StateMachine, cfg.Seed = n.sm, w.rng.Uint64()
	var r *vsr.Replica
	var err error
	var st storage.State
	if n.fs != nil {
		if st, err = w.openDisk(slot); err != nil {
			w.fail("r%d: opening its disk: %v", slot, err)
			return
		}
	}
	switch {
	case recovering:
		// It recovers in the latest epoch whose configuration names it,
		// as an operator would restart it; a node that was never a member
		// yet starts to join again.
		for e := len(w.epochs) - 1; e >= 0; e-- {
			if j := slices.Index(w.epochs[e].members, nodeName(slot)); j >= 0 {
				cfg.Members, cfg.ReplicaCount, cfg.ReplicaIndex, cfg.Epoch = w.epochs[e].members, len(w.epochs[e].members), j, uint64(e)
				cfg.Recovering, cfg.Joining = true, false
				break
			}
		}
		r, err = newReplica(cfg, w.bugs)
	case n.fs != nil && !st.IsNew():
		var out vsr.Output
		r, out, err = vsr.Restart(cfg, storage.DurableStateOf(st))
		if err == nil {
			injectBugs(r, w.bugs)
			n.r = r
			w.stats.Faults["restart-from-disk"]++
			w.process(slot, out)
			return
		}
	default:
		r, err = newReplica(cfg, w.bugs)
	}
	if err != nil {
		w.fail("r%d: start: %v", slot, err)
		return
	}
	n.r = r
}

// fail records the first violation.
func (w *world) fail(format string, args ...any) {
	if w.violation == nil {
		w.violation = fmt.Errorf("t=%d: %s", w.now, fmt.Sprintf(format, args...))
		w.trace.add(event{tick: w.now, what: "VIOLATION", note: w.violation.Error()})
	}
}

// tick advances time: replicas tick, due packets are delivered, clients act.
func (w *world) tick() {
	w.now++
	w.stats.Ticks++
	for slot, n := range w.nodes {
		if n.r != nil {
			w.process(slot, n.r.Tick())
		}
	}
	due := w.inflight[w.now%len(w.inflight)]
	w.inflight[w.now%len(w.inflight)] = nil
	w.rng.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	for _, p := range due {
		w.deliver(p)
	}
	for _, cl := range w.clients {
		cl.tick()
	}
}

// send puts a packet in flight, through this run's faults.
func (w *world) send(from, to int, msg proto.Message) {
	if w.isolated >= 0 && (from == w.isolated || to == w.isolated) {
		w.stats.Faults["joiner-isolated-drop"]++
		return
	}
	if w.faulty && from < int(clientBase) && to < int(clientBase) && w.cut[[2]int{from, to}] {
		w.stats.Faults["partition-drop"]++
		return
	}
	copies := 1
	if w.faulty {
		if w.rng.Float64() < w.o.Faults.Drop/2 {
			w.stats.Faults["drop"]++
			return
		}
		if w.rng.Float64() < w.o.Faults.Duplicate/2 {
			w.stats.Faults["duplicate"]++
			copies = 2
		}
	}
	for range copies {
		delay := 1
		if w.faulty {
			delay += w.rng.IntN(maxDelayTicks)
		}
		slot := (w.now + delay) % len(w.inflight)
		w.inflight[slot] = append(w.inflight[slot], rpacket{from: from, to: to, msg: msg})
	}
}

func (w *world) deliver(p rpacket) {
	if p.to >= int(clientBase) {
		k := p.to - int(clientBase)
		rep := p.msg.(*messages.Reply)
		w.trace.add(event{tick: w.now, what: "deliver", from: node(p.from), to: node(p.to), msg: p.msg})
		if k == adminClient {
			w.admin.onReply(rep)
		} else if k < len(w.clients) {
			w.clients[k].onReply(rep)
		}
		return
	}
	if p.to >= len(w.nodes) {
		return
	}
	n := w.nodes[p.to]
	if n.r == nil {
		return
	}
	w.stats.Delivered++
	w.trace.add(event{tick: w.now, what: "deliver", from: node(p.from), to: node(p.to), msg: p.msg})
	w.process(p.to, n.r.Step(p.msg))
}

// process checks a replica after a step and carries out its output.
func (w *world) process(slot int, out vsr.Output) {
	n := w.nodes[slot]
	r := n.r
	if err := r.CheckInvariants(); err != nil {
		w.fail("r%d invariant: %v", slot, err)
	}
	if err := n.sm.err; err != nil {
		w.fail("r%d: %v", slot, err)
	}
	if n.store != nil {
		// Durable before anything is sent: the actor layer's order.
		if err := storage.WriteChanges(n.store, []storage.Change{storage.ChangeOf(out)}); err != nil {
			w.fail("r%d: writing to its disk: %v", slot, err)
		}
	}
	w.checkCommitted(slot, out.Committed)
	w.checkSent(slot, r, out.Messages)
	for _, env := range out.Messages {
		to := slotOf(env.Member)
		if to < 0 || env.Member == "" {
			w.fail("r%d sent %T to %q, which names no replica", slot, env.Msg, env.Member)
			continue
		}
		w.send(slot, to, env.Msg)
	}
	for _, rep := range out.Replies {
		k, ok := w.clientOf(rep.To)
		if !ok {
			w.fail("r%d replied to unknown address %v", slot, rep.To)
			continue
		}
		w.send(slot, int(clientBase)+k, rep.Reply)
	}
	if out.Left {
		w.trace.add(event{tick: w.now, what: "left", note: nodeName(slot)})
		n.r, n.left = nil, true
		if n.store != nil {
			_ = n.store.Close()
			n.store = nil
		}
		return
	}
	if job := out.Checkpoint; job != nil {
		res := job.Run()
		if n.store != nil && res.Err == nil {
			head, state := res.Parts()
			if err := n.store.SaveCheckpoint(storage.Checkpoint{OpNumber: res.OpNumber, Head: head, State: state}); err != nil {
				w.fail("r%d: saving a checkpoint: %v", slot, err)
			}
		}
		w.stats.Checkpoints++
		w.process(slot, r.CheckpointDone(res))
	}
}

const adminClient = 999

func (w *world) clientOf(a *messages.ClientAddress) (int, bool) {
	if a == nil || a.Address != "sim" {
		return 0, false
	}
	k, err := strconv.Atoi(a.Id)
	return k, err == nil && (k == adminClient || (k >= 0 && k < len(w.clients)))
}

// openDisk opens slot's store on its disk, under the identity the node was
// first started with.
func (w *world) openDisk(slot int) (storage.State, error) {
	n := w.nodes[slot]
	id := storage.Identity{ClusterID: clusterID, ReplicaIndex: n.cfg.ReplicaIndex, ReplicaCount: n.cfg.ReplicaCount}
	store, err := storage.Open(n.fs, diskDir, id, storeOptions(w.bugs))
	if err != nil {
		return storage.State{}, err
	}
	st, err := store.Load()
	if err != nil {
		_ = store.Close()
		return storage.State{}, err
	}
	n.store = store
	return st, nil
}
