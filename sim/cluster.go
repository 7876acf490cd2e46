package sim

import (
	"fmt"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// Cluster is n replicas, their clients and the network between them, all in
// one goroutine and driven by one seeded source. The random driver (Run)
// and scripted scenario tests both use it.
type Cluster struct {
	n, f     int
	rng      *rand.Rand
	faults   Faults // this run's rates
	maxBatch int    // this run's Prepare batch limit: small ones stress retransmission
	bounds   historyBounds
	// jobs are checkpoints being encoded, each finished after a drawn delay
	// as the actor layer finishes them on another goroutine.
	jobs     []checkpointJob
	bugs     vsr.Bug
	replicas []*vsr.Replica // nil while crashed
	paused   []bool         // a paused replica neither ticks nor receives, like a stopped process
	stores   []*recordingSM
	net      *network
	clients  []*client
	// writePeriod, when not zero, is how often the open-loop writers (the
	// clients marked writer) start a write, whatever happened to the last
	// ones: reads and view changes do not slow the stream of writes.
	writePeriod int
	history     *History
	trace       *trace
	now         int
	// faulty is false once faults have healed: the network is then reliable.
	faulty bool

	committed map[uint64]*messages.Entry // every op anyone committed, by op number
	liveness  *livenessMonitor
	oracle    *oracle
	archive   *replayArchive // messages delivered, for replays (Faults.Replay)
	// durable is set in seeds whose replicas keep disks (disk.go);
	// syncTicks is the longest a step's output then waits for its sync.
	durable   bool
	batching  batching // how due messages are grouped into StepBatch calls
	disks     []*simDisk
	syncTicks int
	stats     Stats
	violation error
}

// Stats counts what happened in a run.
type Stats struct {
	Ticks     int
	Delivered int
	// Batches counts the StepBatch calls of more than one message.
	Batches    int
	OpsInvoked int
	OpsOK      int
	// OpsUnknown is the operations whose outcome the client never learned.
	OpsUnknown int
	Faults     map[string]int
	// Checkpoints counts checkpoints encoded, Installed checkpoints fetched
	// from a peer in chunks, and MaxMessage is the largest message sent, in
	// bytes.
	Checkpoints int
	Installed   int
	MaxMessage  int
	// Watched counts the operations started while a quorum was stable, which
	// the liveness-under-faults check judged; LongestWatched is the longest
	// one took, in ticks.
	Watched        int
	LongestWatched int
}

const clusterID = 0x5eed

// newCluster builds a group of n replicas, all normal in view 0.
func newCluster(seed uint64, n, clients, keys, traceEvents int, faults Faults, bugs vsr.Bug) (*Cluster, error) {
	if n < 1 || n%2 == 0 {
		return nil, fmt.Errorf("sim: %w: got %d", vsr.ErrReplicaCount, n)
	}
	c := &Cluster{
		n: n, f: (n - 1) / 2,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		bugs:      bugs,
		replicas:  make([]*vsr.Replica, n),
		paused:    make([]bool, n),
		stores:    make([]*recordingSM, n),
		history:   &History{},
		trace:     newTrace(traceEvents),
		faulty:    true,
		committed: map[uint64]*messages.Entry{},
		stats:     Stats{Faults: map[string]int{}},
	}
	c.faults = faults.draw(c.rng.Float64)
	c.batching = newBatching(seed)
	c.maxBatch = []int{1, 2, 4, vsr.DefaultMaxBatch}[c.rng.IntN(4)]
	writers := 0
	if clients > 1 && c.rng.IntN(3) > 0 {
		writers, c.writePeriod = 8+c.rng.IntN(9), 1+c.rng.IntN(2)
	}
	c.bounds = drawHistoryBounds(c.rng, clients+writers)
	c.net = newNetwork(c.rng, n, &c.faults, &c.stats)
	c.liveness = newLivenessMonitor(c)
	c.oracle = newOracle(c)
	c.archive = newReplayArchive(n)
	// A group of one commits an op in the step that appends it, before
	// its disk has it (its reply waits for the disk, so no client can tell),
	// which the oracle would count as a committed op lost to a crash: groups
	// of one run without disks.
	if c.rng.Float64() < c.faults.Durable && n > 1 {
		c.durable, c.syncTicks = true, c.rng.IntN(4)
		for i := 0; i < n; i++ {
			c.disks = append(c.disks, &simDisk{fs: storage.NewMemFS(), syncAt: -1})
		}
	}
	for i := 0; i < n; i++ {
		if err := c.start(i, false); err != nil {
			return nil, err
		}
	}
	for k := 0; k < clients+writers; k++ {
		cl, err := newClient(c, k, keys)
		if err != nil {
			return nil, err
		}
		cl.writer = k >= clients
		c.clients = append(c.clients, cl)
	}
	return c, nil
}

// start makes replica i: new, or restarted. Without disks a restarted
// replica is empty and recovers; with disks it comes back from its disk,
// and recovering says the disk was wiped.
func (c *Cluster) start(i int, recovering bool) error {
	var r *vsr.Replica
	var store *recordingSM
	var err error
	if c.durable {
		r, store, err = c.startFromDisk(i, recovering)
	} else {
		store = newRecordingSM(c.bounds.padding)
		r, err = newReplica(c.replicaConfig(i, store, recovering), c.bugs)
	}
	if err != nil {
		return err
	}
	c.replicas[i], c.stores[i] = r, store
	c.oracle.recovering[i] = r.Status() == vsr.StatusRecovering
	c.oracle.witnesses[i] = quorumWitness{} // a new incarnation: what reached the old one counts for nothing
	return nil
}

// replicaConfig is replica i's configuration in this run.
func (c *Cluster) replicaConfig(i int, store *recordingSM, recovering bool) vsr.Config {
	h := c.bounds
	return vsr.Config{
		ClusterID: clusterID, ReplicaCount: c.n, ReplicaIndex: i, StateMachine: store,
		Seed: c.rng.Uint64(), Recovering: recovering, MaxBatch: c.maxBatch,
		CheckpointInterval: h.checkpointInterval, TrailingOps: h.trailingOps, PipelineMax: h.pipelineMax,
		MaxMessageBytes: h.maxMessageBytes, SessionIdleOps: h.sessionIdleOps, MaxSessions: h.maxSessions,
	}
}

// fail records the first safety violation; the run stops at the end of the
// tick.
func (c *Cluster) fail(format string, args ...any) {
	if c.violation == nil {
		c.violation = fmt.Errorf("t=%d: %s", c.now, fmt.Sprintf(format, args...))
		c.trace.add(event{tick: c.now, what: "VIOLATION", note: c.violation.Error()})
	}
}

// tick advances simulated time by one tick: replicas tick (some miss it, as
// drifting clocks do), due messages are delivered, clients act.
func (c *Cluster) tick() {
	c.now++
	c.net.now = c.now
	c.stats.Ticks++
	for i, r := range c.replicas {
		if r == nil || c.paused[i] || (c.faulty && c.rng.Float64() < c.faults.ClockSkew) {
			continue
		}
		c.process(i, r.Tick())
	}
	c.finishCheckpoints()
	c.deliverDue(c.net.takeDue())
	if c.durable {
		c.flushDisks()
	}
	for _, cl := range c.clients {
		cl.tick()
	}
	c.oracle.checkDurable()
	if c.writePeriod > 0 && c.faulty && c.now%c.writePeriod == 0 {
		c.startOpenLoopWrite()
	}
}

// startOpenLoopWrite starts a put on an idle writer; when every writer is
// busy the write is skipped, as a client with a full queue would shed it.
func (c *Cluster) startOpenLoopWrite() {
	start := c.rng.IntN(len(c.clients))
	for k := range c.clients {
		cl := c.clients[(start+k)%len(c.clients)]
		if cl.writer && cl.op < 0 {
			cl.startWrite()
			return
		}
	}
	c.stats.Faults["open-loop-skipped"]++
}

// deliverDue delivers the packets due this tick: one at a time, or, in
// seeds drawn with batching, grouped per replica into batches (batching.go).
func (c *Cluster) deliverDue(due []packet) {
	if c.batching.join == 0 {
		for _, p := range due {
			c.deliver(p)
		}
		return
	}
	perReplica := make([][]packet, c.n)
	var order []int
	for _, p := range due {
		if p.to.isClient() {
			c.deliver(p)
			continue
		}
		if len(perReplica[p.to]) == 0 {
			order = append(order, int(p.to))
		}
		perReplica[p.to] = append(perReplica[p.to], p)
	}
	for _, i := range order {
		for _, b := range c.batching.batches(perReplica[i]) {
			c.deliverBatch(i, b)
		}
	}
}

// deliverBatch hands packets that arrived together to replica i in one
// StepBatch.
func (c *Cluster) deliverBatch(i int, batch []packet) {
	if len(batch) == 1 {
		c.deliver(batch[0])
		return
	}
	r := c.replicas[i]
	if r == nil || c.paused[i] {
		return // crashed or stopped: the messages are lost
	}
	ms := make([]proto.Message, len(batch))
	for k, p := range batch {
		c.stats.Delivered++
		c.trace.add(event{tick: c.now, what: "deliver", from: p.from, to: p.to, msg: p.msg})
		c.oracle.delivered(i, p.from, p.msg)
		ms[k] = p.msg
	}
	c.stats.Batches++
	c.process(i, r.StepBatch(ms))
}

// deliver hands a packet to its replica or client.
func (c *Cluster) deliver(p packet) {
	if p.to.isClient() {
		c.trace.add(event{tick: c.now, what: "deliver", from: p.from, to: p.to, msg: p.msg})
		c.clients[p.to-clientBase].onReply(p.msg.(*messages.Reply))
		return
	}
	r := c.replicas[p.to]
	if r == nil || c.paused[p.to] {
		return // crashed or stopped: the message is lost
	}
	c.stats.Delivered++
	c.trace.add(event{tick: c.now, what: "deliver", from: p.from, to: p.to, msg: p.msg})
	c.oracle.delivered(int(p.to), p.from, p.msg)
	c.process(int(p.to), r.Step(p.msg))
}

// process checks a replica after a step and carries out its output.
func (c *Cluster) process(i int, out vsr.Output) {
	r := c.replicas[i]
	if err := r.CheckInvariants(); err != nil {
		c.fail("replica %d invariant: %v", i, err)
	}
	if err := c.stores[i].err; err != nil {
		c.fail("replica %d: %v", i, err)
	}
	for _, e := range out.Committed {
		if prev, ok := c.committed[e.OpNumber]; !ok {
			c.committed[e.OpNumber] = e
		} else if !proto.Equal(prev, e) {
			c.fail("replica %d committed op %d as (client %d, request %d); another replica committed (client %d, request %d)",
				i, e.OpNumber, e.ClientId, e.RequestNumber, prev.ClientId, prev.RequestNumber)
		}
	}
	c.oracle.afterStep(i, out)
	if out.Checkpoint != nil {
		c.jobs = append(c.jobs, checkpointJob{replica: i, r: r, due: c.now + c.rng.IntN(c.bounds.maxJobTicks+1), job: out.Checkpoint})
	}
	if !c.durable {
		c.sendOutput(i, out.Messages, out.Replies)
		return
	}
	c.persist(i, out)
}

// sendOutput sends replica i's messages and replies.
func (c *Cluster) sendOutput(i int, msgs []vsr.Envelope, replies []vsr.ClientReply) {
	for _, env := range msgs {
		if c.durable {
			c.disks[i].notePromise(env.Msg)
		}
		c.checkSize(i, env.Msg)
		if c.faults.Replay > 0 && c.faulty {
			c.archive.keep(packet{from: node(i), to: node(env.To), msg: env.Msg})
		}
		c.net.send(node(i), node(env.To), env.Msg, c.faulty)
	}
	for _, rep := range replies {
		c.checkSize(i, rep.Reply)
		k, ok := clientIndex(rep.To, len(c.clients))
		if !ok {
			c.fail("replica %d replied to unknown address %v", i, rep.To)
			continue
		}
		c.net.send(node(i), clientBase+node(k), rep.Reply, c.faulty)
	}
}

// Crash stops replica i; it loses everything it had but what its disk
// holds, if it keeps one.
func (c *Cluster) Crash(i int) {
	c.countInstalls(i)
	if c.durable {
		c.crashDisk(i, c.diskFaultAllowed(i))
	}
	c.replicas[i], c.stores[i] = nil, nil
	c.stats.Faults["crash"]++
	c.trace.add(event{tick: c.now, what: "crash", note: fmt.Sprintf("r%d", i)})
}

// Pause stops replica i without losing its state, as SIGSTOP would: it
// neither ticks nor receives until Resume.
func (c *Cluster) Pause(i int) {
	c.paused[i] = true
	c.trace.add(event{tick: c.now, what: "pause", note: fmt.Sprintf("r%d", i)})
}

// Resume undoes Pause.
func (c *Cluster) Resume(i int) {
	c.paused[i] = false
	c.trace.add(event{tick: c.now, what: "resume", note: fmt.Sprintf("r%d", i)})
}

// Restart brings crashed replica i back, empty, in recovering status.
func (c *Cluster) Restart(i int) error {
	if c.replicas[i] != nil {
		return fmt.Errorf("sim: replica %d is not down", i)
	}
	c.trace.add(event{tick: c.now, what: "restart", note: fmt.Sprintf("r%d", i)})
	if !c.durable {
		return c.start(i, true)
	}
	wiped := false
	if c.diskFaultAllowed(i) {
		wiped = c.damageDisk(i)
	}
	return c.start(i, wiped)
}

// down counts the replicas that are crashed or still recovering: the ones
// that count against f.
func (c *Cluster) down() int {
	d := 0
	for _, r := range c.replicas {
		if r == nil || r.Status() == vsr.StatusRecovering {
			d++
		}
	}
	return d
}

// Partition replaces the network's links: replicas in the same group reach
// each other, replicas in different groups don't (both ways).
func (c *Cluster) Partition(groups ...[]int) {
	c.net.heal()
	group := make([]int, c.n)
	for g, members := range groups {
		for _, i := range members {
			group[i] = g + 1
		}
	}
	for a := 0; a < c.n; a++ {
		for b := 0; b < c.n; b++ {
			if a != b && group[a] != group[b] {
				c.net.cut(a, b)
			}
		}
	}
	c.trace.add(event{tick: c.now, what: "partition", note: fmt.Sprint(groups)})
}

// Heal restores every link.
func (c *Cluster) Heal() {
	c.net.heal()
	c.trace.add(event{tick: c.now, what: "heal"})
}

// Primary returns the replica that is normal and primary in the highest
// view, or -1.
func (c *Cluster) Primary() int {
	best := -1
	for i, r := range c.replicas {
		if r != nil && r.IsPrimary() && (best < 0 || r.View() > c.replicas[best].View()) {
			best = i
		}
	}
	return best
}

// Replica returns replica i, or nil while it is down.
func (c *Cluster) Replica(i int) *vsr.Replica { return c.replicas[i] }

// checkConverged reports whether every replica is up, normal in one view,
// with the same commit number and the same state.
func (c *Cluster) checkConverged() error {
	var want []byte
	for i, r := range c.replicas {
		if r == nil || r.Status() != vsr.StatusNormal {
			return fmt.Errorf("replica %d is not up and normal", i)
		}
		first := c.replicas[0]
		if r.View() != first.View() || r.CommitNumber() != first.CommitNumber() {
			return fmt.Errorf("replica %d at view %d commit %d, replica 0 at view %d commit %d",
				i, r.View(), r.CommitNumber(), first.View(), first.CommitNumber())
		}
		snap, err := c.stores[i].Snapshot()
		if err != nil {
			return err
		}
		if i == 0 {
			want = snap
		} else if string(snap) != string(want) {
			return fmt.Errorf("replica %d state differs from replica 0 at commit %d", i, r.CommitNumber())
		}
	}
	return nil
}

// recordingSM is the kv store, watched: every write the workload makes is
// unique (its value names the client and request), so a write applied twice
// in one replica's life is a request executed twice.
//
// Its snapshots carry padding bytes after the store's, so that with a small
// MaxMessageBytes a checkpoint of the simulator's few keys still needs
// several chunks.
type recordingSM struct {
	*kv.Store
	applied map[string]bool
	err     error
	padding int
}

func newRecordingSM(padding int) *recordingSM {
	return &recordingSM{Store: kv.NewStore(), applied: map[string]bool{}, padding: padding}
}

// Snapshot is the store's snapshot, then the padding, then the store
// snapshot's length in 4 bytes.
func (s *recordingSM) Snapshot() ([]byte, error) {
	snap, err := s.Store.Snapshot()
	if err != nil {
		return nil, err
	}
	n := len(snap)
	snap = append(snap, make([]byte, s.padding)...)
	return append(snap, byte(n>>24), byte(n>>16), byte(n>>8), byte(n)), nil
}

// Checkpoint captures the snapshot at once: the simulator runs in one
// goroutine, so nothing runs concurrently with Apply here.
func (s *recordingSM) Checkpoint() func() ([]byte, error) {
	snap, err := s.Snapshot()
	return func() ([]byte, error) { return snap, err }
}

// Restore undoes Snapshot's framing.
func (s *recordingSM) Restore(b []byte) error {
	if len(b) < 4 {
		return kv.ErrBadSnapshot
	}
	n := int(b[len(b)-4])<<24 | int(b[len(b)-3])<<16 | int(b[len(b)-2])<<8 | int(b[len(b)-1])
	if n < 0 || n+s.padding+4 != len(b) {
		return kv.ErrBadSnapshot
	}
	return s.Store.Restore(b[:n])
}

func (s *recordingSM) Apply(op []byte) []byte {
	if !s.ReadOnly(op) {
		if s.applied[string(op)] && s.err == nil {
			s.err = fmt.Errorf("a request was executed twice: op %x", op)
		}
		s.applied[string(op)] = true
	}
	return s.Store.Apply(op)
}

// countInstalls adds replica i's checkpoint installs to the run's count.
func (c *Cluster) countInstalls(i int) {
	if r := c.replicas[i]; r != nil {
		_, installed := r.CheckpointStats()
		c.stats.Installed += int(installed)
	}
}
