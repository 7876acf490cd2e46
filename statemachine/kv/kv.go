package kv

import (
	"bytes"
	"errors"

	"github.com/tidwall/btree"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/statemachine"
)

// Error texts that Apply puts in Result.Error. They are constants, rather than
// the protobuf library's own messages, because those are deliberately
// unstable between builds and every replica must return the same bytes.
const (
	// ErrTextUndecodable is returned for an op that is not an Operation.
	ErrTextUndecodable = "kv: operation does not decode"
	// ErrTextNoKind is returned for an Operation with no kind set.
	ErrTextNoKind = "kv: operation has no kind"
	// ErrTextNoCondition is returned for a CompareAndSwap with no condition,
	// because swapping unconditionally would silently turn it into a Put.
	ErrTextNoCondition = "kv: compare-and-swap has no condition"
)

// ErrBadSnapshot is returned by Restore for bytes that are not a snapshot
// taken by Snapshot, so that a caller can tell corruption from other failures.
var ErrBadSnapshot = errors.New("kv: bad snapshot")

// marshal is the one encoder for everything the store emits. Deterministic
// output keeps snapshots and results byte-identical across replicas.
var marshal = proto.MarshalOptions{Deterministic: true}

// Store is an in-memory key-value map replicated as a
// statemachine.StateMachine. Like every state machine it is not safe for
// concurrent use; the replica calls it from one goroutine at a time. The one
// exception is the function Checkpoint returns, which may run on another
// goroutine while the store goes on changing.
type Store struct {
	// pairs is a copy-on-write B-tree rather than a Go map for two reasons.
	// Its Copy takes constant time and leaves the copy untouched by later
	// writes to the original, which is what lets Checkpoint capture a large
	// state without stalling the replica. And it keeps the keys sorted, which
	// is the order a snapshot needs, so Snapshot does not sort.
	//
	// The values are never changed in place: put and compare-and-swap store
	// the slice that proto.Unmarshal made for the op, Restore the one it made
	// for the snapshot, and Get hands out copies. A captured tree therefore
	// shares its values with the live one safely.
	pairs *btree.Map[string, []byte]
}

// Compile-time proof that Store is what a replica needs, and that it can be
// checkpointed without stalling one.
var (
	_ statemachine.StateMachine = (*Store)(nil)
	_ statemachine.Checkpointer = (*Store)(nil)
)

// New returns an empty Store as a statemachine.StateMachine, so that it can
// be passed directly where a statemachine.Factory is expected.
func New() statemachine.StateMachine {
	return NewStore()
}

// NewStore returns an empty Store with its concrete type, for callers (mostly
// tests) that also want Get and Len.
func NewStore() *Store {
	return &Store{pairs: newPairs()}
}

// newPairs returns an empty tree with the library's default degree, which
// its author tuned for in-memory use.
func newPairs() *btree.Map[string, []byte] {
	return btree.NewMap[string, []byte](0)
}

// Apply decodes op as an Operation, executes it and returns an encoded
// Result. It never panics and never fails: an op that does not decode, or
// is incomplete, gets a Result whose Error is a fixed text, so that every
// replica reaches the same verdict.
func (s *Store) Apply(op []byte) []byte {
	if key, value, ok := parsePut(op); ok {
		return s.applyPut(key, value)
	}
	return mustMarshal(s.apply(op))
}

// apply is Apply before encoding, so that each step stays small.
func (s *Store) apply(op []byte) *Result {
	o, ok := decodeOperation(op)
	if !ok {
		return &Result{Error: ErrTextUndecodable}
	}
	switch k := o.GetKind().(type) {
	case *Operation_Put:
		return s.put(k.Put)
	case *Operation_Get:
		return s.get(k.Get)
	case *Operation_Delete:
		return s.delete(k.Delete)
	case *Operation_CompareAndSwap:
		return s.compareAndSwap(k.CompareAndSwap)
	default:
		return &Result{Error: ErrTextNoKind}
	}
}

// put sets the key and reports whether it replaced an existing value. The
// value needs no copy: proto.Unmarshal copied it out of the op's bytes.
func (s *Store) put(p *Put) *Result {
	_, found := s.pairs.Set(string(p.GetKey()), p.GetValue())
	return &Result{Found: found}
}

// get reads the key without changing anything, as a read-only op must.
func (s *Store) get(g *Get) *Result {
	value, found := s.pairs.Get(string(g.GetKey()))
	return &Result{Found: found, Value: value}
}

// delete removes the key and reports whether it was there.
func (s *Store) delete(d *Delete) *Result {
	_, found := s.pairs.Delete(string(d.GetKey()))
	return &Result{Found: found}
}

