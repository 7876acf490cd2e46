package actors_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// These tests run replica actors and clients on a real actor system, without
// the supervisor package: the replicas are spawned straight from
// NewReplicaProps, and "killing" one stops its actor. They never assert on
// how long something took, except for liveness bounds (a cancelled call
// must return, and 2 s is far more than it needs).

const (
	waitFor    = 10 * time.Second
	pollEvery  = 20 * time.Millisecond
	opTimeout  = 10 * time.Second
	returnsIn  = 2 * time.Second // liveness bound for a call that must return now
	clusterID  = 0xc11e
	namePrefix = "replica-"
)

// replicas is a replica group spawned from NewReplicaProps.
type replicas struct {
	t      *testing.T
	system *actor.ActorSystem
	peers  []*actor.PID
	props  []*actor.Props
}

func newSystem(t *testing.T) *actor.ActorSystem {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	t.Cleanup(system.Shutdown)
	return system
}

func startReplicas(t *testing.T, n int, configure ...func(i int, c *actors.ReplicaConfig)) *replicas {
	t.Helper()
	g := &replicas{t: t, system: newSystem(t)}
	for i := range n {
		g.peers = append(g.peers, g.system.NewLocalPID(fmt.Sprintf("%s%d", namePrefix, i)))
	}
	for i := range n {
		cfg := actors.ReplicaConfig{
			Core:            vsr.Config{ClusterID: clusterID, ReplicaCount: n, ReplicaIndex: i},
			NewStateMachine: kv.New,
			Peers:           g.peers,
		}
		for _, f := range configure {
			f(i, &cfg)
		}
		g.props = append(g.props, actors.NewReplicaProps(cfg))
		g.start(i)
	}
	t.Cleanup(func() {
		for _, pid := range g.peers {
			_ = g.system.Root.StopFuture(pid).Wait()
		}
	})
	return g
}

// start spawns replica i: new the first time, recovering after a kill.
func (g *replicas) start(i int) {
	g.t.Helper()
	pid, err := g.system.Root.SpawnNamed(g.props[i], fmt.Sprintf("%s%d", namePrefix, i))
	require.NoError(g.t, err)
	require.True(g.t, pid.Equal(g.peers[i]))
}

func (g *replicas) kill(i int) {
	g.t.Helper()
	require.NoError(g.t, g.system.Root.StopFuture(g.peers[i]).Wait())
}

func (g *replicas) status(i int) (actors.ReplicaStatus, bool) {
	res, err := g.system.Root.RequestFuture(g.peers[i], &actors.StatusQuery{}, 2*time.Second).Result()
	s, ok := res.(actors.ReplicaStatus)
	return s, ok && err == nil
}

func (g *replicas) client(cfg actors.ClientConfig) *actors.Client {
	g.t.Helper()
	cfg.ClusterID, cfg.Replicas = clusterID, g.peers
	c, err := actors.NewClient(g.system, cfg)
	require.NoError(g.t, err)
	g.t.Cleanup(c.Close)
	return c
}

func execute(t *testing.T, c *actors.Client, op []byte) *kv.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := c.Execute(ctx, op)
	require.NoError(t, err)
	r, err := kv.DecodeResult(b)
	require.NoError(t, err)
	require.Empty(t, r.GetError())
	return r
}

// result is what a call that ran in a goroutine returned.
type result struct {
	value []byte
	err   error
}

// inBackground runs call in a goroutine and returns where its result goes.
func inBackground(call func() ([]byte, error)) <-chan result {
	done := make(chan result, 1)
	go func() {
		v, err := call()
		done <- result{v, err}
	}()
	return done
}

// returned waits for a background call that must return now.
func returned(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(returnsIn):
		t.Fatalf("the call did not return within %v", returnsIn)
		return result{}
	}
}

// stuckWrite kills both backups of a 3-replica group, so that the primary
// can append a write but never commit it, and starts an Execute with the
// context newCtx returns. Unless the context may end by itself, it returns
// only once the write is in the primary's log and the call has not returned:
// the call is in flight and cannot complete.
func stuckWrite(t *testing.T, newCtx func() context.Context, mayEnd bool) (*replicas, *actors.Client, <-chan result) {
	t.Helper()
	g := startReplicas(t, 3)
	c := g.client(actors.ClientConfig{})
	execute(t, c, kv.PutOp("k", []byte("committed")))
	g.kill(1)
	g.kill(2)
	before, ok := g.status(0)
	require.True(t, ok)
	ctx := newCtx()
	done := inBackground(func() ([]byte, error) { return c.Execute(ctx, kv.PutOp("k", []byte("stuck"))) })
	if mayEnd {
		return g, c, done
	}
	require.Eventually(t, func() bool {
		s, ok := g.status(0)
		return ok && s.OpNumber > before.OpNumber
	}, waitFor, pollEvery, "the write never reached the primary")
	s, _ := g.status(0)
	require.Equal(t, before.CommitNumber, s.CommitNumber, "a lone primary committed a write")
	select {
	case r := <-done:
		t.Fatalf("a write that cannot commit returned %v, %v", r.value, r.err)
	default:
	}
	return g, c, done
}

