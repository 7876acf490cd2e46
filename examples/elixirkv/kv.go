// Package elixirkv is the key-value example of ityonemo/vsr (Vsr.ListKv, the
// VsrServer the Elixir tests run) ported to this library, as the porting
// guide in docs/porting-from-elixir.md walks through it.
//
// The Elixir module mixes three things: the state machine (handle_commit with
// read, write, delete and cas), the log (log_append and the other log_*
// callbacks over a list) and the transport (send_reply through GenServer.reply).
// Only the first survives the port. The replica keeps the log (package
// storage, or memory), Proto.Actor carries the messages, and the reply goes to
// the client actor named in the request. What is left is a
// statemachine.StateMachine: Store.
//
// The ops keep the Elixir semantics with one deliberate difference: Elixir's
// nil stands both for "absent" and for a stored nil, so {:cas, k, nil, v}
// swaps when k is absent. Go has no such value, so "expect absent" is an op
// of its own (CASAbsentOp) and a present key never compares equal to absent.
package elixirkv

import (
	"bytes"
	"errors"
	"github.com/vsrgo/vsr/examples/internal/wire"

	"github.com/tidwall/btree"

	"github.com/vsrgo/vsr/statemachine"
)

// Op kinds, the first byte of every op. Their values are part of the wire
// format: never renumber them, only add.
const (
	kindRead   byte = 1
	kindWrite  byte = 2
	kindDelete byte = 3
	kindCAS    byte = 4
	// kindCASAbsent is {:cas, key, nil, value} in Elixir: swap only if the key
	// is absent.
	kindCASAbsent byte = 5
)

// Status is the outcome of an op, the first byte of every result.
type Status byte

// The statuses Apply returns. Like the op kinds they are wire values.
const (
	// StatusOK is Elixir's :ok and {:ok, value}.
	StatusOK Status = 0
	// StatusCASFailed is Elixir's {:error, :cas_failed}: the key did not
	// hold the expected value, and nothing changed.
	StatusCASFailed Status = 1
	// StatusMalformed is returned for an op that does not decode. Elixir
	// raises a FunctionClauseError in handle_commit for such an op, which
	// crashes every replica the same way; here Apply must not fail, so the
	// op is committed, changes nothing, and its caller learns why.
	StatusMalformed Status = 2
)

// Result is what Apply returns for every op, decoded by DecodeResult.
type Result struct {
	Status Status
	// Found and Value are set by a read: Found says whether the key was
	// present (Elixir returns {:ok, nil} when it was not).
	Found bool
	Value []byte
}

// ErrBadResult is returned by DecodeResult for bytes that Apply did not make.
var ErrBadResult = errors.New("elixirkv: bad result")

// ErrBadSnapshot is returned by Restore for bytes that Snapshot did not make.
var ErrBadSnapshot = errors.New("elixirkv: bad snapshot")

// snapshotVersion is the first byte of a snapshot, so that a later format
// can be told from this one.
const snapshotVersion byte = 1

// Store is the Elixir %Vsr.ListKv{data: %{}} as a replicated state machine.
// Like every state machine it is called from one goroutine at a time, except
// for the function Checkpoint returns.
type Store struct {
	// data is a copy-on-write B-tree, not a Go map. An Elixir map is
	// immutable, so get_state/1 can hand it out and the server keeps
	// changing its own; a Go map would have to be copied whole for the same
	// effect, which the Checkpointer contract forbids. The tree's Copy is
	// constant-time and leaves the copy untouched by later writes, and the
	// tree keeps its keys sorted, which is the order a snapshot needs: two
	// replicas with the same pairs produce the same bytes whatever order the
	// pairs arrived in. Values are never modified in place after they are
	// stored, so a copy may share them.
	data *btree.Map[string, []byte]
}

// Compile-time proof that Store is a state machine, and one that can be
// checkpointed without stalling its replica.
var (
	_ statemachine.StateMachine = (*Store)(nil)
	_ statemachine.Checkpointer = (*Store)(nil)
)

// New returns an empty Store as a statemachine.StateMachine, so that it can be
// passed as supervisor.GroupConfig.NewStateMachine. It plays the part of the
// Elixir init/1 callback, without the log.
func New() statemachine.StateMachine { return NewStore() }

// NewStore returns an empty Store with its concrete type, for tests.
func NewStore() *Store { return &Store{data: btree.NewMap[string, []byte](0)} }

// ReadOp encodes {:read, key}. It is the only read-only op, so it may be sent
// with Client.Read or Client.ReadStale as well as Client.Execute.
func ReadOp(key string) []byte { return wire.AppendString([]byte{kindRead}, key) }

// WriteOp encodes {:write, key, value}.
func WriteOp(key string, value []byte) []byte {
	return wire.AppendBytes(wire.AppendString([]byte{kindWrite}, key), value)
}

// DeleteOp encodes {:delete, key}. Deleting an absent key succeeds, as
// Map.delete does.
func DeleteOp(key string) []byte { return wire.AppendString([]byte{kindDelete}, key) }

// CASOp encodes {:cas, key, old, value}: set key to value if it is present
// and holds old.
func CASOp(key string, old, value []byte) []byte {
	return wire.AppendBytes(wire.AppendBytes(wire.AppendString([]byte{kindCAS}, key), old), value)
}

// CASAbsentOp encodes {:cas, key, nil, value}: set key to value if it is
// absent.
func CASAbsentOp(key string, value []byte) []byte {
	return wire.AppendBytes(wire.AppendString([]byte{kindCASAbsent}, key), value)
}

