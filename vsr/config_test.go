package vsr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// ---------------------------------------------------------------------------
// Config.Validate and New.

func uValidConfig() Config {
	return Config{ClusterID: uCluster, ReplicaCount: 3, ReplicaIndex: 0, StateMachine: kv.New()}
}

func TestConfig_ValidateAcceptsMinimalConfig(t *testing.T) {
	require.NoError(t, uValidConfig().Validate())
	c := uValidConfig()
	c.ReplicaCount, c.ReplicaIndex = 1, 0
	require.NoError(t, c.Validate())
}

func TestConfig_ValidateRejectsBadConfigsWithMatchingSentinel(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		want   error
	}{
		{"even n", func(c *Config) { c.ReplicaCount = 4 }, ErrReplicaCount},
		{"n=0", func(c *Config) { c.ReplicaCount = 0 }, ErrReplicaCount},
		{"negative n", func(c *Config) { c.ReplicaCount = -3 }, ErrReplicaCount},
		{"more than 255 replicas", func(c *Config) { c.ReplicaCount = 257 }, ErrTooManyReplicas},
		{"index = n", func(c *Config) { c.ReplicaIndex = 3 }, ErrReplicaIndex},
		{"negative index", func(c *Config) { c.ReplicaIndex = -1 }, ErrReplicaIndex},
		{"nil state machine", func(c *Config) { c.StateMachine = nil }, ErrNoStateMachine},
		{"negative heartbeat", func(c *Config) { c.HeartbeatTicks = -1 }, ErrTiming},
		{"negative inactivity", func(c *Config) { c.InactivityTicks = -1 }, ErrTiming},
		{"negative view change", func(c *Config) { c.ViewChangeTicks = -1 }, ErrTiming},
		{"heartbeat = inactivity", func(c *Config) { c.HeartbeatTicks, c.InactivityTicks = 10, 10 }, ErrTiming},
		{"heartbeat > default inactivity", func(c *Config) { c.HeartbeatTicks = DefaultInactivityTicks + 1 }, ErrTiming},
		{"negative max batch", func(c *Config) { c.MaxBatch = -1 }, ErrBatch},
		{"recovering with n=1", func(c *Config) { c.ReplicaCount, c.Recovering = 1, true }, ErrCannotRecover},
		{"max batch past the protocol bound", func(c *Config) { c.MaxBatch = MaxPrepareEntries + 1 }, ErrBatch},
		{"negative checkpoint interval", func(c *Config) { c.CheckpointInterval = -1 }, ErrHistoryBounds},
		{"negative pipeline", func(c *Config) { c.PipelineMax = -1 }, ErrHistoryBounds},
		{"pipeline past the protocol bound", func(c *Config) { c.PipelineMax = MaxPrepareEntries + 1 }, ErrHistoryBounds},
		{"message bound below the minimum", func(c *Config) { c.MaxMessageBytes = MinMaxMessageBytes - 1 }, ErrHistoryBounds},
		{"message bound above the maximum", func(c *Config) { c.MaxMessageBytes = MaxMaxMessageBytes + 1 }, ErrHistoryBounds},
		{"negative max sessions", func(c *Config) { c.MaxSessions = -1 }, ErrHistoryBounds},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := uValidConfig()
			tc.modify(&c)
			err := c.Validate()
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
			_, err = New(c)
			assert.True(t, errors.Is(err, tc.want), "New: got %v, want %v", err, tc.want)
		})
	}
}

func TestConfig_RecoveringWithThreeReplicasIsValid(t *testing.T) {
	c := uValidConfig()
	c.Recovering = true
	require.NoError(t, c.Validate())
}

func TestNew_AppliesDefaultTiming(t *testing.T) {
	r, err := New(uValidConfig())
	require.NoError(t, err)
	assert.Equal(t, DefaultHeartbeatTicks, r.cfg.HeartbeatTicks)
	assert.Equal(t, DefaultInactivityTicks, r.cfg.InactivityTicks)
	assert.Equal(t, DefaultViewChangeTicks, r.cfg.ViewChangeTicks)
	assert.Equal(t, DefaultJitterTicks, r.cfg.JitterTicks)
	assert.Equal(t, DefaultMaxBatch, r.cfg.MaxBatch)
	assert.Equal(t, 1, r.f)
}

