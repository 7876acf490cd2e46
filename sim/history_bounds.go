package sim

import (
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/vsr"
)

// historyBounds are the core's history settings for one run, drawn per seed
// so that tiny checkpoint intervals, windows, pipelines and messages (which
// force log trimming, checkpoint transfers in many chunks, busy replies and
// session expiry at every turn) are covered as well as the defaults.
type historyBounds struct {
	checkpointInterval int
	trailingOps        int // negative: none
	pipelineMax        int
	maxMessageBytes    int
	sessionIdleOps     uint64
	maxSessions        int
	// padding is added to every state snapshot, so that a checkpoint of a
	// few keys spans several chunks when messages are small.
	padding int
	// maxJobTicks bounds how long encoding a checkpoint takes.
	maxJobTicks int
}

func drawHistoryBounds(rng *rand.Rand, clients int) historyBounds {
	pick := func(xs ...int) int { return xs[rng.IntN(len(xs))] }
	h := historyBounds{
		checkpointInterval: pick(2, 5, 16, 64, vsr.DefaultCheckpointInterval),
		trailingOps:        pick(-1, 1, 4, 32),
		pipelineMax:        pick(1, 3, 8, 64, vsr.DefaultPipelineMax),
		maxMessageBytes:    pick(vsr.MinMaxMessageBytes, vsr.MinMaxMessageBytes, 8192, vsr.DefaultMaxMessageBytes),
		sessionIdleOps:     uint64(pick(40, 1<<30, 1<<30)),
		maxSessions:        pick(clients, clients+4, 64),
		padding:            pick(0, 1500, 5000),
		maxJobTicks:        pick(0, 3, 30),
	}
	if clients > 1 && rng.IntN(8) == 0 {
		h.maxSessions = clients - 1 // a full table evicts a live session
	}
	return h
}

// checkpointJob is a checkpoint the replica r (instance, not index: a
// restarted replica's jobs are lost with it) is waiting for.
type checkpointJob struct {
	replica int
	r       *vsr.Replica
	due     int
	job     *vsr.CheckpointJob
}

// finishCheckpoints completes the jobs that are due.
func (c *Cluster) finishCheckpoints() {
	kept := c.jobs[:0]
	var done []checkpointJob
	for _, j := range c.jobs {
		if j.due <= c.now {
			done = append(done, j)
		} else {
			kept = append(kept, j)
		}
	}
	c.jobs = kept
	for _, j := range done {
		if c.replicas[j.replica] != j.r || c.paused[j.replica] {
			if c.replicas[j.replica] == j.r {
				c.jobs = append(c.jobs, j) // a paused process finishes later
			}
			continue
		}
		res := j.job.Run()
		if res.Err == nil {
			c.stats.Checkpoints++
			if c.durable && !c.saveCheckpoint(j.replica, res) {
				continue
			}
		}
		c.process(j.replica, j.r.CheckpointDone(res))
	}
}

// checkSize fails the run if replica i emitted a message larger than the
// bound: the transport would refuse it, and a protocol that needs it stops.
func (c *Cluster) checkSize(i int, m proto.Message) {
	size := proto.Size(m)
	c.stats.MaxMessage = max(c.stats.MaxMessage, size)
	if size > c.bounds.maxMessageBytes {
		c.fail("replica %d emitted a %T of %d bytes, over MaxMessageBytes %d", i, m, size, c.bounds.maxMessageBytes)
	}
}
