package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// Errors a Client returns. A context's own error (context.Canceled) is
// returned as it is.
var (
	// ErrTimeout: no answer before the context's deadline, or before
	// ClientConfig.Timeout when the context has none. The operation may
	// still take effect. errors.Is(err, context.DeadlineExceeded) holds too.
	ErrTimeout = errors.New("vsr: request timed out")
	// ErrNoSuchGroup: no actor exists at any of the replica addresses (as
	// the actor systems there answer: an address where nothing listens at
	// all ends in ErrTimeout).
	ErrNoSuchGroup = errors.New("vsr: no such replica group")
	// ErrRejected: the replicas refused the operation (for a read, an
	// operation that is not read-only; or a malformed request). It never
	// took effect.
	ErrRejected = errors.New("vsr: operation rejected")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("vsr: client closed")
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// ClusterID must match the group's.
	ClusterID uint64
	// Replicas maps replica index to PID.
	Replicas []*actor.PID
	// Sessions is how many requests the client can have in flight at once
	// (default 1). Each session is a client actor with its own client ID
	// and request numbers: VR allows one outstanding request per client ID.
	Sessions int
	// RetryInterval is how long a session waits for a reply before it
	// resends the request to every replica (default 200 ms).
	RetryInterval time.Duration
	// Timeout bounds a call whose context has no deadline (default 10 s).
	Timeout time.Duration
}

// Client submits operations to a replica group. It is safe for concurrent
// use: each call takes a free session, waiting for one if all are busy.
type Client struct {
	system   *actor.ActorSystem
	cfg      ClientConfig
	sessions chan *actor.PID
	all      []*actor.PID
	mu       sync.Mutex
	closed   chan struct{} // closed by Close
}

// clientTickInterval is the resolution of a session's retry timer.
const clientTickInterval = 25 * time.Millisecond

// NewClient spawns the client's sessions in system.
func NewClient(system *actor.ActorSystem, cfg ClientConfig) (*Client, error) {
	if len(cfg.Replicas) == 0 || len(cfg.Replicas)%2 == 0 {
		return nil, fmt.Errorf("vsr: client needs an odd number of replicas, got %d", len(cfg.Replicas))
	}
	if cfg.Sessions <= 0 {
		cfg.Sessions = 1
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 200 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	c := &Client{system: system, cfg: cfg, sessions: make(chan *actor.PID, cfg.Sessions), closed: make(chan struct{})}
	for k := 0; k < cfg.Sessions; k++ {
		pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &clientActor{cfg: cfg, id: randomClientID()}
		}))
		c.sessions <- pid
		c.all = append(c.all, pid)
	}
	return c, nil
}

// Execute runs op through the log: ordered, replicated, executed once, and
// answered by the primary once committed.
func (c *Client) Execute(ctx context.Context, op []byte) ([]byte, error) {
	return c.call(ctx, op, messages.ReadMode_READ_MODE_LOG)
}

// Read runs a read-only op as a linearizable read: the primary serves it
// without a log entry, after confirming with a quorum that it is still the
// primary. It sees every write acknowledged before it was sent.
func (c *Client) Read(ctx context.Context, op []byte) ([]byte, error) {
	return c.call(ctx, op, messages.ReadMode_READ_MODE_LINEARIZABLE)
}

// ReadStale runs a read-only op on whichever replica answers first, from the
// state that replica has executed: it may miss recent writes.
func (c *Client) ReadStale(ctx context.Context, op []byte) ([]byte, error) {
	return c.call(ctx, op, messages.ReadMode_READ_MODE_STALE)
}

func (c *Client) call(ctx context.Context, op []byte, mode messages.ReadMode) ([]byte, error) {
	if len(op) == 0 {
		return nil, fmt.Errorf("%w: empty operation", ErrRejected)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	var pid *actor.PID
	select {
	case pid = <-c.sessions:
	case <-c.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctxError(ctx)
	}
	defer func() { c.sessions <- pid }()
	done := make(chan callResult, 1)
	cl := &call{op: op, mode: mode, done: done}
	c.system.Root.Send(pid, cl)
	select {
	case r := <-done:
		return r.value, r.err
	case <-c.closed:
		// The session may have stopped before it took the call, which then
		// never ran; or after, in which case its result is lost with it.
		return nil, ErrClosed
	case <-ctx.Done():
		c.system.Root.Send(pid, &abandon{call: cl})
		return nil, ctxError(ctx)
	}
}

func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)
	}
	return ctx.Err()
}

// Close stops the client's sessions; calls in flight and calls after Close
// return ErrClosed. A call in flight may still take effect.
func (c *Client) Close() {
	c.mu.Lock()
	select {
	case <-c.closed:
		c.mu.Unlock()
		return
	default:
		close(c.closed)
	}
	c.mu.Unlock()
	for _, pid := range c.all {
		_ = c.system.Root.StopFuture(pid).Wait()
	}
}