func TestNew_AppliesDefaultHistoryBounds(t *testing.T) {
	r, err := New(uValidConfig())
	require.NoError(t, err)
	assert.Equal(t, DefaultCheckpointInterval, r.cfg.CheckpointInterval)
	assert.Equal(t, DefaultTrailingOps, r.cfg.TrailingOps)
	assert.Equal(t, DefaultPipelineMax, r.cfg.PipelineMax)
	assert.Equal(t, DefaultMaxMessageBytes, r.cfg.MaxMessageBytes)
	assert.Equal(t, uint64(DefaultSessionIdleOps), r.cfg.SessionIdleOps)
	assert.Equal(t, DefaultMaxSessions, r.cfg.MaxSessions)

	c := uValidConfig()
	c.TrailingOps, c.MaxMessageBytes = -1, MinMaxMessageBytes
	r, err = New(c)
	require.NoError(t, err)
	assert.Equal(t, 0, r.cfg.TrailingOps, "negative keeps no trailing ops")
	assert.Equal(t, MinMaxMessageBytes, r.cfg.MaxMessageBytes)
	assert.Equal(t, MinMaxMessageBytes/4, r.cfg.maxEntryBytes())
	assert.Equal(t, MinMaxMessageBytes/2, r.cfg.pipelineBytes())
	assert.LessOrEqual(t, r.cfg.pipelineBytes(), r.cfg.entriesBytes(), "a view change's suffix fits in one message")
}

func TestNew_KeepsExplicitTimingAndNegativeJitter(t *testing.T) {
	c := uValidConfig()
	c.HeartbeatTicks, c.InactivityTicks, c.ViewChangeTicks, c.JitterTicks, c.MaxBatch = 2, 9, 7, -1, 3
	r, err := New(c)
	require.NoError(t, err)
	assert.Equal(t, 2, r.cfg.HeartbeatTicks)
	assert.Equal(t, 9, r.cfg.InactivityTicks)
	assert.Equal(t, 7, r.cfg.ViewChangeTicks)
	assert.Equal(t, -1, r.cfg.JitterTicks)
	assert.Equal(t, 3, r.cfg.MaxBatch)
	assert.Equal(t, 0, r.jitter(), "negative jitter means none")
}

func TestNew_StartsNormalInViewZeroOrRecovering(t *testing.T) {
	r, _ := uReplica(t, 3, 1)
	assert.Equal(t, StatusNormal, r.Status())
	assert.Equal(t, uint64(0), r.View())
	assert.Equal(t, 0, r.Primary())
	assert.Equal(t, uint64(0), r.OpNumber())

	rec, _ := uReplica(t, 3, 1, uRecovering)
	assert.Equal(t, StatusRecovering, rec.Status())
	assert.NotNil(t, rec.recovery.responses)
}

// ---------------------------------------------------------------------------
// Helpers shared by the unit tests of this package (prefixed u so that they
// cannot clash with the scenario harness).

const uCluster uint64 = 11

var uAddr = &messages.ClientAddress{Address: "unit", Id: "client"}

// uSM is a kv.Store that counts Apply calls and can refuse to snapshot.
type uSM struct {
	*kv.Store
	applies int
	noSnap  bool
}

func (s *uSM) Apply(op []byte) []byte {
	s.applies++
	return s.Store.Apply(op)
}

func (s *uSM) Snapshot() ([]byte, error) {
	if s.noSnap {
		return nil, errors.New("unit: no snapshot")
	}
	return s.Store.Snapshot()
}

// Checkpoint honours noSnap too: kv.Store is a statemachine.Checkpointer,
// and without this the embedded method would checkpoint a store that
// refuses to snapshot.
func (s *uSM) Checkpoint() func() ([]byte, error) {
	if s.noSnap {
		return func() ([]byte, error) { return nil, errors.New("unit: no snapshot") }
	}
	return s.Store.Checkpoint()
}

// uRecovering makes a replica start in recovering status.
func uRecovering(c *Config) { c.Recovering = true }

