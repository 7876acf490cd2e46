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
	// ErrNoSuchGroup: no replica actor exists, as the actor systems at the
	// replica addresses answer. The rule: once a call has had a dead
	// letter, its session sends every further request of the call to
	// replica j with a sender of its own for j, fresh for the call (see
	// clientActor.onDeadLetter), and the call ends with ErrNoSuchGroup when
	// every replica has been sent at least one such request and every one
	// of them, to every replica, has come back as "no actor at this PID",
	// with no reply from the group in between. Each request bounces at most
	// once and an old call's bounces cannot reach the new senders, so one
	// request that reached a replica actor, or one that the transport could
	// not deliver, rules the answer out for the whole call. A lost
	// connection (a node killed, a partition), an address where nothing
	// listens, or some replicas missing while others may be alive, is
	// never ErrNoSuchGroup: the call retries until its deadline and ends
	// with ErrTimeout.
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
	// Replicas maps replica index to PID. It may be nil when Resolve is
	// set.
	Replicas []*actor.PID
	// Members names the replicas of the configuration the client starts
	// with, in index order (vsr.ClientConfig.Members). With Resolve, the
	// client sends by name, and follows the group through reconfigurations:
	// it learns each new configuration from the replies.
	Members []string
	// Resolve, if set, finds the actor of the member named name. It must be
	// cheap and must not block; nil for a name it cannot place.
	Resolve func(name string) *actor.PID
	// Discover, if set, tells the client the newest configuration of the
	// group its host knows of (its epoch and members), for the case no reply
	// can: every member the client knows of has left the group. A session
	// asks it when all of them turn out not to exist, before it gives up
	// with ErrNoSuchGroup. It must be cheap and must not block.
	Discover func() (epoch uint64, members []string)
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
	if cfg.Resolve != nil && cfg.Replicas == nil {
		if len(cfg.Members) == 0 || len(cfg.Members)%2 == 0 {
			return nil, fmt.Errorf("vsr: client needs an odd number of members, got %d", len(cfg.Members))
		}
	} else if len(cfg.Replicas) == 0 || len(cfg.Replicas)%2 == 0 {
		return nil, fmt.Errorf("vsr: client needs an odd number of replicas, got %d", len(cfg.Replicas))
	} else if cfg.Members != nil && len(cfg.Members) != len(cfg.Replicas) {
		return nil, fmt.Errorf("vsr: client has %d member names for %d replicas", len(cfg.Members), len(cfg.Replicas))
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
		}, actor.WithDispatcher(dispatcher())))
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

// Reconfigure asks the group to change its members to members (names in
// index order): executed at most once, through the log, like a write. It
// returns once the group committed the change, or with an error wrapping
// ErrRejected and the group's reason when the group refused it (a bad
// configuration, one that adds a majority of new members, another change
// under way, a group that does not take changes). See
// docs/reconfiguration.md for what the group needs first: the new members
// started to join.
func (c *Client) Reconfigure(ctx context.Context, members []string) error {
	if len(members) == 0 {
		return fmt.Errorf("%w: empty configuration", ErrRejected)
	}
	_, err := c.submit(ctx, &call{members: members})
	return err
}

func (c *Client) call(ctx context.Context, op []byte, mode messages.ReadMode) ([]byte, error) {
	if len(op) == 0 {
		return nil, fmt.Errorf("%w: empty operation", ErrRejected)
	}
	return c.submit(ctx, &call{op: op, mode: mode})
}

// submit hands m to a free session and waits for its result.
func (c *Client) submit(ctx context.Context, m *call) ([]byte, error) {
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
	cl := m
	cl.done = done
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
	// members, if set, makes the call a reconfiguration to these members.
	members []string
	done    chan callResult
}

type callResult struct {
	value []byte
	err   error
}

// abandon tells a session that its caller has given up on a call.
type abandon struct{ call *call }

// clientTick is a session's retry timer. One timer runs while a call is
// pending, not one per call: a tick that arrives just after a new call
// began counts for it, which at worst resends its request one tick early.
// instance tells the ticks of this session instance from those of one
// that has since been restarted.
type clientTick struct{ instance uint64 }