// 5. A cancelled call returns promptly with the context's error.

func TestCancelledCallReturnsPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, c, done := stuckWrite(t, func() context.Context { return ctx }, false)
	cancel()
	r := returned(t, done)
	require.ErrorIs(t, r.err, context.Canceled)
	require.NotErrorIs(t, r.err, actors.ErrTimeout)
	require.Nil(t, r.value)

	// The session is free again: the same client (one session) serves the
	// next call. (Only a stale read can be served now: two of three replicas
	// lost their state, more than VR tolerates, so restarting them would
	// leave both recovering forever.)
	ctx2, cancel2 := context.WithTimeout(context.Background(), opTimeout)
	defer cancel2()
	b, err := c.ReadStale(ctx2, kv.GetOp("k"))
	require.NoError(t, err)
	got, err := kv.DecodeResult(b)
	require.NoError(t, err)
	require.Equal(t, "committed", string(got.GetValue()))
}

func TestDeadlineReturnsErrTimeout(t *testing.T) {
	var ctx context.Context
	_, _, done := stuckWrite(t, func() context.Context {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}, true)
	<-ctx.Done()
	r := returned(t, done)
	require.ErrorIs(t, r.err, actors.ErrTimeout)
	require.ErrorIs(t, r.err, context.DeadlineExceeded)
	require.NotErrorIs(t, r.err, context.Canceled)
	require.Nil(t, r.value)
}

func TestClientTimeoutAppliesWithoutDeadline(t *testing.T) {
	g := startReplicas(t, 3)
	c := g.client(actors.ClientConfig{Timeout: 300 * time.Millisecond})
	g.kill(1)
	g.kill(2)
	done := inBackground(func() ([]byte, error) {
		return c.Execute(context.Background(), kv.PutOp("k", []byte("v")))
	})
	// ClientConfig.Timeout ends the call; wait for it well past that.
	select {
	case r := <-done:
		require.ErrorIs(t, r.err, actors.ErrTimeout)
		require.ErrorIs(t, r.err, context.DeadlineExceeded)
	case <-time.After(waitFor):
		t.Fatal("a call without deadline outlived ClientConfig.Timeout by far")
	}
}

// Reads: a stale read needs no quorum, a linearizable one does.

func TestStaleReadNeedsNoQuorum(t *testing.T) {
	g := startReplicas(t, 3)
	c := g.client(actors.ClientConfig{})
	execute(t, c, kv.PutOp("k", []byte("v")))
	g.kill(1)
	g.kill(2)

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := c.ReadStale(ctx, kv.GetOp("k"))
	require.NoError(t, err)
	r, err := kv.DecodeResult(b)
	require.NoError(t, err)
	require.True(t, r.GetFound())
	require.Equal(t, "v", string(r.GetValue()))

	// A linearizable read cannot be confirmed without a quorum.
	short, cancelShort := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancelShort()
	_, err = c.Read(short, kv.GetOp("k"))
	require.ErrorIs(t, err, actors.ErrTimeout)
}

// 6. The client's typed errors.

