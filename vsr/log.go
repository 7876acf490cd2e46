package vsr

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// The log is a window onto the history. Op numbers stay absolute: log[k]
// holds op logBase+k+1, and the ops up to logBase live only in the latest
// checkpoint. The window starts TrailingOps below the checkpoint, and it
// ends at opNumber, at most PipelineMax ops past commitNumber.
//
// Every slot up to commitNumber holds the committed op; a slot past it holds
// a candidate that a view change may replace.
//
// sizes[k] is what log[k] weighs in a message (entrySize), measured once
// when the entry joins the log: batching, the pipeline's byte budget and
// commits read it instead of encoding the entry again.

// opNumber is the op number of the last entry.
func (r *Replica) opNumber() uint64 { return r.logBase + uint64(len(r.log)) }

// entryAt returns the entry with op number op, or nil if op is outside the
// window.
func (r *Replica) entryAt(op uint64) *messages.Entry {
	if op <= r.logBase || op > r.opNumber() {
		return nil
	}
	return r.log[op-r.logBase-1]
}

// entriesFrom returns the entries from op number first to last, both in the
// window. The slice is shared: callers must not change it.
func (r *Replica) entriesFrom(first, last uint64) []*messages.Entry {
	if first > last {
		return nil
	}
	return r.log[first-r.logBase-1 : last-r.logBase]
}

// appendEntry adds e, whose op number must be opNumber+1, to the log.
func (r *Replica) appendEntry(e *messages.Entry) { r.appendSized(e, entrySize(e)) }

// appendSized is appendEntry for an entry whose size is known.
func (r *Replica) appendSized(e *messages.Entry, size int) {
	r.changedFrom(e.OpNumber)
	r.log = append(r.log, e)
	r.sizes = append(r.sizes, int32(size))
	r.uncommittedBytes += size
}

// sizeAt is the size of the entry with op number op, in the window.
func (r *Replica) sizeAt(op uint64) int { return int(r.sizes[op-r.logBase-1]) }

// truncateAfter discards every entry past op, which must not be below the
// commit number: only uncommitted candidates may be replaced. The slots are
// neither cleared nor reused (the slice is clipped, so the next append
// copies): messages still in flight may share them.
func (r *Replica) truncateAfter(op uint64) {
	if op >= r.opNumber() {
		return
	}
	k := max(op, r.logBase) - r.logBase
	r.changedFrom(r.logBase + k + 1)
	for _, size := range r.sizes[k:] {
		r.uncommittedBytes -= int(size)
	}
	r.log, r.sizes = slices.Clip(r.log[:k]), r.sizes[:k]
}

// discardThrough drops the entries up to op (at most the commit number) from
// the front of the window: a checkpoint holds them now. The slice is copied
// now and then so that the array under it does not keep every entry alive.
func (r *Replica) discardThrough(op uint64) {
	op = min(op, r.commitNumber)
	if op <= r.logBase {
		return
	}
	if op >= r.opNumber() {
		r.log, r.sizes, r.logBase = nil, nil, op
		return
	}
	drop := op - r.logBase
	r.log, r.sizes = slices.Clone(r.log[drop:]), slices.Clone(r.sizes[drop:])
	r.logBase = op
}

// resetLog empties the window so that it starts after op: the state up to
// op came from a checkpoint.
func (r *Replica) resetLog(op uint64) {
	r.log, r.sizes, r.logBase, r.uncommittedBytes = nil, nil, op, 0
	r.logChangedFrom = op + 1 // the checkpoint at op holds what came before
}

// changedFrom notes that the log slot of op changed: the next output asks
// the caller to store the log from there on (see Output.LogFrom).
func (r *Replica) changedFrom(op uint64) {
	if r.logChangedFrom == 0 || op < r.logChangedFrom {
		r.logChangedFrom = op
	}
}

// takeLogChange moves the log's change since the last output into out.
// Slots below the window were trimmed into a checkpoint the caller saved
// before the trim, so the change starts at the window at the earliest.
func (r *Replica) takeLogChange(out *Output) {
	if r.logChangedFrom == 0 {
		return
	}
	out.LogFrom = max(r.logChangedFrom, r.logBase+1)
	out.Entries = r.entriesFrom(out.LogFrom, r.opNumber())
	r.logChangedFrom = 0
}

// uncommittedSuffix is the entries after the commit number.
func (r *Replica) uncommittedSuffix() []*messages.Entry {
	return r.entriesFrom(r.commitNumber+1, r.opNumber())
}

// entrySize is what e adds to a message that carries it: its encoding plus
// the field's tag and length.
func entrySize(e *messages.Entry) int { return proto.Size(e) + 4 }

// fitFrom returns the entries from op number first on, up to last, as many
// as fit in budget bytes and at most max of them: always at least the first,
// which a request's size bound lets fit alone.
func (r *Replica) fitFrom(first, last uint64, budget, max int) []*messages.Entry {
	if first > last {
		return nil
	}
	total, end := 0, first
	for ; end <= last && int(end-first) < max; end++ {
		if total += r.sizeAt(end); total > budget && end > first {
			break
		}
	}
	return r.entriesFrom(first, end-1)
}

// fitTail is fitFrom from the end: the entries from after op from to op
// last, as many of the last ones as fit in budget bytes.
func (r *Replica) fitTail(from, last uint64, budget int) []*messages.Entry {
	total, start := 0, last+1
	for ; start > from+1; start-- {
		if total += r.sizeAt(start - 1); total > budget {
			break
		}
	}
	return r.entriesFrom(start, last)
}
