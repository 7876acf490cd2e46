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

// uRecovering makes a replica start in recovering status.
func uRecovering(c *Config) { c.Recovering = true }

// uReplica makes replica i of n with small, jitter-free timing.
func uReplica(t *testing.T, n, i int, opts ...func(*Config)) (*Replica, *uSM) {
	t.Helper()
	sm := &uSM{Store: kv.NewStore()}
	c := Config{ClusterID: uCluster, ReplicaCount: n, ReplicaIndex: i, StateMachine: sm, Seed: uint64(100 + i),
		HeartbeatTicks: 2, InactivityTicks: 10, ViewChangeTicks: 10, JitterTicks: -1}
	for _, o := range opts {
		o(&c)
	}
	r, err := New(c)
	require.NoError(t, err)
	return r, sm
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
	return &messages.Request{ClusterId: uCluster, ClientId: client, RequestNumber: number, Operation: op, ReplyTo: uAddr}
}

func uRead(client, number uint64, key string, mode messages.ReadMode) *messages.Request {
	m := uReq(client, number, kv.GetOp(key))
	m.ReadMode = mode
	return m
}

// uEntry is op number op of view v: client 100+op puts "k<op>" = "v<op>".
func uEntry(op, v uint64) *messages.Entry {
	return &messages.Entry{OpNumber: op, View: v, ClientId: 100 + op, RequestNumber: 1,
		Operation: kv.PutOp(fmt.Sprintf("k%d", op), []byte(fmt.Sprintf("v%d", op))), ReplyTo: uAddr}
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

func uDVC(view uint64, from int, lastNormal, commit uint64, log []*messages.Entry) *messages.DoViewChange {
	return &messages.DoViewChange{ClusterId: uCluster, View: view, Log: log, LastNormalView: lastNormal,
		OpNumber: uint64(len(log)), CommitNumber: commit, Replica: uint32(from)}
}

func uStartView(view uint64, from int, commit uint64, log []*messages.Entry) *messages.StartView {
	return &messages.StartView{ClusterId: uCluster, View: view, Log: log, OpNumber: uint64(len(log)),
		CommitNumber: commit, Replica: uint32(from)}
}

func uNewState(view uint64, from int, commit uint64, entries []*messages.Entry, op uint64) *messages.NewState {
	return &messages.NewState{ClusterId: uCluster, View: view, Entries: entries, OpNumber: op,
		CommitNumber: commit, Replica: uint32(from)}
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
	return r, sm
}

// uPrimary makes replica 0 of n, primary of view 0, with committed ops
// committed by f PrepareOKs and uncommitted more on top (requests from
// clients 1, 2, ..., each putting "k<op>" = "v<op>").
func uPrimary(t *testing.T, n int, committed, uncommitted int, opts ...func(*Config)) (*Replica, *uSM) {
	t.Helper()
	r, sm := uReplica(t, n, 0, opts...)
	for op := 1; op <= committed+uncommitted; op++ {
		uStep(t, r, uReq(uint64(op), 1, kv.PutOp(fmt.Sprintf("k%d", op), []byte(fmt.Sprintf("v%d", op)))))
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
