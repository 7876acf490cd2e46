package sim

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// Disks (in seeds drawn durable): each replica keeps its log, hard state and
// checkpoints in the real storage engine (storage.FileStore) over a
// simulated disk (storage.MemFS), behind a model of the actor layer's
// persister: a step's output waits, with every step queued after it, until
// a group write and sync a few ticks later, and only then do its messages
// leave. A crash loses what was queued; within the fault budget it also
// tears the write under way, and a restart may find a record corrupted, a
// file missing or the whole disk gone. Never more than f replicas carry a
// disk fault at once: past that a group may lawfully lose data.
//
// The disk also checks, from outside the core, that a replica restarted
// from an intact disk still backs every promise it made before the crash:
// its view is at least the highest it voted or acknowledged in, and in the
// view of its last PrepareOK its log reaches that op (promisesKept).

// simDisk is one replica's disk and the persister in front of it.
type simDisk struct {
	fs      *storage.MemFS
	store   *storage.FileStore // nil while the replica is down
	pending []pendingStep
	syncAt  int // the tick at which pending steps are written; -1: none
	// faulty is set when a fault was injected into this disk, until the
	// disk records that the replica is no longer recovering.
	faulty bool
	// The promises the replica's sent messages made: the highest view it
	// voted or acknowledged in, and its latest PrepareOK.
	votedView      uint64
	ackView, ackOp uint64
}

// pendingStep is a step's output waiting for its durable change.
type pendingStep struct {
	change   storage.Change
	messages []vsr.Envelope
	replies  []vsr.ClientReply
}

const diskDir = "/vsr"

// errPowerCut fails the write a crash interrupts.
var errPowerCut = errors.New("sim: power cut")

// simStoreOptions configures every simulated store: small segments, so
// that runs rotate and compact them.
var simStoreOptions = storage.Options{SegmentBytes: 64 << 10}

// storeOptions gives the options of a run's stores; builds tagged vsrbugs
// replace it to inject a storage defect.
var storeOptions = func(vsr.Bug) storage.Options { return simStoreOptions }

// openDisk opens replica i's store on its disk.
func (c *Cluster) openDisk(i int) (storage.State, error) {
	d := c.disks[i]
	id := storage.Identity{ClusterID: clusterID, ReplicaIndex: i, ReplicaCount: c.n}
	store, err := storage.Open(d.fs, diskDir, id, storeOptions(c.bugs))
	if err != nil {
		return storage.State{}, err
	}
	st, err := store.Load()
	if err != nil {
		_ = store.Close()
		return storage.State{}, err
	}
	d.store, d.pending, d.syncAt = store, nil, -1
	return st, nil
}

// startFromDisk makes replica i from its disk: new if the disk holds
// nothing, recovering if the disk was wiped, otherwise restarted from what
// the disk holds.
func (c *Cluster) startFromDisk(i int, wiped bool) (*vsr.Replica, *recordingSM, error) {
	st, err := c.openDisk(i)
	if err != nil {
		return nil, nil, fmt.Errorf("replica %d: opening its disk: %w", i, err)
	}
	store := newRecordingSM(c.bounds.padding)
	cfg := c.replicaConfig(i, store, wiped)
	if st.IsNew() {
		r, err := newReplica(cfg, c.bugs)
		return r, store, err
	}
	if st.Damage != nil {
		c.stats.Faults["restart-damaged"]++
		c.trace.add(event{tick: c.now, what: "damage", note: fmt.Sprintf("r%d: %v", i, st.Damage)})
	}
	r, out, err := vsr.Restart(cfg, storage.DurableStateOf(st))
	if err != nil {
		return nil, nil, fmt.Errorf("replica %d: restarting from its disk: %w", i, err)
	}
	if err := storage.WriteChanges(c.disks[i].store, []storage.Change{storage.ChangeOf(out)}); err != nil {
		return nil, nil, fmt.Errorf("replica %d: writing its restart: %w", i, err)
	}
	if st.Damage == nil && !c.disks[i].faulty {
		c.checkPromisesKept(i, st, r)
	}
	c.checkLoadedCommitted(i, st)
	if r.Status() != vsr.StatusRecovering {
		c.disks[i].faulty = false // a torn write that was cut off: nothing was lost
	}
	if r.Status() != vsr.StatusRecovering {
		c.stats.Faults["restart-from-disk"]++
	}
	return r, store, nil
}

