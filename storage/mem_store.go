package storage

import (
	"fmt"
	"slices"
	"sync"

	"github.com/vsrgo/vsr/messages"
)

// MemStore is the Store in memory: FileStore's twin, with the same Batch
// semantics and validation and no disk, for tests and the in-memory mode.
// Nothing it holds survives the process, and it never reports damage.
//
// It keeps the entries and checkpoints it is given, not copies: callers
// must not change them after Save or SaveCheckpoint.
type MemStore struct {
	mu     sync.Mutex
	closed bool
	hs     HardState
	ckpt   *Checkpoint
	bounds logBounds
	// ents holds ops base+1 through bounds.lastOp; Compact moves base up.
	base uint64
	ents []*messages.Entry
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{} }

// Load returns the hard state, the latest checkpoint and the entries after
// it. Unlike FileStore's, it may be called again at any time: a simulator
// restarting a replica on the same MemStore sees what was saved.
func (m *MemStore) Load() (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return State{}, ErrClosed
	}
	st := State{HardState: m.hs, Checkpoint: m.ckpt}
	from := uint64(0)
	if m.ckpt != nil && m.ckpt.OpNumber > m.base {
		from = min(m.ckpt.OpNumber-m.base, uint64(len(m.ents)))
	}
	st.Entries = slices.Clone(m.ents[from:])
	return st, nil
}

// Save validates the batches as FileStore does, then applies them.
func (m *MemStore) Save(batches []Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, _, err := checkBatches(batches, m.bounds); err != nil {
		return err
	}
	for i := range batches {
		b := &batches[i]
		if b.LogFrom != 0 {
			m.cut(b.LogFrom)
			m.ents = append(m.ents, b.Entries...)
			m.bounds.lastOp = b.LogFrom - 1 + uint64(len(b.Entries))
		}
		if b.HardState != nil {
			m.hs = *b.HardState
		}
	}
	return nil
}

// cut discards the entries from op k on; a k past the log's end (allowed
// where a checkpoint covers the gap) restarts the log after k-1.
func (m *MemStore) cut(k uint64) {
	if k-1 < m.base || k-1 > m.bounds.lastOp {
		m.ents, m.base = m.ents[:0], k-1
		return
	}
	clear(m.ents[k-1-m.base:]) // let the garbage collector have them
	m.ents = m.ents[:k-1-m.base]
}

// SaveCheckpoint keeps cp if it is later than the checkpoint held.
func (m *MemStore) SaveCheckpoint(cp Checkpoint) error {
	if cp.OpNumber == 0 {
		return fmt.Errorf("%w: checkpoint at op 0", ErrBadBatch)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if cp.OpNumber > m.bounds.ckptOp {
		m.ckpt = &cp
		m.bounds.ckptOp = cp.OpNumber
	}
	return nil
}

// Compact drops the entries up to through, within the checkpoint.
func (m *MemStore) Compact(through uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	limit := min(through, m.bounds.ckptOp)
	if limit <= m.base {
		return nil
	}
	drop := min(limit-m.base, uint64(len(m.ents)))
	// A new array, so that the dropped entries' memory is freed.
	m.ents = slices.Clone(m.ents[drop:])
	m.base += drop
	return nil
}

// Close makes the store unusable.
func (m *MemStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.closed = true
	return nil
}