// uReplica makes replica i of n with small, jitter-free timing. Its client
// table holds an open session for every client the unit tests use (see
// uSessionClients), as if each had registered before the history a test
// starts from: a write needs a session, and these tests are about what
// happens to writes, not about sessions. uBareReplica leaves the table empty.
func uReplica(t *testing.T, n, i int, opts ...func(*Config)) (*Replica, *uSM) {
	t.Helper()
	r, sm := uBareReplica(t, n, i, opts...)
	uOpenSessions(r, uSessionClients()...)
	return r, sm
}

// uBareReplica is uReplica with an empty client table.
func uBareReplica(t *testing.T, n, i int, opts ...func(*Config)) (*Replica, *uSM) {
	t.Helper()
	sm := &uSM{Store: kv.NewStore()}
	c := Config{ClusterID: uCluster, ReplicaCount: n, ReplicaIndex: i, StateMachine: sm, Seed: uint64(100 + i),
		HeartbeatTicks: 2, InactivityTicks: 10, ViewChangeTicks: 10, JitterTicks: -1}
	for _, o := range opts {
		o(&c)
	}
	r, err := New(c)
	require.NoError(t, err)
	uForgetPrimary(r)
	return r, sm
}

// uForgetPrimary makes r a replica that has not heard from its primary for an
// inactivity timeout, so that it joins a view change for a later view at once,
// as in the paper. The unit tests of the view change start from there; the
// tests in handlers_liveness_test.go cover the replica that still hears its
// primary.
func uForgetPrimary(r *Replica) { r.primaryHeardAt = r.ticks - r.cfg.InactivityTicks }

// uRegistered is the request number of the registration that opened the
// sessions of uSessionClients: their first write is request uRegistered+1.
const uRegistered = 1

// uSessionClients are the clients with a session in every unit-test replica:
// 1..20 (requests made by uReq) and 101..164 (entries made by uEntry).
func uSessionClients() []uint64 {
	var cs []uint64
	for c := uint64(1); c <= 20; c++ {
		cs = append(cs, c)
	}
	for c := uint64(101); c <= 164; c++ {
		cs = append(cs, c)
	}
	return cs
}

// uSession names the sessions uOpenSessions opens; uReq and uEntry carry it.
const uSession = 1

// uOpenSessions opens a session for each client in r's table, as if each
// had registered at op uSession with request number uRegistered, the same
// on every replica.
func uOpenSessions(r *Replica, clients ...uint64) {
	for _, c := range clients {
		r.clientTable.open(c, uRegistered, uSession)
	}
}

// uStep steps m and checks the invariants.
func uStep(t *testing.T, r *Replica, m proto.Message) Output {
	t.Helper()
	out := r.Step(m)
	require.NoError(t, r.CheckInvariants())
	return out
}

// uTicks ticks r k times and returns every output concatenated.
func uTicks(t *testing.T, r *Replica, k int) Output {
	t.Helper()
	var all Output
	for j := 0; j < k; j++ {
		out := r.Tick()
		require.NoError(t, r.CheckInvariants())
		all.Messages = append(all.Messages, out.Messages...)
		all.Replies = append(all.Replies, out.Replies...)
		all.Committed = append(all.Committed, out.Committed...)
	}
	return all
}

func uReq(client, number uint64, op []byte) *messages.Request {
	return &messages.Request{ClusterId: uCluster, ClientId: client, RequestNumber: number, Operation: op, ReplyTo: uAddr,
		Session: uSession}
}

func uRead(client, number uint64, key string, mode messages.ReadMode) *messages.Request {
	m := uReq(client, number, kv.GetOp(key))
	m.ReadMode = mode
	return m
}

// uEntry is op number op of view v: client 100+op puts "k<op>" = "v<op>",
// its first write after its registration.
func uEntry(op, v uint64) *messages.Entry {
	return &messages.Entry{OpNumber: op, View: v, ClientId: 100 + op, RequestNumber: uRegistered + 1,
		Operation: kv.PutOp(fmt.Sprintf("k%d", op), []byte(fmt.Sprintf("v%d", op))), ReplyTo: uAddr, Session: uSession}
}