// persist queues a step's output behind replica i's disk. A step with
// nothing durable, while nothing is queued, sends at once, as the actor
// layer does.
func (c *Cluster) persist(i int, out vsr.Output) {
	d := c.disks[i]
	change := storage.ChangeOf(out)
	msgs := c.sendBeforeDurable(i, out.Messages)
	if change.IsEmpty() && len(d.pending) == 0 {
		c.sendOutput(i, msgs, out.Replies)
		return
	}
	d.pending = append(d.pending, pendingStep{change: change, messages: msgs, replies: out.Replies})
	if d.syncAt < 0 {
		d.syncAt = c.now + c.rng.IntN(c.syncTicks+1)
	}
}

// sendBeforeDurable is where two injected bugs act: they send acks, or view
// votes, at once, before the change they rest on is durable. It returns the
// messages left to send once it is.
func (c *Cluster) sendBeforeDurable(i int, msgs []vsr.Envelope) []vsr.Envelope {
	if c.bugs&(vsr.BugAckBeforeDurable|vsr.BugVoteBeforeDurable) == 0 {
		return msgs
	}
	var early, later []vsr.Envelope
	for _, env := range msgs {
		switch env.Msg.(type) {
		case *messages.PrepareOK:
			if c.bugs&vsr.BugAckBeforeDurable != 0 {
				early = append(early, env)
				continue
			}
		case *messages.StartViewChange, *messages.DoViewChange:
			if c.bugs&vsr.BugVoteBeforeDurable != 0 {
				early = append(early, env)
				continue
			}
		}
		later = append(later, env)
	}
	c.sendOutput(i, early, nil)
	return later
}

// flushDisks writes the queued steps of every disk whose sync is due, and
// then sends their messages.
func (c *Cluster) flushDisks() {
	for i, d := range c.disks {
		if d.syncAt >= 0 && d.syncAt <= c.now && c.replicas[i] != nil && !c.paused[i] {
			c.flushDisk(i)
		}
	}
}

func (c *Cluster) flushDisk(i int) {
	d := c.disks[i]
	steps := d.pending
	d.pending, d.syncAt = nil, -1
	if err := storage.WriteChanges(d.store, changesOf(steps)); err != nil {
		c.fail("replica %d: its disk failed a write: %v", i, err)
		return
	}
	for _, s := range steps {
		if hs := s.change.Batch.HardState; hs != nil && !hs.Recovering {
			// The end of its recovery is durable: the fault is repaired.
			// Until then a crash would make it recover again, so it still
			// counts against f.
			d.faulty = false
		}
	}
	for _, s := range steps {
		c.sendOutput(i, s.messages, s.replies)
	}
}

func changesOf(steps []pendingStep) []storage.Change {
	changes := make([]storage.Change, len(steps))
	for k, s := range steps {
		changes[k] = s.change
	}
	return changes
}

// crashDisk loses what replica i had queued. With torn set, the queued
// write was under way when the power went: part of it may reach the disk,
// torn. Either way the page cache is lost (MemFS.Crash): a write the store
// never synced is gone.
func (c *Cluster) crashDisk(i int, torn bool) {
	d := c.disks[i]
	if d.store == nil {
		return
	}
	if torn && len(d.pending) > 0 {
		d.fs.FailWritesAfter(1+c.rng.IntN(4), errPowerCut)
		_ = storage.WriteChanges(d.store, changesOf(d.pending))
		d.fs.FailWrites(nil)
		c.markFaulty(i, "disk-torn-write")
	}
	d.fs.Crash(c.rng)
	_ = d.store.Close()
	d.store, d.pending, d.syncAt = nil, nil, -1
}

// damageDisk injects a fault into replica i's disk at rest, between its
// crash and its restart, and reports whether it wiped the disk.
func (c *Cluster) damageDisk(i int) (wiped bool) {
	d := c.disks[i]
	switch c.rng.IntN(3) {
	case 0:
		// Three times in four the newest segment, where the live log is;
		// otherwise any segment or checkpoint.
		match := isLogOrCheckpoint
		if newest := newestSegment(d.fs); newest != "" && c.rng.IntN(4) > 0 {
			match = func(name string) bool { return name == newest }
		}
		if name, off, ok := d.fs.CorruptRandom(c.rng, match); ok {
			c.markFaulty(i, "disk-corrupt")
			c.trace.add(event{tick: c.now, what: "corrupt", note: fmt.Sprintf("r%d %s@%d", i, name, off)})
		}
	case 1:
		var names []string
		for name := range d.fs.Files() {
			if isLogOrCheckpoint(name) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			slices.Sort(names) // map order would break replay
			name := names[c.rng.IntN(len(names))]
			_ = d.fs.RemoveFile(name)
			c.markFaulty(i, "disk-missing-file")
			c.trace.add(event{tick: c.now, what: "remove", note: fmt.Sprintf("r%d %s", i, name)})
		}
	default:
		d.fs.Wipe()
		c.markFaulty(i, "disk-wiped")
		return true
	}
	return false
}

