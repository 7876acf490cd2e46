package storage

import "fmt"

// logBounds is what a store must know of its log to check a batch: where it
// ends and the op of its latest durable checkpoint. Both stores keep just
// this, not the entries, to validate.
type logBounds struct {
	lastOp uint64
	ckptOp uint64
}

// checkBatches validates batches, in order, against b. It returns the
// bounds after them and peak, the highest last op the log reaches on the
// way (what a WAL segment holding them must be covered by before
// compaction may delete it). A malformed batch gives an error wrapping
// ErrBadBatch, and nothing may be written.
func checkBatches(batches []Batch, b logBounds) (after logBounds, peak uint64, err error) {
	peak = b.lastOp
	for i := range batches {
		bt := &batches[i]
		if bt.LogFrom == 0 {
			if len(bt.Entries) > 0 {
				return b, 0, fmt.Errorf("%w: batch %d has %d entries but no LogFrom", ErrBadBatch, i, len(bt.Entries))
			}
			continue
		}
		// The log may restart past its end only where a durable checkpoint
		// covers the gap (the replica installed a checkpoint).
		if bt.LogFrom > b.lastOp+1 && bt.LogFrom-1 > b.ckptOp {
			return b, 0, fmt.Errorf("%w: batch %d starts at op %d, past the log's end %d and the checkpoint at %d",
				ErrBadBatch, i, bt.LogFrom, b.lastOp, b.ckptOp)
		}
		for j, e := range bt.Entries {
			if e == nil {
				return b, 0, fmt.Errorf("%w: batch %d: entry %d is nil", ErrBadBatch, i, j)
			}
			if want := bt.LogFrom + uint64(j); e.OpNumber != want {
				return b, 0, fmt.Errorf("%w: batch %d: entry %d has op %d, want %d", ErrBadBatch, i, j, e.OpNumber, want)
			}
		}
		b.lastOp = bt.LogFrom - 1 + uint64(len(bt.Entries))
		peak = max(peak, b.lastOp)
	}
	return b, peak, nil
}
