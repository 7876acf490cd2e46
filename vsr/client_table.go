package vsr

import (
	"sort"

	"github.com/vsrgo/vsr/messages"
)

// clientTable is the paper's client table: for each client, the number of its
// latest executed request and that request's result. Every replica keeps it,
// updated as it executes committed ops, so that a new primary can still tell a
// retried request from a new one: a retried request is never executed twice.
//
// inProgress is the primary's view of requests it has put in the log but not
// executed yet, so that a retry is not appended a second time. It is per-view
// state, rebuilt from the uncommitted suffix of the log when a replica becomes
// primary.
type clientTable struct {
	sessions   map[uint64]*clientSession
	inProgress map[uint64]uint64
}

type clientSession struct {
	requestNumber uint64
	result        []byte
}

func newClientTable() clientTable {
	return clientTable{sessions: map[uint64]*clientSession{}, inProgress: map[uint64]uint64{}}
}

// executed returns the session of client c if it has executed a request.
func (t *clientTable) executed(c uint64) *clientSession { return t.sessions[c] }

// record notes that client c's request s executed with result.
func (t *clientTable) record(c, s uint64, result []byte) {
	t.sessions[c] = &clientSession{requestNumber: s, result: result}
	if t.inProgress[c] <= s {
		delete(t.inProgress, c)
	}
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

// rows returns the table sorted by client ID, for a deterministic snapshot.
func (t *clientTable) rows() []*messages.ClientSession {
	rows := make([]*messages.ClientSession, 0, len(t.sessions))
	for c, s := range t.sessions {
		rows = append(rows, &messages.ClientSession{ClientId: c, RequestNumber: s.requestNumber, Result: s.result})
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].ClientId < rows[b].ClientId })
	return rows
}

// restore replaces the table with rows taken by rows.
func (t *clientTable) restore(rows []*messages.ClientSession) {
	clear(t.sessions)
	clear(t.inProgress)
	for _, row := range rows {
		t.sessions[row.ClientId] = &clientSession{requestNumber: row.RequestNumber, result: row.Result}
	}
}