// uLog is entries first..last of view v.
func uLog(first, last, v uint64) []*messages.Entry {
	var log []*messages.Entry
	for op := first; op <= last; op++ {
		log = append(log, uEntry(op, v))
	}
	return log
}

func uPrepare(view uint64, from int, commit uint64, entries ...*messages.Entry) *messages.Prepare {
	return &messages.Prepare{ClusterId: uCluster, View: view, Entries: entries, CommitNumber: commit, Replica: uint32(from)}
}

func uPrepareOK(view, op uint64, from int) *messages.PrepareOK {
	return &messages.PrepareOK{ClusterId: uCluster, View: view, OpNumber: op, Replica: uint32(from)}
}

func uCommit(view, commit uint64, from int) *messages.Commit {
	return &messages.Commit{ClusterId: uCluster, View: view, CommitNumber: commit, Replica: uint32(from)}
}

func uSVC(view uint64, from int) *messages.StartViewChange {
	return &messages.StartViewChange{ClusterId: uCluster, View: view, Replica: uint32(from)}
}

// uDVC is the DoViewChange of a replica whose log is log (ops 1..len(log))
// with commit number commit: it carries the uncommitted suffix, log[commit:].
func uDVC(view uint64, from int, lastNormal, commit uint64, log []*messages.Entry) *messages.DoViewChange {
	return &messages.DoViewChange{ClusterId: uCluster, View: view, Entries: uSuffix(log, commit),
		LastNormalView: lastNormal, OpNumber: uint64(len(log)), CommitNumber: commit, Replica: uint32(from)}
}

// uSuffix is the entries of log (ops 1..len(log)) after op commit.
func uSuffix(log []*messages.Entry, commit uint64) []*messages.Entry {
	if commit >= uint64(len(log)) {
		return nil
	}
	return log[commit:]
}

// uStartView is a StartView carrying the whole log (ops 1..len(log)).
func uStartView(view uint64, from int, commit uint64, log []*messages.Entry) *messages.StartView {
	return &messages.StartView{ClusterId: uCluster, View: view, Entries: log, OpNumber: uint64(len(log)),
		CommitNumber: commit, Replica: uint32(from)}
}

// uStartViewFrom is a StartView of the log (ops 1..len(log)) carrying only
// its entries after op after.
func uStartViewFrom(view uint64, from int, commit, after uint64, log []*messages.Entry) *messages.StartView {
	m := uStartView(view, from, commit, log)
	m.Entries = log[after:]
	return m
}

func uNewState(view uint64, from int, commit uint64, entries []*messages.Entry, op uint64) *messages.NewState {
	return &messages.NewState{ClusterId: uCluster, View: view, Entries: entries, OpNumber: op,
		CommitNumber: commit, Replica: uint32(from)}
}

// uServeCommitted answers the committed_only GetState that r sent in out as
// a replica holding log (ops 1..len(log)) with commit number commit would,
// and returns r's output. It fails the test if r sent no such GetState.
func uServeCommitted(t *testing.T, r *Replica, out Output, log []*messages.Entry, commit uint64) Output {
	t.Helper()
	var req *uSent[*messages.GetState]
	for _, gs := range uMsgs[*messages.GetState](out) {
		if gs.Msg.CommittedOnly {
			req = &gs
		}
	}
	require.NotNil(t, req, "no committed_only GetState in %+v", out.Messages)
	ns := uNewState(req.Msg.View, req.To, commit, log[req.Msg.OpNumber:commit], uint64(len(log)))
	ns.CommittedOnly = true
	return uStep(t, r, ns)
}

// uSent is a message of type T in an output, with its destination.
type uSent[T proto.Message] struct {
	To  int
	Msg T
}

// uMsgs returns the messages of type T in out, in order.
func uMsgs[T proto.Message](out Output) []uSent[T] {
	var got []uSent[T]
	for _, env := range out.Messages {
		if m, ok := env.Msg.(T); ok {
			got = append(got, uSent[T]{To: env.To, Msg: m})
		}
	}
	return got
}