// isLogOrCheckpoint tells the files a fault may hit: the small identity file
// written once at format time is left alone (its loss needs the operator,
// who restarts the node to recover from its peers).
func isLogOrCheckpoint(name string) bool {
	return strings.HasSuffix(name, ".log") || strings.HasSuffix(name, ".ckpt")
}

// diskFaultAllowed draws whether replica i's disk takes a fault now: only
// in the safety phase, at the seed's rate, and while fewer than f replicas
// carry one (or i already does).
func (c *Cluster) diskFaultAllowed(i int) bool {
	return c.faulty && c.f > 0 && (c.disks[i].faulty || c.faultyDisks() < c.f) && c.rng.Float64() < c.faults.DiskFault
}

// newestSegment is the name of the newest WAL segment on fs, or "".
func newestSegment(fs *storage.MemFS) string {
	newest := ""
	for name := range fs.Files() {
		if strings.HasSuffix(name, ".log") && name > newest {
			newest = name
		}
	}
	return newest
}

func (c *Cluster) markFaulty(i int, kind string) {
	d := c.disks[i]
	d.faulty = true
	d.votedView, d.ackView, d.ackOp = 0, 0, 0 // the disk no longer backs them; recovery does
	c.stats.Faults[kind]++
}

// faultyDisks counts the replicas whose disk carries a fault.
func (c *Cluster) faultyDisks() int {
	k := 0
	for _, d := range c.disks {
		if d.faulty {
			k++
		}
	}
	return k
}

// notePromise records what a message replica i really sent promises.
func (d *simDisk) notePromise(m any) {
	switch m := m.(type) {
	case *messages.StartViewChange:
		d.votedView = max(d.votedView, m.View)
	case *messages.DoViewChange:
		d.votedView = max(d.votedView, m.View)
	case *messages.PrepareOK:
		d.votedView = max(d.votedView, m.View)
		if m.View != d.ackView {
			d.ackView, d.ackOp = m.View, 0
		}
		d.ackOp = max(d.ackOp, m.OpNumber)
	}
}

// checkLoadedCommitted checks that every committed op a replica's disk
// gave back is the op the group committed: a disk may lose records, and the
// store must notice, but it must never hand back a changed one as valid.
func (c *Cluster) checkLoadedCommitted(i int, st storage.State) {
	for _, e := range st.Entries {
		if e.OpNumber > st.HardState.CommitNumber {
			return
		}
		if want, ok := c.committed[e.OpNumber]; ok && !proto.Equal(want, e) {
			c.fail("replica %d loaded committed op %d from its disk as (client %d, request %d, %x), but the group committed (client %d, request %d, %x): a corrupted record used as valid",
				i, e.OpNumber, e.ClientId, e.RequestNumber, e.Operation, want.ClientId, want.RequestNumber, want.Operation)
			return
		}
	}
}

// checkPromisesKept checks a replica restarted from an intact disk against
// what it told others before it crashed.
func (c *Cluster) checkPromisesKept(i int, st storage.State, r *vsr.Replica) {
	d := c.disks[i]
	if st.HardState.View < d.votedView {
		c.fail("replica %d restarted in view %d, but before it crashed it voted in view %d: a vote left before its view was durable",
			i, st.HardState.View, d.votedView)
	}
	if st.HardState.View == d.ackView && st.HardState.LastNormalView == d.ackView && r.OpNumber() < d.ackOp {
		c.fail("replica %d restarted holding ops up to %d, but before it crashed it acknowledged op %d in view %d: an ack left before its entries were durable",
			i, r.OpNumber(), d.ackOp, d.ackView)
	}
}

// saveCheckpoint writes a checkpoint replica i encoded to its disk, as the
// actor layer does before it hands the result to the core.
func (c *Cluster) saveCheckpoint(i int, res vsr.CheckpointResult) bool {
	head, state := res.Parts()
	if err := c.disks[i].store.SaveCheckpoint(storage.Checkpoint{OpNumber: res.OpNumber, Head: head, State: state}); err != nil {
		c.fail("replica %d: its disk failed a checkpoint write: %v", i, err)
		return false
	}
	return true
}
