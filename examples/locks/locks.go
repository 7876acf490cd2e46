// Package locks is a lock service with fencing tokens, written as a
// statemachine.StateMachine: the custom state machine of the porting guide
// (docs/porting-from-elixir.md).
//
// A client acquires a named lock for an owner, optionally with a lease, and
// gets a fencing token: a number that grows with every grant the service
// makes, across all locks, across view changes and restarts, because it is
// part of the replicated state. The holder passes the token to whatever the
// lock protects, which refuses any token lower than the highest it has seen;
// and anyone can ask the service whether a token is still the current grant
// of its lock (Check). A holder that paused past its lease, and whose lock
// went to someone else meanwhile, is refused on its stale token. This is the
// fencing-token design Martin Kleppmann describes in "How to do distributed
// locking".
//
// Time. The state machine may not read a clock: every replica must reach the
// same result from the same ops. So each Acquire and Check carries the
// client's reading of the time (in a unit the clients agree on, such as Unix
// milliseconds), and the service's clock is the largest reading any Acquire
// has carried, which never goes backwards. A lease expires when that clock
// passes its end. Clock error among clients shifts when a lease ends, so it
// affects how soon a dead holder's lock is freed, never safety: at any moment
// a lock has one current token, and every older one is refused.
package locks

import (
	"errors"
	"github.com/vsrgo/vsr/examples/internal/wire"
	"math"
	"slices"

	"github.com/vsrgo/vsr/statemachine"
)

// Op kinds, the first byte of every op. They are wire values: never
// renumber them, only add.
const (
	kindAcquire byte = 1
	kindRelease byte = 2
	kindCheck   byte = 3
)

// Status is the outcome of an op, the first field of every Result.
type Status byte

// The statuses Apply returns. Like the op kinds they are wire values.
const (
	// StatusOK: the lock was granted or renewed (Acquire), released
	// (Release), or the token is the lock's current, live grant (Check).
	StatusOK Status = 0
	// StatusBusy: Acquire found the lock held by another owner whose lease
	// has not expired. The Result names the holder.
	StatusBusy Status = 1
	// StatusStale: the token given to Release or Check is not the lock's
	// current grant, or that grant's lease has expired. The Result names the
	// current holder, if any.
	StatusStale Status = 2
	// StatusMalformed: the op does not decode, or names no lock or owner. It
	// changes nothing.
	StatusMalformed Status = 3
)

// Result is what Apply returns for every op, decoded by DecodeResult.
type Result struct {
	Status Status
	// Token is the fencing token of the grant the Result is about: the one
	// just made or renewed (Acquire), the one checked (Check), or the
	// current holder's (Busy, Stale). Zero when the lock is free.
	Token uint64
	// Owner is that grant's owner, empty when the lock is free.
	Owner string
	// Expires is when that grant's lease ends, in client time; zero for a
	// grant held until it is released.
	Expires uint64
}

// ErrBadResult is returned by DecodeResult for bytes that Apply did not make.
var ErrBadResult = errors.New("locks: bad result")

// ErrBadSnapshot is returned by Restore for bytes that Snapshot did not make.
var ErrBadSnapshot = errors.New("locks: bad snapshot")

// snapshotVersion is the first byte of a snapshot.
const snapshotVersion byte = 1

// Service is the replicated lock table. It does not implement
// statemachine.Checkpointer: a lock table is small, so the replica's
// Snapshot call, which stalls it for as long as encoding takes, costs
// little. A service holding millions of locks would keep them in a
// copy-on-write structure and implement Checkpointer, as package elixirkv
// does.
type Service struct {
	// now is the service's clock: the largest client time an Acquire has
	// carried.
	now uint64
	// lastToken is the last fencing token issued; the next grant gets one
	// more. It is never reset, so tokens never repeat, even for a lock
	// released and taken again.
	lastToken uint64
	// locks holds the current grant of every lock that has one. A released
	// lock is removed; an expired one stays until it is acquired again or
	// released, which is harmless because Check and Acquire treat it as
	// free. A Go map is fine here: nothing iterates over it except Snapshot,
	// which sorts the names first.
	locks map[string]*grant
}

