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
func (r *Replica) appendEntry(e *messages.Entry) {
	r.log = append(r.log, e)
	r.uncommittedBytes += entrySize(e)
}

// truncateAfter discards every entry past op, which must not be below the
// commit number: only uncommitted candidates may be replaced. The slots are
// neither cleared nor reused (the slice is clipped, so the next append
// copies): messages still in flight may share them.
func (r *Replica) truncateAfter(op uint64) {
	if op >= r.opNumber() {
		return
	}
	k := max(op, r.logBase) - r.logBase
	for _, e := range r.log[k:] {
		r.uncommittedBytes -= entrySize(e)
	}
	r.log = slices.Clip(r.log[:k])
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
		r.log, r.logBase = nil, op
		return
	}
	drop := op - r.logBase
	r.log = slices.Clone(r.log[drop:])
	r.logBase = op
}

// resetLog empties the window so that it starts after op: the state up to
// op came from a checkpoint.
func (r *Replica) resetLog(op uint64) {
	r.log, r.logBase, r.uncommittedBytes = nil, op, 0
}

// uncommittedSuffix is the entries after the commit number.
func (r *Replica) uncommittedSuffix() []*messages.Entry {
	return r.entriesFrom(r.commitNumber+1, r.opNumber())
}

// entrySize is what e adds to a message that carries it: its encoding plus
// the field's tag and length.
func entrySize(e *messages.Entry) int { return proto.Size(e) + 4 }

// fitting returns the longest run of entries, from the start of entries,
// whose sizes sum to at most budget, and at most max of them. It always
// takes the first entry if budget allows it alone.
func fitting(entries []*messages.Entry, budget, max int) []*messages.Entry {
	total := 0
	for k, e := range entries {
		if k == max {
			return entries[:k]
		}
		total += entrySize(e)
		if total > budget {
			return entries[:k]
		}
	}
	return entries
}

// fittingTail is fitting from the end: the longest run ending with the last
// entry.
func fittingTail(entries []*messages.Entry, budget int) []*messages.Entry {
	total := 0
	for k := len(entries) - 1; k >= 0; k-- {
		total += entrySize(entries[k])
		if total > budget {
			return entries[k+1:]
		}
	}
	return entries
}