func TestReadOfWriteIsRejected(t *testing.T) {
	g := startReplicas(t, 3)
	c := g.client(actors.ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()

	_, err := c.Read(ctx, kv.PutOp("k", []byte("v")))
	require.ErrorIs(t, err, actors.ErrRejected)
	require.ErrorIs(t, err, vsr.ErrNotReadOnly)
	_, err = c.ReadStale(ctx, kv.PutOp("k", []byte("v")))
	require.ErrorIs(t, err, actors.ErrRejected)
	require.ErrorIs(t, err, vsr.ErrNotReadOnly)
	_, err = c.Execute(ctx, nil)
	require.ErrorIs(t, err, actors.ErrRejected)

	// A rejected op never took effect, anywhere: the log holds the client's
	// registration and the get below, nothing else.
	r := execute(t, c, kv.GetOp("k"))
	require.False(t, r.GetFound(), "a rejected write took effect")
	for i := range g.peers {
		require.Eventually(t, func() bool {
			s, ok := g.status(i)
			return ok && s.CommitNumber == 2
		}, waitFor, pollEvery)
		s, _ := g.status(i)
		require.Equal(t, uint64(2), s.OpNumber, "replica %d logged a rejected read", i)
	}
}

func TestClosedClient(t *testing.T) {
	g := startReplicas(t, 3)
	c := g.client(actors.ClientConfig{Sessions: 2})
	execute(t, c, kv.PutOp("k", []byte("v")))

	// A call in flight when the client closes ends with ErrClosed.
	g.kill(1)
	g.kill(2)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	done := inBackground(func() ([]byte, error) { return c.Execute(ctx, kv.PutOp("k", []byte("w"))) })
	// Ops 1 and 2 are the first call's registration and write; op 3 is
	// this call's first request (its write, or the registration of the
	// other session), which can never commit. (The check was once
	// OpNumber == 2, which held before the request arrived and so only
	// passed when the poll was quicker than the call.)
	require.Eventually(t, func() bool {
		s, ok := g.status(0)
		return ok && s.OpNumber == 3
	}, waitFor, pollEvery, "the write never reached the primary")
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	r := returned(t, done)
	require.ErrorIs(t, r.err, actors.ErrClosed)
	select {
	case <-closed:
	case <-time.After(returnsIn):
		t.Fatal("Close did not return")
	}

	// Every later call, of every kind, returns ErrClosed.
	_, err := c.Execute(ctx, kv.PutOp("k", []byte("v")))
	require.ErrorIs(t, err, actors.ErrClosed)
	_, err = c.Read(ctx, kv.GetOp("k"))
	require.ErrorIs(t, err, actors.ErrClosed)
	_, err = c.ReadStale(ctx, kv.GetOp("k"))
	require.ErrorIs(t, err, actors.ErrClosed)
	c.Close() // safe twice
}

func TestNewClientRejectsEvenReplicaCount(t *testing.T) {
	system := newSystem(t)
	for _, n := range []int{0, 2, 4} {
		pids := make([]*actor.PID, n)
		for i := range pids {
			pids[i] = system.NewLocalPID(fmt.Sprintf("nobody-%d", i))
		}
		_, err := actors.NewClient(system, actors.ClientConfig{Replicas: pids})
		require.Error(t, err, "n = %d", n)
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{actors.ErrTimeout, actors.ErrNoSuchGroup, actors.ErrRejected, actors.ErrClosed}
	for i, a := range all {
		for j, b := range all {
			require.Equal(t, i == j, errors.Is(a, b), "%v vs %v", a, b)
		}
	}
}

// ErrNoSuchGroup means only that no replica actor exists.

// PIDs that name no actor, in a live actor system: every request bounces,
// so the call ends with ErrNoSuchGroup long before its deadline.
func TestNoSuchGroupWhenNoReplicaActorExists(t *testing.T) {
	system := newSystem(t)
	var pids []*actor.PID
	for i := range 3 {
		pids = append(pids, system.NewLocalPID(fmt.Sprintf("nobody-%d", i)))
	}
	c, err := actors.NewClient(system, actors.ClientConfig{ClusterID: clusterID, Replicas: pids})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for range 2 { // and again, for a call that starts with the first one's leftovers
		_, err = c.Execute(ctx, kv.PutOp("k", []byte("v")))
		require.ErrorIs(t, err, actors.ErrNoSuchGroup)
		require.NotErrorIs(t, err, actors.ErrTimeout)
	}
	_, err = c.ReadStale(ctx, kv.GetOp("k"))
	require.ErrorIs(t, err, actors.ErrNoSuchGroup)
}

// transportDeadLetters sends a client's sessions, every 5 ms until stop is
// closed, what Proto.Actor's remote endpoint writer sends a request's sender
// when it has no connection to the target's node: a dead letter naming the
// target. A remote client whose connection to a killed primary's node is
// down gets bursts of these, for requests of this call and of earlier ones.
func transportDeadLetters(system *actor.ActorSystem, c *actors.Client, target *actor.PID, stop <-chan struct{}) {
	sessions := actors.SessionPIDs(c)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, s := range sessions {
				system.Root.Send(s, &actor.DeadLetterResponse{Target: target})
			}
		}
	}()
}

// The primary is killed, and the client keeps getting dead letters for its
// requests to it (as it would over remoting with the primary's node gone)
// while the others change view: the group exists, so the call must wait for
// the new primary and succeed, never end with ErrNoSuchGroup.
func TestLostConnectionToKilledPrimaryIsNotNoSuchGroup(t *testing.T) {
	g := startReplicas(t, 3)
	c := g.client(actors.ClientConfig{})
	execute(t, c, kv.PutOp("k", []byte("before")))
	g.kill(0)
	stop := make(chan struct{})
	defer close(stop)
	transportDeadLetters(g.system, c, g.peers[0], stop)
	for k := range 3 { // the first during the view change, the others after it
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := c.Execute(ctx, kv.PutOp("k", []byte(fmt.Sprint("after-", k))))
		cancel()
		require.NoError(t, err, "write %d", k)
	}
}

// Both backups are gone and the write cannot commit; the dead letters of
// requests to them, and of lost connections, never add up to
// ErrNoSuchGroup while the primary's actor exists: the call waits for its
// context.
func TestDeadLettersFromSomeReplicasAreNotNoSuchGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	g, c, done := stuckWrite(t, func() context.Context { return ctx }, false)
	stop := make(chan struct{})
	defer close(stop)
	transportDeadLetters(g.system, c, g.peers[1], stop)
	r := <-done
	require.ErrorIs(t, r.err, actors.ErrTimeout)
	require.NotErrorIs(t, r.err, actors.ErrNoSuchGroup)
}

// TestFirstWriteOfASessionGoesOutWithItsRegistration: a new session
// registers before its first write, and the write must leave as soon as
// the registration's reply arrives. The retry interval here is far beyond
// the call's deadline, so a session that left the write to its retry timer
// would time out.
func TestFirstWriteOfASessionGoesOutWithItsRegistration(t *testing.T) {
	g := startReplicas(t, 3)
	c := g.client(actors.ClientConfig{RetryInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := c.Execute(ctx, kv.PutOp("k", []byte("v")))
	require.NoError(t, err)
}