// compareAndSwap sets the key only if its condition holds. When it does not
// swap it returns the current value, so that the caller can retry at once.
func (s *Store) compareAndSwap(c *CompareAndSwap) *Result {
	key := string(c.GetKey())
	current, found := s.pairs.Get(key)
	holds, valid := conditionHolds(c, current, found)
	if !valid {
		return &Result{Error: ErrTextNoCondition}
	}
	if !holds {
		return &Result{Found: found, Value: current}
	}
	s.pairs.Set(key, c.GetValue())
	return &Result{Found: found, Swapped: true}
}

// conditionHolds evaluates the condition of c against the current state of
// its key. valid is false when c has no usable condition.
func conditionHolds(c *CompareAndSwap, current []byte, found bool) (holds, valid bool) {
	switch cond := c.GetCondition().(type) {
	case *CompareAndSwap_ExpectedValue:
		return found && bytes.Equal(current, cond.ExpectedValue), true
	case *CompareAndSwap_ExpectAbsent:
		return !found, cond.ExpectAbsent
	default:
		return false, false
	}
}

// ReadOnly reports whether op is a Get, the only operation that leaves the
// store unchanged. An op that does not decode is not read-only, so that it is
// never served outside the log and always gets its error through it.
func (s *Store) ReadOnly(op []byte) bool {
	o, ok := decodeOperation(op)
	return ok && o.GetGet() != nil
}

// Snapshot returns every pair, sorted by key, deterministically encoded, so
// that replicas with the same contents produce byte-identical snapshots
// whatever order the keys were inserted in.
//
// It encodes the live tree rather than a copy of it: nothing changes the
// store while Snapshot runs, and a Copy would make the next writes copy the
// nodes they touch for nothing.
func (s *Store) Snapshot() ([]byte, error) {
	return encodeSnapshot(s.pairs)
}

// Checkpoint captures the store in constant time and returns the function
// that encodes what it captured into the bytes Snapshot would have returned
// now. That function may run on another goroutine while Apply, Restore and
// the rest go on using the store.
//
// The capture is a copy-on-write copy of the tree. Copy gives both trees new
// identities and leaves the nodes they share marked with the old one; every
// write to a tree first replaces each shared node on its path with a private
// copy (its slot in the parent, or the root field, belongs to the writing
// tree alone), so a shared node is never written again and the captured tree
// is only ever read. The price is paid by the writes that follow a
// checkpoint: the first write under each node copies it.
func (s *Store) Checkpoint() func() ([]byte, error) {
	frozen := s.pairs.Copy()
	return func() ([]byte, error) {
		return encodeSnapshot(frozen)
	}
}

// encodeSnapshot encodes the pairs of a tree that nothing writes meanwhile.
// The tree iterates in ascending key order, which is the byte order that
// Restore checks, so the snapshot needs no sort. It writes the Snapshot
// message's wire format directly (what proto.Marshal with Deterministic
// writes: proto3 leaves empty bytes fields out) into one buffer sized in a
// first pass, so that encoding a million pairs makes one allocation instead
// of two million, and leaves the garbage collector nothing to chase.
func encodeSnapshot(pairs *btree.Map[string, []byte]) ([]byte, error) {
	size := 0
	pairs.Scan(func(key string, value []byte) bool {
		n := pairSize(key, value)
		size += 1 + protowire.SizeVarint(uint64(n)) + n
		return true
	})
	b := make([]byte, 0, size)
	pairs.Scan(func(key string, value []byte) bool {
		b = protowire.AppendTag(b, 1, protowire.BytesType) // Snapshot.pairs
		b = protowire.AppendVarint(b, uint64(pairSize(key, value)))
		if len(key) > 0 {
			b = protowire.AppendTag(b, 1, protowire.BytesType) // Pair.key
			b = protowire.AppendString(b, key)
		}
		if len(value) > 0 {
			b = protowire.AppendTag(b, 2, protowire.BytesType) // Pair.value
			b = protowire.AppendBytes(b, value)
		}
		return true
	})
	return b, nil
}

// pairSize is the encoded size of one Pair message.
func pairSize(key string, value []byte) int {
	n := 0
	if len(key) > 0 {
		n += 1 + protowire.SizeBytes(len(key))
	}
	if len(value) > 0 {
		n += 1 + protowire.SizeBytes(len(value))
	}
	return n
}

