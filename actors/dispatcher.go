package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Proto.Actor's default dispatcher runs each burst of an actor's mailbox on
// a new goroutine. A new goroutine starts with a small stack, and a replica's
// step (the core, then the state machine, then protobuf) is deep enough to
// grow it two or three times: in a profile of a busy group, a sixth of the
// CPU went to copying stacks. The pool below hands each burst to a worker
// goroutine that has run bursts before, and whose stack has already grown.

// dispatcherThroughput is how many messages a mailbox burst handles before
// it yields its worker, as in Proto.Actor's default.
const dispatcherThroughput = 300

// workerIdle is how long a worker waits for another burst before it exits,
// so that a process whose groups have stopped keeps no goroutines.
const workerIdle = 2 * time.Second

// poolDispatcher is an actor.Dispatcher that reuses worker goroutines.
// Schedule never blocks: with no worker waiting, it starts a new one, so a
// burst never waits for another to finish.
type poolDispatcher struct {
	work chan func()
}

var (
	sharedDispatcher     *poolDispatcher
	sharedDispatcherOnce sync.Once
)

// dispatcher returns the process's pool dispatcher. One pool serves every
// replica and client, since the workers are interchangeable.
func dispatcher() actor.Dispatcher {
	sharedDispatcherOnce.Do(func() { sharedDispatcher = &poolDispatcher{work: make(chan func())} })
	return sharedDispatcher
}

func (d *poolDispatcher) Throughput() int { return dispatcherThroughput }

// Schedule runs fn on a waiting worker, or on a new one.
func (d *poolDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go d.worker(fn)
	}
}

// worker runs fn, then whatever bursts it is handed, until it has waited
// workerIdle for one.
func (d *poolDispatcher) worker(fn func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		fn()
		idle.Reset(workerIdle)
		select {
		case fn = <-d.work:
		case <-idle.C:
			return
		}
	}
}
