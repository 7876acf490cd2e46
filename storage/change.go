package storage

import (
	"github.com/vsrgo/vsr/vsr"
)

// Change is the durable part of one step of the core (vsr.Output): what a
// caller must make durable before it sends that step's messages.
type Change struct {
	// Checkpoint is a checkpoint installed from a peer: saved first, since
	// the log change after it starts past the stored log.
	Checkpoint *Checkpoint
	// Batch is the log change and the hard state.
	Batch Batch
	// Compact, when not zero, lets the store discard entries up to it once
	// the batch is written (vsr.Output.Compact).
	Compact uint64
}

// ChangeOf takes the durable part of out.
func ChangeOf(out vsr.Output) Change {
	c := Change{Batch: Batch{LogFrom: out.LogFrom, Entries: out.Entries}, Compact: out.Compact}
	if hs := out.HardState; hs != nil {
		c.Batch.HardState = &HardState{Epoch: hs.Epoch, View: hs.View, LastNormalView: hs.LastNormalView,
			CommitNumber: hs.CommitNumber, Recovering: hs.Recovering}
	}
	if cp := out.InstalledCheckpoint; cp != nil {
		c.Checkpoint = &Checkpoint{OpNumber: cp.OpNumber, Head: cp.Encoded}
	}
	return c
}

// IsEmpty reports whether c asks for nothing.
func (c Change) IsEmpty() bool { return c.Checkpoint == nil && c.Batch.isEmpty() && c.Compact == 0 }

func (b Batch) isEmpty() bool { return b.LogFrom == 0 && b.HardState == nil }

// WriteChanges makes changes durable in order, with one Save (one sync) for
// every run of batches that no checkpoint or compaction interrupts: the
// group commit of a caller that queued several steps.
func WriteChanges(s Store, changes []Change) error {
	batches := make([]Batch, 0, len(changes))
	flush := func() error {
		if len(batches) == 0 {
			return nil
		}
		err := s.Save(batches)
		batches = batches[:0]
		return err
	}
	for _, c := range changes {
		if c.Checkpoint != nil {
			if err := flush(); err != nil {
				return err
			}
			if err := s.SaveCheckpoint(*c.Checkpoint); err != nil {
				return err
			}
		}
		if !c.Batch.isEmpty() {
			batches = append(batches, c.Batch)
		}
		if c.Compact != 0 {
			if err := flush(); err != nil {
				return err
			}
			if err := s.Compact(c.Compact); err != nil {
				return err
			}
		}
	}
	return flush()
}

// DurableStateOf converts what a store loaded into what vsr.Restart takes.
func DurableStateOf(st State) vsr.DurableState {
	d := vsr.DurableState{Entries: st.Entries, Damaged: st.Damage != nil,
		HardState: vsr.HardState{Epoch: st.HardState.Epoch, View: st.HardState.View, LastNormalView: st.HardState.LastNormalView,
			CommitNumber: st.HardState.CommitNumber, Recovering: st.HardState.Recovering}}
	if st.Checkpoint != nil {
		d.Checkpoint = st.Checkpoint.Bytes()
	}
	return d
}
