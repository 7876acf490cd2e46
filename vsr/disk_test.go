package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// testDisk is what one replica of the test network made durable: every
// output's checkpoint, log change and hard state, applied as a caller with a
// disk must apply them, before the output's messages go out.
type testDisk struct {
	hs         HardState
	checkpoint []byte
	cpOp       uint64
	log        map[uint64]*messages.Entry
	last       uint64
}

// saveCheckpoint stores a checkpoint the replica encoded, as its caller
// must before it hands the result to CheckpointDone.
func (d *testDisk) saveCheckpoint(res CheckpointResult) {
	if res.Err == nil && res.OpNumber > d.cpOp {
		d.checkpoint, d.cpOp = res.Encoded(), res.OpNumber
	}
}

// apply stores what out asks to be durable, checking that the log change
// is well formed: numbered from LogFrom, with no gap after the stored log
// unless an installed checkpoint covers it.
func (d *testDisk) apply(t *testing.T, out Output) {
	t.Helper()
	if d.log == nil {
		d.log = map[uint64]*messages.Entry{}
	}
	if cp := out.InstalledCheckpoint; cp != nil {
		d.checkpoint, d.cpOp = cp.Encoded, cp.OpNumber
	}
	if out.LogFrom != 0 {
		require.LessOrEqual(t, out.LogFrom, max(d.last, d.cpOp)+1, "log change from %d leaves a gap after %d", out.LogFrom, d.last)
		for op := out.LogFrom; op <= d.last; op++ {
			delete(d.log, op)
		}
		d.last = out.LogFrom - 1
		for k, e := range out.Entries {
			require.Equal(t, out.LogFrom+uint64(k), e.OpNumber, "log change entries out of order")
			d.log[e.OpNumber] = e
			d.last = e.OpNumber
		}
	}
	if out.HardState != nil {
		d.hs = *out.HardState
	}
	if out.Compact != 0 {
		require.LessOrEqual(t, out.Compact, d.cpOp, "compaction through op %d, past the saved checkpoint", out.Compact)
		for op := range d.log {
			if op <= out.Compact {
				delete(d.log, op)
			}
		}
	}
}

// requireHolds checks that the disk holds the replica's log window and its
// hard state: what the replica's outputs asked to store is what it has.
func (d *testDisk) requireHolds(t *testing.T, r *Replica) {
	t.Helper()
	require.Equal(t, r.hardState, d.hs, "replica %d: hard state on disk", r.index)
	first := max(r.logBase, d.cpOp) + 1
	require.Equal(t, r.opNumber(), max(d.last, first-1), "replica %d: log end on disk", r.index)
	for op := first; op <= r.opNumber(); op++ {
		require.Same(t, r.entryAt(op), d.log[op], "replica %d: op %d on disk", r.index, op)
	}
}

// state is the durable state as a restarting replica reads it: the log
// after the checkpoint, contiguous.
func (d *testDisk) state() DurableState {
	ds := DurableState{HardState: d.hs, Checkpoint: d.checkpoint}
	for op := d.cpOp + 1; d.log[op] != nil; op++ {
		ds.Entries = append(ds.Entries, d.log[op])
	}
	return ds
}

// restartFromDisk replaces replica i by one restarted from its test disk;
// damaged says that the disk reported damage.
func (nw *network) restartFromDisk(i int, damaged bool) {
	nw.t.Helper()
	store := kv.NewStore()
	ds := nw.disks[i].state()
	ds.Damaged = damaged
	r, out, err := Restart(nw.config(len(nw.replicas), i, store, false), ds)
	require.NoError(nw.t, err)
	nw.replicas[i], nw.stores[i] = r, store
	nw.take(i, out)
}

// uSilent reports whether out does nothing a peer or a client could see,
// and changes no log: at most it records the hard state (a recovering
// replica's first output records that it is recovering).
func uSilent(out Output) bool {
	out.HardState = nil
	return out.IsEmpty()
}
