// Package storage keeps a replica's durable state: its log, its hard state
// (epoch, view, last normal view, commit number, whether it is recovering)
// and its checkpoints. The replica actor drives a [Store] from the core's
// output: the core says what must be durable, the actor makes it durable
// with Save and only then sends the messages of the same step (a PrepareOK
// only after its entries are durable, a view-change vote only after the
// view is), many steps to one sync.
//
// The protocol core (package vsr) never imports this package; storage
// imports the core instead, to translate between the two: [ChangeOf] turns a
// vsr.Output into what must be written, [WriteChanges] writes it, and
// [DurableStateOf] turns what [Store.Load] returns into the vsr.DurableState
// that vsr.Restart takes.
//
// Two implementations: [FileStore], opened with [Open], a segmented
// write-ahead log with a CRC-32C on every record and checksummed checkpoint
// files, over an [FS] (the real file system, [OSFS], or [MemFS], a
// simulated disk that loses unsynced writes, tears them and injects faults);
// and [MemStore], its in-memory twin for tests. A FileStore tells a torn
// write at the end of its log (cut off) from damage (set aside and reported
// in State.Damage, so that the replica recovers from its peers), and refuses
// a directory that belongs to another replica.
package storage

import (
	"errors"

	"github.com/vsrgo/vsr/messages"
)

// FormatVersion is the version of the on-disk format FileStore writes. A
// data directory written by another version is refused at open. Version 2
// added the head file, which every initialised directory must hold: a
// version 1 directory, which has none, would otherwise load as damaged.
const FormatVersion = 2

// OwnerFile is the name of a file that the store's user may keep in the data
// directory, with its temporary files (names that begin with it): a
// FileStore never reads, writes or removes it, and it counts as neither the
// store's file nor a foreign one. The cluster layer keeps there how its node
// was first started.
const OwnerFile = "vsr.owner"

// Identity names the replica a data directory belongs to. It is written
// when the directory is created and checked at every open: a directory of
// another cluster, another replica index or another group size is refused
// and left untouched.
type Identity struct {
	ClusterID    uint64
	ReplicaIndex int
	ReplicaCount int
}

// HardState is the part of a replica's state, beside its log, that must
// survive a restart.
type HardState struct {
	// Epoch is the epoch View belongs to; zero until the group is first
	// reconfigured.
	Epoch          uint64
	View           uint64
	LastNormalView uint64
	CommitNumber   uint64
	// Recovering is set while the replica runs VR recovery: a replica that
	// restarts with it set has not finished learning the state it lost, so
	// it must recover again rather than trust what it holds.
	Recovering bool
}

// Batch is the durable change of one step of the core, applied in this
// order: first the log (discard every entry with op number LogFrom or more,
// then append Entries), then HardState.
type Batch struct {
	// LogFrom, when not zero, is the first op number whose log slot changed:
	// every stored entry with op number >= LogFrom is discarded and Entries,
	// numbered LogFrom, LogFrom+1, ... in order, take their place. Entries
	// may be empty (the log was only cut).
	LogFrom uint64
	Entries []*messages.Entry
	// HardState, when not nil, replaces the stored hard state.
	HardState *HardState
}

// Checkpoint is an encoded checkpoint (a messages.Checkpoint) of the
// committed state at OpNumber. Its encoding is Head followed by State, kept
// in two parts so that a large state machine's bytes are written as they
// are, never copied into one more buffer.
type Checkpoint struct {
	OpNumber uint64
	Head     []byte
	State    []byte
}

// Bytes returns the whole encoding, in a new buffer.
func (c *Checkpoint) Bytes() []byte {
	return append(append(make([]byte, 0, len(c.Head)+len(c.State)), c.Head...), c.State...)
}

// State is what a Store holds, as Load returns it.
type State struct {
	// HardState is the latest durable hard state (zero for a new store).
	HardState HardState
	// Checkpoint is the latest intact checkpoint, or nil.
	Checkpoint *Checkpoint
	// Entries is the log after the checkpoint: contiguous op numbers from
	// Checkpoint.OpNumber+1 (or 1 without a checkpoint). Entries at or below
	// the checkpoint's op are not returned.
	Entries []*messages.Entry
	// Damage is nil when the store found everything it wrote intact. A torn
	// write at the tail of the log (a write a crash interrupted before it was
	// synced, which therefore nobody was told of) is not damage: it is cut
	// off. Otherwise Damage says what was lost (a corrupted record, a missing
	// file, a log that does not reach what the hard state says was
	// committed), and the State holds only what came before it: the caller
	// must not trust the rest, and runs recovery.
	Damage error
}

// IsNew reports whether the store holds nothing: no hard state, no
// checkpoint, no entries.
func (s *State) IsNew() bool {
	return s.HardState == (HardState{}) && s.Checkpoint == nil && len(s.Entries) == 0 && s.Damage == nil
}

// Store is a replica's durable state. Save, Compact and Load are called from
// one goroutine at a time (the actor's persister); SaveCheckpoint may be
// called concurrently with them, from the goroutine that encoded the
// checkpoint.
type Store interface {
	// Load returns what the store holds. It is called once, at start,
	// before any other method. When it reports Damage, the store has
	// already set the damaged files aside (renamed, never read again) and
	// rewritten what it returned as a clean base, with HardState.Recovering
	// set, so that later Saves extend a log that loads without that damage
	// and a crash before the caller recovers cannot pass the store off as
	// intact or new.
	Load() (State, error)
	// Save makes the batches durable, in order, with one sync for all of
	// them (group commit): when it returns nil, a crash at any later moment
	// loses none of them. A crash during Save leaves a prefix of the
	// batches, whole batches only. An error (disk full, I/O error) means
	// some may not be durable: the caller must stop, not acknowledge them.
	Save(batches []Batch) error
	// SaveCheckpoint makes cp durable. Once it returns nil, Load returns cp
	// or a later checkpoint, even if entries at or below cp.OpNumber are
	// later compacted away.
	SaveCheckpoint(cp Checkpoint) error
	// Compact allows the store to discard entries with op numbers up to
	// through, which must not exceed the op of a checkpoint saved before.
	// It may keep them (it frees space in whole segments).
	Compact(through uint64) error
	// Close releases the store's files. The store is unusable after it.
	Close() error
}

// Errors.
var (
	// ErrIdentity: the data directory belongs to another cluster, replica
	// index or group size.
	ErrIdentity = errors.New("storage: data directory belongs to another replica")
	// ErrVersion: the data directory was written by an incompatible
	// format version.
	ErrVersion = errors.New("storage: data directory has an incompatible format version")
	// ErrClosed: the store was closed, or failed: after a failed write a
	// store refuses every later write, since what it holds is unknown.
	ErrClosed = errors.New("storage: store is closed or has failed")
	// ErrBadBatch: a batch that does not fit the log (entries not numbered
	// from LogFrom, a gap after the stored log, a nil entry).
	ErrBadBatch = errors.New("storage: malformed batch")
	// ErrDamaged wraps every State.Damage.
	ErrDamaged = errors.New("storage: damaged")
)