// call is one operation handed to a session.
type call struct {
	op   []byte
	mode messages.ReadMode
	done chan callResult
}

type callResult struct {
	value []byte
	err   error
}

// abandon tells a session that its caller has given up on a call.
type abandon struct{ call *call }

type clientTick struct{ gen uint64 }

// clientActor is one session: the vsr client core for one client ID, with
// one request in flight at a time.
type clientActor struct {
	cfg     ClientConfig
	id      uint64
	core    *vsr.Client
	pending *call
	timers  *scheduler.TimerScheduler
	gen     uint64
	// bounced counts the requests that came back as dead letters since the
	// last send to every replica; sentAll is set once the pending request
	// went to every replica. All n bouncing means there is no such group.
	bounced int
	sentAll bool
}

func (a *clientActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *actor.Stopping:
		a.finish(callResult{err: ErrClosed})
	case *call:
		a.submit(ctx, m)
	case *abandon:
		if a.pending == m.call {
			a.core.Cancel()
			a.pending = nil
			a.gen = 0
		}
	case *messages.Reply:
		out := a.core.Step(m)
		if out.Done != nil {
			a.finish(resultOf(out.Done))
		}
	case *actor.DeadLetterResponse:
		a.onDeadLetter(ctx)
	case *clientTick:
		if m.gen == a.gen && a.pending != nil {
			a.send(ctx, a.core.Tick())
			a.scheduleTick(ctx)
		}
	}
}

// onDeadLetter counts a request that reached no actor. (Proto.Actor's
// local dead-letter answer does not say which PID bounced, so the session
// counts.) The first bounce makes it try every replica at once; when all of
// those bounce too, no replica of the group exists.
func (a *clientActor) onDeadLetter(ctx actor.Context) {
	if a.pending == nil {
		return
	}
	a.bounced++
	if !a.sentAll {
		a.send(ctx, a.core.ResendAll())
		return
	}
	if a.bounced >= len(a.cfg.Replicas) {
		a.core.Cancel()
		a.finish(callResult{err: ErrNoSuchGroup})
	}
}

func (a *clientActor) start(ctx actor.Context) {
	self := ctx.Self()
	core, err := vsr.NewClient(vsr.ClientConfig{
		ClusterID: a.cfg.ClusterID, ClientID: a.id, ReplicaCount: len(a.cfg.Replicas),
		ReplyTo:    &messages.ClientAddress{Address: self.Address, Id: self.Id},
		RetryTicks: max(1, int(a.cfg.RetryInterval/clientTickInterval)),
	})
	if err != nil {
		panic(err) // the config was checked by NewClient
	}
	a.core = core
	a.timers = scheduler.NewTimerScheduler(ctx.ActorSystem().Root)
}

func (a *clientActor) submit(ctx actor.Context, m *call) {
	if a.pending != nil { // a session is exclusive, so this is a bug in Client
		m.done <- callResult{err: vsr.ErrRequestInFlight}
		return
	}
	out, err := a.core.Submit(m.op, m.mode)
	if err != nil {
		m.done <- callResult{err: fmt.Errorf("%w: %w", ErrRejected, err)}
		return
	}
	a.pending, a.sentAll, a.bounced = m, false, 0
	a.gen = generations.Add(1)
	a.send(ctx, out)
	a.scheduleTick(ctx)
}

// send sends the core's requests as Requests with this actor as sender, so
// that a replica address where no actor lives answers with a dead letter.
func (a *clientActor) send(ctx actor.Context, out vsr.ClientOutput) {
	if len(out.Messages) == len(a.cfg.Replicas) {
		a.sentAll, a.bounced = true, 0
	}
	for _, env := range out.Messages {
		ctx.Request(a.cfg.Replicas[env.To], env.Msg)
	}
}

func (a *clientActor) scheduleTick(ctx actor.Context) {
	a.timers.SendOnce(clientTickInterval, ctx.Self(), &clientTick{gen: a.gen})
}

func (a *clientActor) finish(r callResult) {
	if a.pending == nil {
		return
	}
	a.pending.done <- r
	a.pending = nil
	a.gen = 0
}

func resultOf(r *vsr.Result) callResult {
	if r.Err != nil {
		return callResult{err: fmt.Errorf("%w: %w", ErrRejected, r.Err)}
	}
	return callResult{value: r.Value}
}

// randomClientID draws a client ID: it must be unique among the group's
// clients for all time, so it is random, never a counter.
func randomClientID() uint64 {
	for {
		if id := randomSeed(); id != 0 {
			return id
		}
	}
}