// Apply is handle_commit/2. It decodes op, executes it and returns an
// encoded Result. It never panics: an op that does not decode gets
// StatusMalformed, so that every replica reaches the same verdict.
func (s *Store) Apply(op []byte) []byte {
	if len(op) == 0 {
		return encodeResult(Result{Status: StatusMalformed})
	}
	r := wire.NewReader(op[1:])
	switch op[0] {
	case kindRead:
		key := r.Text()
		if !r.Done() {
			break
		}
		value, found := s.data.Get(key)
		return encodeResult(Result{Status: StatusOK, Found: found, Value: value})
	case kindWrite:
		key, value := r.Text(), r.Bytes()
		if !r.Done() {
			break
		}
		s.data.Set(key, value)
		return encodeResult(Result{Status: StatusOK})
	case kindDelete:
		key := r.Text()
		if !r.Done() {
			break
		}
		s.data.Delete(key)
		return encodeResult(Result{Status: StatusOK})
	case kindCAS:
		key, old, value := r.Text(), r.Bytes(), r.Bytes()
		if !r.Done() {
			break
		}
		if current, found := s.data.Get(key); !found || !bytes.Equal(current, old) {
			return encodeResult(Result{Status: StatusCASFailed})
		}
		s.data.Set(key, value)
		return encodeResult(Result{Status: StatusOK})
	case kindCASAbsent:
		key, value := r.Text(), r.Bytes()
		if !r.Done() {
			break
		}
		if _, found := s.data.Get(key); found {
			return encodeResult(Result{Status: StatusCASFailed})
		}
		s.data.Set(key, value)
		return encodeResult(Result{Status: StatusOK})
	}
	return encodeResult(Result{Status: StatusMalformed})
}

// ReadOnly reports whether op is a well-formed read. In Elixir every op,
// reads included, goes through the log and handle_commit; here only ops this
// says are read-only may be served by Client.Read and Client.ReadStale
// without a log entry. A malformed op is not read-only, so that it always
// goes through the log and gets its StatusMalformed from Apply.
func (s *Store) ReadOnly(op []byte) bool {
	if len(op) == 0 || op[0] != kindRead {
		return false
	}
	r := wire.NewReader(op[1:])
	_ = r.Text()
	return r.Done()
}

// Snapshot is get_state/1: the whole store as bytes. Elixir sends the live
// map in NewState; here the bytes go into checkpoints, state transfer and
// recovery, and the status digest compares them across replicas, so they
// must be identical on replicas with the same pairs.
func (s *Store) Snapshot() ([]byte, error) { return encodeSnapshot(s.data) }

// Checkpoint captures the store in constant time and returns the function
// that encodes it, byte for byte as Snapshot would have now. That function
// may run on another goroutine while Apply goes on changing the live tree:
// Copy gives the two trees separate identities, so a write to the live tree
// copies each shared node before changing it, and the captured tree is only
// ever read.
func (s *Store) Checkpoint() func() ([]byte, error) {
	frozen := s.data.Copy()
	return func() ([]byte, error) { return encodeSnapshot(frozen) }
}

// Restore is set_state/2: it replaces the whole store with a snapshot. It
// checks the bytes are one of Snapshot's (version, count, strictly
// increasing keys, nothing left over) and on any error keeps the store as it
// was, so that a failed state transfer leaves a usable replica.
func (s *Store) Restore(snapshot []byte) error {
	r := wire.NewReader(snapshot)
	if r.Byte() != snapshotVersion {
		return ErrBadSnapshot
	}
	n := r.Uvarint()
	data := btree.NewMap[string, []byte](0)
	var previous string
	for i := uint64(0); i < n && !r.Bad(); i++ {
		key, value := r.Text(), r.Bytes()
		if i > 0 && key <= previous {
			return ErrBadSnapshot
		}
		previous = key
		// Load appends to the rightmost leaf, which the sorted keys allow.
		data.Load(key, value)
	}
	if !r.Done() {
		return ErrBadSnapshot
	}
	s.data = data
	return nil
}

// Get returns the value of key, for tests and local inspection.
func (s *Store) Get(key string) ([]byte, bool) {
	v, ok := s.data.Get(key)
	return bytes.Clone(v), ok
}

// Len returns the number of keys, for tests and local inspection.
func (s *Store) Len() int { return s.data.Len() }

// encodeSnapshot writes the version, the number of pairs and every pair in
// ascending key order, which is the order the tree iterates in.
func encodeSnapshot(data *btree.Map[string, []byte]) ([]byte, error) {
	b := []byte{snapshotVersion}
	b = wire.AppendUvarint(b, uint64(data.Len()))
	data.Scan(func(key string, value []byte) bool {
		b = wire.AppendBytes(wire.AppendString(b, key), value)
		return true
	})
	return b, nil
}

// encodeResult writes a Result: status, then for a success the found flag and
// the value. A failure carries nothing else.
func encodeResult(res Result) []byte {
	b := []byte{byte(res.Status)}
	if res.Status != StatusOK {
		return b
	}
	found := byte(0)
	if res.Found {
		found = 1
	}
	return wire.AppendBytes(append(b, found), res.Value)
}

// DecodeResult decodes the bytes that Apply returned. A Go error means the
// bytes are not a result at all; a refused op is a Result whose Status says
// why.
func DecodeResult(b []byte) (Result, error) {
	r := wire.NewReader(b)
	res := Result{Status: Status(r.Byte())}
	if res.Status == StatusOK {
		found := r.Byte()
		res.Found, res.Value = found == 1, r.Bytes()
		if found > 1 {
			r.Fail()
		}
	}
	if !r.Done() || res.Status > StatusMalformed {
		return Result{}, ErrBadResult
	}
	return res, nil
}