// grant is one lock's current holder.
type grant struct {
	owner   string
	token   uint64
	expires uint64 // 0: held until released
}

// expired reports whether the grant's lease has ended at time t.
func (g *grant) expired(t uint64) bool { return g.expires != 0 && t >= g.expires }

// Compile-time proof that Service is a state machine.
var _ statemachine.StateMachine = (*Service)(nil)

// New returns an empty Service as a statemachine.StateMachine, for
// supervisor.GroupConfig.NewStateMachine.
func New() statemachine.StateMachine { return NewService() }

// NewService returns an empty Service with its concrete type, for tests.
func NewService() *Service { return &Service{locks: map[string]*grant{}} }

// AcquireOp encodes a request by owner for the lock name at client time now.
// A lease of zero holds the lock until it is released; otherwise the lock is
// free again once the service's clock reaches now+lease. An owner that
// already holds the lock renews it: same token, new lease. Retrying an
// Acquire whose reply was lost is therefore safe even as a new request.
func AcquireOp(name, owner string, lease, now uint64) []byte {
	b := wire.AppendString(wire.AppendString([]byte{kindAcquire}, name), owner)
	return wire.AppendUvarint(wire.AppendUvarint(b, lease), now)
}

// ReleaseOp encodes the release of the grant of name whose token is token.
// A stale token releases nothing, so a holder that lost its lock cannot
// release its successor's.
func ReleaseOp(name string, token uint64) []byte {
	return wire.AppendUvarint(wire.AppendString([]byte{kindRelease}, name), token)
}

// CheckOp encodes the question "is token the current, live grant of name at
// client time now?". It is read-only: send it with Client.Read for an
// answer that reflects every grant acknowledged before the call.
func CheckOp(name string, token, now uint64) []byte {
	return wire.AppendUvarint(wire.AppendUvarint(wire.AppendString([]byte{kindCheck}, name), token), now)
}

// Apply executes op and returns an encoded Result. It never panics: an op
// that does not decode gets StatusMalformed and changes nothing, so that
// every replica reaches the same verdict.
func (s *Service) Apply(op []byte) []byte {
	if len(op) == 0 {
		return encodeResult(Result{Status: StatusMalformed})
	}
	r := wire.NewReader(op[1:])
	switch op[0] {
	case kindAcquire:
		name, owner, lease, now := r.Text(), r.Text(), r.Uvarint(), r.Uvarint()
		if r.Done() && name != "" && owner != "" {
			return encodeResult(s.acquire(name, owner, lease, now))
		}
	case kindRelease:
		name, token := r.Text(), r.Uvarint()
		if r.Done() && name != "" {
			return encodeResult(s.release(name, token))
		}
	case kindCheck:
		name, token, now := r.Text(), r.Uvarint(), r.Uvarint()
		if r.Done() && name != "" {
			return encodeResult(s.check(name, token, now))
		}
	}
	return encodeResult(Result{Status: StatusMalformed})
}

// acquire grants, renews or refuses a lock. It is the one op that advances
// the clock: a Check must not (it is read-only), and a Release needs no time.
func (s *Service) acquire(name, owner string, lease, now uint64) Result {
	s.now = max(s.now, now)
	g := s.locks[name]
	if g != nil && !g.expired(s.now) {
		if g.owner != owner {
			return resultOf(StatusBusy, g)
		}
		g.expires = leaseEnd(s.now, lease)
		return resultOf(StatusOK, g)
	}
	// The lock is free, or its holder's lease has ended: a new grant, with
	// a token above every token issued before.
	s.lastToken++
	g = &grant{owner: owner, token: s.lastToken, expires: leaseEnd(s.now, lease)}
	s.locks[name] = g
	return resultOf(StatusOK, g)
}

// release frees the lock if token is its current grant's, even if the lease
// has ended meanwhile: that grant is still the newest, so freeing it takes
// nothing from anyone.
func (s *Service) release(name string, token uint64) Result {
	g := s.locks[name]
	if g == nil || g.token != token {
		return resultOf(StatusStale, g)
	}
	delete(s.locks, name)
	return Result{Status: StatusOK, Token: token}
}