// clientActor is one session: the vsr client core for one client ID, with
// one request in flight at a time.
type clientActor struct {
	cfg     ClientConfig
	id      uint64
	core    *vsr.Client
	pending *call
	timers  *scheduler.TimerScheduler
	// instance names this instance's ticks; ticking says one is on its way.
	instance uint64
	ticking  bool
	// probe, once the pending call has had a dead letter, tells which of
	// its requests bounced off which replica; nil until then.
	probe *probe
}

// probe is the dead-letter accounting of one call. Proto.Actor's dead-letter
// answer (*actor.DeadLetterResponse) names neither the request nor, unless
// the local transport produced it, the PID that bounced; it only goes to
// the request's sender. So a probe gives each replica a sender actor of its
// own, spawned for this call: whatever reaches senders[j] is about a
// request of this call to replica j.
type probe struct {
	id      uint64
	senders []*actor.PID
	// sent[j] counts the requests sent to replica j with senders[j] as
	// sender; noActor[j] those that came back as "no actor at this PID".
	sent, noActor []int
	// heard is set when any reply arrives: the group exists.
	heard bool
}

// bounce is what a probe's sender forwards to its session for each dead
// letter: transport is set when the local transport answered (it had no
// connection to the replica's node), unset when the replica's actor
// system did (no actor there).
type bounce struct {
	probe     uint64
	replica   int
	transport bool
}

// bounceForwarder is the sender of one replica's requests during a probe.
type bounceForwarder struct {
	probe   uint64
	replica int
}

func (f *bounceForwarder) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*actor.DeadLetterResponse); ok {
		// The remote endpoint writer sets Target when it drops a message
		// for want of a connection; a dead letter answered by an actor
		// system (local, or the replica's node) leaves it nil.
		ctx.Send(ctx.Parent(), &bounce{probe: f.probe, replica: f.replica, transport: m.Target != nil})
	}
}

func (a *clientActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *actor.Stopping:
		a.finish(nil, callResult{err: ErrClosed}) // the probe's senders stop with the session
	case *call:
		a.submit(ctx, m)
	case *abandon:
		if a.pending == m.call {
			a.core.Cancel()
			a.pending = nil
			a.endProbe(ctx)
		}
	case *messages.Reply:
		if a.probe != nil {
			a.probe.heard = true
		}
		out := a.core.Step(m)
		if out.Done != nil {
			a.finish(ctx, resultOf(out.Done))
		}
		// A registration's reply sends the request it was made for, and a
		// refusal for the wrong epoch sends it again in the new one: at
		// once, not a retry interval later.
		a.send(ctx, out)
	case *actor.DeadLetterResponse:
		a.onDeadLetter(ctx)
	case *bounce:
		a.onBounce(ctx, m)
	case *clientTick:
		if m.instance != a.instance {
			return
		}
		a.ticking = false
		if a.pending != nil {
			a.send(ctx, a.core.Tick())
			a.scheduleTick(ctx)
		}
	}
}

// onDeadLetter handles a dead letter that came back to the session itself.
// It cannot tell which request bounced, nor for which call (a burst of them
// may arrive long after the calls whose requests the transport queued), so
// it decides nothing: for a pending call it starts a probe, if none runs,
// and resends the request to every replica through the probe's senders.
func (a *clientActor) onDeadLetter(ctx actor.Context) {
	if a.pending == nil || a.probe != nil {
		return
	}
	n := len(a.core.Members())
	p := &probe{id: generations.Add(1), senders: make([]*actor.PID, n), sent: make([]int, n), noActor: make([]int, n)}
	for j := range p.senders {
		f := &bounceForwarder{probe: p.id, replica: j}
		p.senders[j] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return f }))
	}
	a.probe = p
	a.send(ctx, a.core.ResendAll())
}

// onBounce counts one of the probe's dead letters and ends the call with
// ErrNoSuchGroup when the rule documented on ErrNoSuchGroup holds.
func (a *clientActor) onBounce(ctx actor.Context, m *bounce) {
	p := a.probe
	if a.pending == nil || p == nil || m.probe != p.id {
		return // from the probe of a call that has ended
	}
	if m.transport {
		return // the connection is down: sent[j] can no longer match noActor[j]
	}
	p.noActor[m.replica]++
	if p.heard {
		return
	}
	for j := range p.sent {
		if p.sent[j] == 0 || p.noActor[j] != p.sent[j] {
			return
		}
	}
	if a.cfg.Discover != nil {
		if out, ok := a.core.Learn(a.cfg.Discover()); ok {
			// Every member the session knew of has left: the request goes
			// to the newer configuration, and a new probe counts again.
			a.endProbe(ctx)
			a.send(ctx, out)
			return
		}
	}
	a.core.Cancel()
	a.finish(ctx, callResult{err: ErrNoSuchGroup})
}