// uTargets returns the destinations of sent messages.
func uTargets[T proto.Message](sent []uSent[T]) []int {
	var to []int
	for _, s := range sent {
		to = append(to, s.To)
	}
	return to
}

// uBackup makes backup i of n, normal in view 0, holding ops 1..ops of the
// view-0 log with commit number commit.
func uBackup(t *testing.T, n, i int, ops, commit uint64, opts ...func(*Config)) (*Replica, *uSM) {
	t.Helper()
	require.NotEqual(t, 0, i)
	r, sm := uReplica(t, n, i, opts...)
	if ops > 0 {
		uStep(t, r, uPrepare(0, 0, commit, uLog(1, ops, 0)...))
	}
	require.Equal(t, ops, r.OpNumber())
	require.Equal(t, commit, r.CommitNumber())
	uForgetPrimary(r)
	return r, sm
}

// uPrimary makes replica 0 of n, primary of view 0, with committed ops
// committed by f PrepareOKs and uncommitted more on top (the first writes,
// request uRegistered+1, of clients 1, 2, ..., each putting "k<op>" =
// "v<op>").
func uPrimary(t *testing.T, n int, committed, uncommitted int, opts ...func(*Config)) (*Replica, *uSM) {
	t.Helper()
	r, sm := uReplica(t, n, 0, opts...)
	for op := 1; op <= committed+uncommitted; op++ {
		uStep(t, r, uReq(uint64(op), uRegistered+1, kv.PutOp(fmt.Sprintf("k%d", op), []byte(fmt.Sprintf("v%d", op)))))
	}
	f := (n - 1) / 2
	if committed > 0 {
		for j := 1; j <= f; j++ {
			uStep(t, r, uPrepareOK(0, uint64(committed), j))
		}
	}
	require.Equal(t, uint64(committed), r.CommitNumber())
	require.Equal(t, uint64(committed+uncommitted), r.OpNumber())
	return r, sm
}

// uNewPrimary makes replica view%n the primary of view by handing it
// DoViewChanges from the f+1 replicas after it, each with log, last normal
// view 0 and commit number commit.
func uNewPrimary(t *testing.T, n int, view uint64, commit uint64, log []*messages.Entry) (*Replica, *uSM) {
	t.Helper()
	p := int(view % uint64(n))
	r, sm := uReplica(t, n, p)
	if r.IsPrimary() { // no backup has answered it for an inactivity timeout
		for j := range r.primary.heardAt {
			r.primary.heardAt[j] = r.ticks - r.cfg.InactivityTicks
		}
	}
	f := (n - 1) / 2
	for k := 1; k <= f+1; k++ {
		uStep(t, r, uDVC(view, (p+k)%n, 0, commit, log))
	}
	require.True(t, r.IsPrimary())
	require.Equal(t, view, r.View())
	return r, sm
}

// uValue reads key from a store.
func uValue(sm *uSM, key string) string {
	v, ok := sm.Get(key)
	if !ok {
		return "<absent>"
	}
	return string(v)
}

// uResult decodes a kv result.
func uResult(t *testing.T, b []byte) *kv.Result {
	t.Helper()
	res, err := kv.DecodeResult(b)
	require.NoError(t, err)
	return res
}

// uLeaveView runs r into its election timeout and answers its probe for the
// next view from f peers, so that it starts the view change to that view; it
// returns everything r sent.
func uLeaveView(t *testing.T, r *Replica) Output {
	t.Helper()
	v := r.View()
	all := uTicks(t, r, max(r.cfg.InactivityTicks, r.cfg.ViewChangeTicks))
	require.Len(t, uMsgs[*messages.ViewChangeProbe](all), r.n-1, "the timeout sends a probe, not a view change")
	for j, oks := 0, 0; oks < r.f; j++ {
		if j == r.index {
			continue
		}
		out := uStep(t, r, &messages.ViewChangeProbeOK{ClusterId: uCluster, View: v + 1, Replica: uint32(j)})
		all.Messages = append(all.Messages, out.Messages...)
		oks++
	}
	require.Equal(t, v+1, r.View())
	require.Equal(t, StatusViewChange, r.Status())
	return all
}