// check is the fencing check. It reads the clock as the later of the
// service's and the caller's, without storing it, so that it changes
// nothing, as a read-only op must.
func (s *Service) check(name string, token, now uint64) Result {
	g := s.locks[name]
	if g == nil || g.expired(max(s.now, now)) {
		return Result{Status: StatusStale}
	}
	if g.token != token {
		return resultOf(StatusStale, g)
	}
	return resultOf(StatusOK, g)
}

// resultOf is a Result about grant g, or about a free lock if g is nil.
func resultOf(status Status, g *grant) Result {
	if g == nil {
		return Result{Status: status}
	}
	return Result{Status: status, Token: g.token, Owner: g.owner, Expires: g.expires}
}

// leaseEnd is when a lease taken at now ends: zero (never) for no lease,
// and at most the largest time, rather than a sum that wrapped around.
func leaseEnd(now, lease uint64) uint64 {
	if lease == 0 {
		return 0
	}
	if now > math.MaxUint64-lease {
		return math.MaxUint64
	}
	return now + lease
}

// ReadOnly reports whether op is a well-formed Check. A malformed op is not,
// so that it goes through the log and gets StatusMalformed from Apply.
func (s *Service) ReadOnly(op []byte) bool {
	if len(op) == 0 || op[0] != kindCheck {
		return false
	}
	r := wire.NewReader(op[1:])
	name := r.Text()
	r.Uvarint()
	r.Uvarint()
	return r.Done() && name != ""
}

// Snapshot encodes the clock, the last token and every grant, sorted by lock
// name: Go randomizes map iteration order, and replicas with the same locks
// must produce the same bytes.
func (s *Service) Snapshot() ([]byte, error) {
	names := make([]string, 0, len(s.locks))
	for name := range s.locks {
		names = append(names, name)
	}
	slices.Sort(names)
	b := wire.AppendUvarint(wire.AppendUvarint([]byte{snapshotVersion}, s.now), s.lastToken)
	b = wire.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		g := s.locks[name]
		b = wire.AppendString(wire.AppendString(b, name), g.owner)
		b = wire.AppendUvarint(wire.AppendUvarint(b, g.token), g.expires)
	}
	return b, nil
}

// Restore replaces the whole service with a snapshot. It accepts only what
// Snapshot writes (names strictly increasing, owners present, distinct
// tokens no greater than the last token issued, nothing left over), because
// anything else would let a corrupt snapshot hand out a token twice. On
// error the service is unchanged.
func (s *Service) Restore(snapshot []byte) error {
	r := wire.NewReader(snapshot)
	if r.Byte() != snapshotVersion {
		return ErrBadSnapshot
	}
	now, lastToken, n := r.Uvarint(), r.Uvarint(), r.Uvarint()
	locks := map[string]*grant{}
	tokens := map[uint64]bool{}
	previous := ""
	for i := uint64(0); i < n && !r.Bad(); i++ {
		name, owner, token, expires := r.Text(), r.Text(), r.Uvarint(), r.Uvarint()
		if name <= previous || owner == "" || token == 0 || token > lastToken || tokens[token] {
			return ErrBadSnapshot
		}
		previous, tokens[token] = name, true
		locks[name] = &grant{owner: owner, token: token, expires: expires}
	}
	if !r.Done() {
		return ErrBadSnapshot
	}
	s.now, s.lastToken, s.locks = now, lastToken, locks
	return nil
}

// encodeResult writes every field of a Result, whatever its status.
func encodeResult(res Result) []byte {
	b := wire.AppendUvarint([]byte{byte(res.Status)}, res.Token)
	return wire.AppendUvarint(wire.AppendString(b, res.Owner), res.Expires)
}

// DecodeResult decodes the bytes that Apply returned. A Go error means the
// bytes are not a result at all; a refused op is a Result whose Status says
// why.
func DecodeResult(b []byte) (Result, error) {
	r := wire.NewReader(b)
	res := Result{Status: Status(r.Byte()), Token: r.Uvarint(), Owner: r.Text(), Expires: r.Uvarint()}
	if !r.Done() || res.Status > StatusMalformed {
		return Result{}, ErrBadResult
	}
	return res, nil
}