// Restore replaces the whole store with a snapshot taken by Snapshot. On
// error the store keeps its previous contents and stays usable, so that a
// failed state transfer can be retried.
func (s *Store) Restore(snapshot []byte) error {
	var snap Snapshot
	if err := proto.Unmarshal(snapshot, &snap); err != nil {
		return errors.Join(ErrBadSnapshot, err)
	}
	pairs, err := pairsFromSnapshot(&snap)
	if err != nil {
		return err
	}
	s.pairs = pairs
	return nil
}

// pairsFromSnapshot builds the tree that a snapshot describes. It rejects
// keys that are out of order or repeated, because Snapshot never writes them
// and their presence means the bytes are not one of its snapshots. Because
// the keys arrive sorted, it loads them with Load, which appends to the
// rightmost leaf instead of searching from the root for each key.
func pairsFromSnapshot(snap *Snapshot) (*btree.Map[string, []byte], error) {
	pairs := newPairs()
	var previous []byte
	for i, p := range snap.GetPairs() {
		if i > 0 && bytes.Compare(previous, p.GetKey()) >= 0 {
			return nil, errors.Join(ErrBadSnapshot, errors.New("kv: keys not strictly increasing"))
		}
		previous = p.GetKey()
		pairs.Load(string(p.GetKey()), p.GetValue())
	}
	return pairs, nil
}

// Get returns the value of key and whether it is present, reading the store
// directly rather than through Apply, for tests and local inspection.
func (s *Store) Get(key string) ([]byte, bool) {
	value, found := s.pairs.Get(key)
	return clone(value), found
}

// Len returns the number of keys, for tests and local inspection.
func (s *Store) Len() int {
	return s.pairs.Len()
}

// PutOp encodes an operation that sets key to value.
func PutOp(key string, value []byte) []byte {
	return encodeOperation(&Operation{Kind: &Operation_Put{Put: &Put{Key: []byte(key), Value: value}}})
}

// GetOp encodes the read-only operation that reads key.
func GetOp(key string) []byte {
	return encodeOperation(&Operation{Kind: &Operation_Get{Get: &Get{Key: []byte(key)}}})
}

// DeleteOp encodes an operation that removes key.
func DeleteOp(key string) []byte {
	return encodeOperation(&Operation{Kind: &Operation_Delete{Delete: &Delete{Key: []byte(key)}}})
}

// CASOp encodes an operation that sets key to value only if key is present
// and holds expected. A nil or empty expected matches a present key whose
// value is empty, never an absent key; use PutIfAbsentOp for that.
func CASOp(key string, expected, value []byte) []byte {
	cond := &CompareAndSwap_ExpectedValue{ExpectedValue: expected}
	return encodeCAS(&CompareAndSwap{Key: []byte(key), Condition: cond, Value: value})
}

// PutIfAbsentOp encodes an operation that sets key to value only if key is
// absent. It is a compare-and-swap whose condition is absence, so its Result
// reports Swapped, and the current value when it did not swap.
func PutIfAbsentOp(key string, value []byte) []byte {
	cond := &CompareAndSwap_ExpectAbsent{ExpectAbsent: true}
	return encodeCAS(&CompareAndSwap{Key: []byte(key), Condition: cond, Value: value})
}

// encodeCAS wraps a CompareAndSwap in an Operation and encodes it.
func encodeCAS(c *CompareAndSwap) []byte {
	return encodeOperation(&Operation{Kind: &Operation_CompareAndSwap{CompareAndSwap: c}})
}

// DecodeResult decodes the bytes that Apply returned. A Result whose Error is
// set is still returned without a Go error: the op was rejected, not the
// bytes. A Go error means the bytes are not a Result at all.
func DecodeResult(b []byte) (*Result, error) {
	var r Result
	if err := proto.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// decodeOperation decodes op, reporting false rather than an error because
// Apply must not pass the protobuf library's unstable error text on.
func decodeOperation(op []byte) (*Operation, bool) {
	var o Operation
	if err := proto.Unmarshal(op, &o); err != nil {
		return nil, false
	}
	return &o, true
}

// encodeOperation encodes an operation built by one of the helpers.
func encodeOperation(o *Operation) []byte {
	return mustMarshal(o)
}

// mustMarshal encodes m. The messages of this package have only bytes, bool
// and fixed-text string fields, so encoding cannot fail; a failure is a bug
// in this package and panics rather than returning bytes replicas disagree on.
func mustMarshal(m proto.Message) []byte {
	b, err := marshal.Marshal(m)
	if err != nil {
		panic("kv: encoding cannot fail: " + err.Error())
	}
	return b
}

// clone copies a value so that a caller of Get cannot change the store
// through the slice it was given.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
