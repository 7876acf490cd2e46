package actors

import (
	"sync"
	"sync/atomic"

	"github.com/vsrgo/vsr/storage"
)

// The persister makes a replica's outputs durable before their messages
// leave, with group commit: the replica actor hands it each step's durable
// change together with the sends that depend on it, and goes on with the
// next message at once; the persister's goroutine takes every job queued
// meanwhile, writes them with one sync, and only then sends their messages,
// in order. So a PrepareOK leaves only once its entries are durable and a
// view-change vote only once its view is (vsr.Output), while a burst of
// steps costs one fsync, not one each.
//
// The core's state runs ahead of the disk meanwhile, which is safe: nothing
// it did is visible to anyone until the job that carries it is durable, and
// jobs are written and sent in the order the core made them.

// persistJob is one step's durable change and what to do once it is durable.
type persistJob struct {
	change storage.Change
	send   func()
}

// persister runs the group-commit loop of one replica instance.
type persister struct {
	store storage.Store
	jobs  chan persistJob
	quit  chan struct{}
	// dead is closed when a write failed: the loop takes no more jobs, and
	// submit must not wait for room that will never come.
	dead   chan struct{}
	done   sync.WaitGroup
	failed func(error)
	// pending counts jobs queued or being written and not yet sent: while
	// it is zero, a step with nothing durable may send at once without
	// overtaking an earlier step's messages.
	pending atomic.Int64
}

// maxGroup bounds the jobs one sync covers, so that one fsync's latency is
// not stretched by an unbounded write.
const maxGroup = 1024

// persistQueue is the persister's queue length; a replica that outruns its
// disk by more waits in carryOut, which is back-pressure on its mailbox.
const persistQueue = 4096

func newPersister(store storage.Store, failed func(error)) *persister {
	p := &persister{store: store, jobs: make(chan persistJob, persistQueue), quit: make(chan struct{}),
		dead: make(chan struct{}), failed: failed}
	p.done.Add(1)
	go p.run()
	return p
}

// submit queues a job; it blocks while the queue is full.
func (p *persister) submit(j persistJob) {
	p.pending.Add(1)
	select {
	case p.jobs <- j:
	case <-p.quit:
	case <-p.dead: // dropped: nothing after a failed write is sent
	}
}

// idle reports whether no job is queued or being written.
func (p *persister) idle() bool { return p.pending.Load() == 0 }

// stop ends the loop without sending what is still queued, as a crash
// would, and waits for the write under way to finish.
func (p *persister) stop() {
	close(p.quit)
	p.done.Wait()
}

func (p *persister) run() {
	defer p.done.Done()
	group := make([]persistJob, 0, 64)
	for {
		select {
		case <-p.quit:
			return
		case j := <-p.jobs:
			group = append(group[:0], j)
		}
	drain:
		for len(group) < maxGroup {
			select {
			case j := <-p.jobs:
				group = append(group, j)
			default:
				break drain
			}
		}
		if err := p.write(group); err != nil {
			close(p.dead)
			p.failed(err)
			<-p.quit // never send what may not be durable; wait to be stopped
			return
		}
		for _, j := range group {
			if j.send != nil {
				j.send()
			}
			p.pending.Add(-1)
		}
	}
}

// write makes a group's changes durable, with as few syncs as their order
// allows.
func (p *persister) write(group []persistJob) error {
	changes := make([]storage.Change, len(group))
	for k, j := range group {
		changes[k] = j.change
	}
	return storage.WriteChanges(p.store, changes)
}