// endProbe stops the probe's senders: a dead letter for them that is still
// on its way then goes nowhere, as it concerns a call that has ended.
func (a *clientActor) endProbe(ctx actor.Context) {
	if a.probe != nil && ctx != nil {
		for _, pid := range a.probe.senders {
			ctx.Stop(pid)
		}
	}
	a.probe = nil
}

func (a *clientActor) start(ctx actor.Context) {
	self := ctx.Self()
	core, err := vsr.NewClient(vsr.ClientConfig{
		ClusterID: a.cfg.ClusterID, ClientID: a.id, ReplicaCount: a.cfg.replicaCount(), Members: a.cfg.Members,
		ReplyTo:    &messages.ClientAddress{Address: self.Address, Id: self.Id},
		RetryTicks: max(1, int(a.cfg.RetryInterval/clientTickInterval)),
	})
	if err != nil {
		panic(err) // the config was checked by NewClient
	}
	a.core = core
	a.timers = scheduler.NewTimerScheduler(ctx.ActorSystem().Root)
	a.instance = generations.Add(1)
}

func (a *clientActor) submit(ctx actor.Context, m *call) {
	if a.pending != nil { // a session is exclusive, so this is a bug in Client
		m.done <- callResult{err: vsr.ErrRequestInFlight}
		return
	}
	var out vsr.ClientOutput
	var err error
	if m.members != nil {
		out, err = a.core.Reconfigure(m.members)
	} else {
		out, err = a.core.Submit(m.op, m.mode)
	}
	if err != nil {
		m.done <- callResult{err: fmt.Errorf("%w: %w", ErrRejected, err)}
		return
	}
	a.pending = m
	a.send(ctx, out)
	a.scheduleTick(ctx)
}

// send sends the core's requests as Requests, so that a replica address
// where no actor lives answers with a dead letter: with this actor as
// sender, or during a probe with the probe's sender for that replica.
func (a *clientActor) send(ctx actor.Context, out vsr.ClientOutput) {
	for _, env := range out.Messages {
		to := a.target(env)
		if to == nil {
			continue
		}
		if p := a.probe; p != nil && env.To >= 0 && env.To < len(p.sent) {
			p.sent[env.To]++
			ctx.RequestWithCustomSender(to, env.Msg, p.senders[env.To])
			continue
		}
		ctx.Request(to, env.Msg)
	}
}

// target is the actor an envelope of the core goes to, or nil.
func (a *clientActor) target(env vsr.Envelope) *actor.PID {
	return route(env, a.cfg.Resolve, a.cfg.Replicas)
}

// scheduleTick starts the retry timer unless it is running.
func (a *clientActor) scheduleTick(ctx actor.Context) {
	if a.ticking {
		return
	}
	a.ticking = true
	a.timers.SendOnce(clientTickInterval, ctx.Self(), &clientTick{instance: a.instance})
}

// finish ends the pending call with r. ctx is nil when the session is
// stopping, and its children, the probe's senders, stop with it.
func (a *clientActor) finish(ctx actor.Context, r callResult) {
	if a.pending == nil {
		return
	}
	a.pending.done <- r
	a.pending = nil
	a.endProbe(ctx)
}

// replicaCount is the size of the configuration the client starts with.
func (c ClientConfig) replicaCount() int {
	if c.Replicas == nil {
		return len(c.Members)
	}
	return len(c.Replicas)
}

func resultOf(r *vsr.Result) callResult {
	if r.Err != nil && len(r.Value) > 0 && errors.Is(r.Err, vsr.ErrInvalidRequest) {
		// The group said why (a refused reconfiguration does).
		return callResult{err: fmt.Errorf("%w: %w: %s", ErrRejected, r.Err, r.Value)}
	}
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
