package vsr

import (
	"container/list"
	"sort"

	"github.com/vsrgo/vsr/messages"
)

// clientTable is the paper's client table: for each client, the number of its
// latest executed request and that request's result. Every replica keeps it,
// updated as it executes committed ops, so that a new primary can still tell a
// retried request from a new one: a retried request is never executed twice.
//
// Sessions are opened by a registration that goes through the log and are
// named by its op number, which the client puts on every later request
// (messages.Request.session says why numbers alone do not do). They expire
// when SessionIdleOps ops have committed since the client last executed
// anything, or when MaxSessions are open and another client registers. Both
// are decided by op numbers, so every replica holds the same sessions after
// the same op. A request from a client without a session is refused and
// never executed: without its session, nothing remembers what already ran.
// The table's memory is bounded by MaxSessions, whatever the history.
//
// inProgress is the primary's view of requests it has put in the log but not
// executed yet, so that a retry is not appended a second time. It is per-view
// state, rebuilt from the uncommitted suffix of the log when a replica becomes
// primary.
type clientTable struct {
	sessions   map[uint64]*clientSession
	byAge      *list.List // of *clientSession, least recently executed first
	inProgress map[uint64]uint64
	idleOps    uint64
	max        int
}

type clientSession struct {
	clientID uint64
	// session is the op number of the registration that opened it.
	session       uint64
	requestNumber uint64
	result        []byte
	lastOp        uint64
	elem          *list.Element
}

func newClientTable(idleOps uint64, max int) clientTable {
	return clientTable{sessions: map[uint64]*clientSession{}, byAge: list.New(),
		inProgress: map[uint64]uint64{}, idleOps: idleOps, max: max}
}

// executed returns the session of client c, if it has one.
func (t *clientTable) executed(c uint64) *clientSession { return t.sessions[c] }

// open starts client c's session with its registration, request s, at op:
// the session is named op. A session the client had is replaced, and the
// requests of the old one are refused from now on.
func (t *clientTable) open(c, s, op uint64) {
	t.record(c, s, op, nil)
	t.sessions[c].session = op
}

// record notes that client c's request s executed at op with result, in the
// session c has (a session numbered 0 is opened for a client without one,
// which only an injected bug lets execute).
func (t *clientTable) record(c, s, op uint64, result []byte) {
	sess := t.sessions[c]
	if sess == nil {
		sess = &clientSession{clientID: c}
		t.sessions[c] = sess
		sess.elem = t.byAge.PushBack(sess)
	} else {
		t.byAge.MoveToBack(sess.elem)
	}
	sess.requestNumber, sess.result, sess.lastOp = s, result, op
	t.forget(c, s)
}

// forget notes that client c's request s left the pipeline (executed, or
// refused because its session was gone), so that a retry is answered rather
// than taken for a request still in the log.
func (t *clientTable) forget(c, s uint64) {
	if t.inProgress[c] <= s {
		delete(t.inProgress, c)
	}
}

// expire removes the sessions idle since before op-idleOps, and the oldest
// ones past the table's bound. It runs after every executed op, on every
// replica, so the table is the same everywhere after the same op.
func (t *clientTable) expire(op uint64) {
	for e := t.byAge.Front(); e != nil; e = t.byAge.Front() {
		s := e.Value.(*clientSession)
		if s.lastOp+t.idleOps >= op && t.byAge.Len() <= t.max {
			return
		}
		t.remove(s)
	}
}

func (t *clientTable) remove(s *clientSession) {
	t.byAge.Remove(s.elem)
	delete(t.sessions, s.clientID)
}

// markInProgress notes the requests of an uncommitted log suffix.
func (t *clientTable) markInProgress(suffix []*messages.Entry) {
	clear(t.inProgress)
	for _, e := range suffix {
		if e.RequestNumber > t.inProgress[e.ClientId] {
			t.inProgress[e.ClientId] = e.RequestNumber
		}
	}
}

func (t *clientTable) clearInProgress() { clear(t.inProgress) }

// rows returns the table least recently executed first (ties cannot happen:
// each op number belongs to one session), for a deterministic checkpoint.
func (t *clientTable) rows() []*messages.ClientSession {
	rows := make([]*messages.ClientSession, 0, t.byAge.Len())
	for e := t.byAge.Front(); e != nil; e = e.Next() {
		s := e.Value.(*clientSession)
		rows = append(rows, &messages.ClientSession{ClientId: s.clientID, RequestNumber: s.requestNumber,
			Result: s.result, LastOp: s.lastOp, Session: s.session})
	}
	return rows
}

// restore replaces the table with rows taken by rows.
func (t *clientTable) restore(rows []*messages.ClientSession) {
	clear(t.sessions)
	clear(t.inProgress)
	t.byAge.Init()
	sorted := slicesSortedByLastOp(rows)
	for _, row := range sorted {
		if t.sessions[row.ClientId] != nil {
			continue // validCheckpoint refuses duplicates; this is belt and braces.
		}
		s := &clientSession{clientID: row.ClientId, session: row.Session, requestNumber: row.RequestNumber,
			result: row.Result, lastOp: row.LastOp}
		s.elem = t.byAge.PushBack(s)
		t.sessions[row.ClientId] = s
	}
}

func slicesSortedByLastOp(rows []*messages.ClientSession) []*messages.ClientSession {
	sorted := append([]*messages.ClientSession(nil), rows...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].LastOp < sorted[b].LastOp })
	return sorted
}

// sessionOf is the session entry e runs in: a registration opens its own.
func sessionOf(e *messages.Entry) uint64 {
	if e.Register {
		return e.OpNumber
	}
	return e.Session
}

// latest returns the session of e's client if e is the latest request it
// executed in that session (a retry of it gets the stored result), or nil.
func (t *clientTable) latest(e *messages.Entry) *clientSession {
	if s := t.sessions[e.ClientId]; s != nil && s.session == sessionOf(e) && s.requestNumber == e.RequestNumber {
		return s
	}
	return nil
}

// len is the number of open sessions.
func (t *clientTable) len() int { return len(t.sessions) }
