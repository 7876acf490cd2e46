package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

// Batching. Proto.Actor hands an actor one message at a time, but a busy
// replica's mailbox holds many: requests from many clients at a primary,
// Prepares at a backup, PrepareOKs at the primary again. Stepping them one
// by one sends a Prepare per request and a PrepareOK per Prepare; stepping
// them together (vsr.Replica.StepBatch) sends one of each for the lot.
//
// The replica does not know how many messages wait behind the one it holds,
// so it asks its mailbox: the first protocol message of a batch is put aside
// and the actor sends itself a stepBatch marker, which queues behind every
// message already in the mailbox. Each protocol message that arrives before
// the marker joins the batch; the marker steps them all at once. A lone
// request waits for the marker alone, one trip through its own mailbox, so
// batching never waits for company that is not coming; under load the
// batch is whatever arrived while the last one was being handled.

// maxPendingBatch bounds a batch: past it the batch is stepped at once, so a
// flood in the mailbox is handled in bounded steps and the replica's
// Prepares and replies start leaving before the flood is drained.
const maxPendingBatch = 1024

// stepBatch is the marker that ends a batch. One value serves every
// instance: a marker left over from an instance that has since restarted
// steps the new instance's batch a little early, which is harmless.
type stepBatch struct{}

var batchMarker = &stepBatch{}

// enqueue puts a protocol message into the current batch, starting one if
// there is none.
func (a *replicaActor) enqueue(ctx actor.Context, m proto.Message) {
	a.pending = append(a.pending, m)
	if len(a.pending) >= maxPendingBatch {
		a.stepPending(ctx)
		return
	}
	if !a.markerQueued {
		a.markerQueued = true
		ctx.Send(ctx.Self(), batchMarker)
	}
}

// onBatchMarker steps the batch that the marker closes.
func (a *replicaActor) onBatchMarker(ctx actor.Context) {
	a.markerQueued = false
	a.stepPending(ctx)
}

// stepPending steps the messages waiting in the batch, if any. The actor
// calls it before anything that is not a protocol message (a tick, a status
// query, a finished checkpoint), so that those see every message that came
// before them.
func (a *replicaActor) stepPending(ctx actor.Context) {
	if len(a.pending) == 0 || a.core == nil {
		a.clearPending()
		return
	}
	before, observed := a.beforeStep()
	own := false
	if observed {
		a.observeReceived(a.pending)
		own = !aboutViewChange(a.pending)
	}
	out := a.core.StepBatch(a.pending)
	a.clearPending()
	a.afterStep(before, observed, own)
	a.carryOut(ctx, out)
}

// clearPending empties the batch, keeping its array but not its messages.
func (a *replicaActor) clearPending() {
	clear(a.pending)
	a.pending = a.pending[:0]
}
