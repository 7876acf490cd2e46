package cluster

import (
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/vsrgo/vsr/actors"
)

// Client reaches a group across machines: an actor system with remoting of
// its own (replies come back to it) and an actors.Client over the group's
// replica PIDs.
type Client struct {
	*actors.Client
	cfg    Config
	system *actor.ActorSystem
	remote *remote.Remote
	closed sync.Once
}

// ClientOptions configures a remote client.
type ClientOptions struct {
	// Bind is the host:port the client listens on for replies (default
	// 127.0.0.1:0, a free port on loopback). The replicas must be able to
	// reach it.
	Bind string
	// Sessions is the number of requests in flight at once (default 1).
	Sessions int
	// RetryInterval is how long a session waits for a reply before it
	// resends to every replica (default 200 ms).
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// NewClient connects to the group c describes.
func NewClient(c Config, opts ClientOptions) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if opts.Bind == "" {
		opts.Bind = "127.0.0.1:0"
	}
	system, _ := actors.NewActorSystem(opts.Logger)
	r, err := startRemote(system, opts.Bind, "", c.TLS, c.History.MaxMessageBytes)
	if err != nil {
		return nil, err
	}
	inner, err := actors.NewClient(system, actors.ClientConfig{ClusterID: c.ClusterID, Members: c.Replicas,
		Resolve: Resolve, Sessions: opts.Sessions, RetryInterval: opts.RetryInterval})
	if err != nil {
		r.Shutdown(false)
		return nil, err
	}
	return &Client{Client: inner, cfg: c, system: system, remote: r}, nil
}

// Status asks every replica for its status with a digest of its state, for
// comparing replicas' states; a replica that does not answer within timeout
// has a nil entry. The digest costs every replica an encoding of its whole
// state machine and a hash of it: O(state size) in time and memory, per
// call (on the replica's goroutine, stalling it, unless the state machine
// implements statemachine.Checkpointer). Use StatusWithoutDigest to poll,
// or whenever the digest is not compared.
func (c *Client) Status(timeout time.Duration) []*actors.StatusReply { return c.status(timeout, true) }

// StatusWithoutDigest is Status without the digest (Digest is empty): each
// replica answers from a few counters, in constant time whatever the size
// of its state. It is the form for polling, health checks and finding the
// primary.
func (c *Client) StatusWithoutDigest(timeout time.Duration) []*actors.StatusReply {
	return c.ask(timeout, &actors.StatusRequest{})
}

// StatusWithMemory is StatusWithoutDigest with each replica's process heap
// in use (StatusReply.HeapInUse): every replica runs a garbage collection
// first, which stalls it for the collection, so this is for diagnostics
// such as `vsr history`, not for polling.
func (c *Client) StatusWithMemory(timeout time.Duration) []*actors.StatusReply {
	return c.ask(timeout, &actors.StatusRequest{WithMemory: true})
}

func (c *Client) status(timeout time.Duration, withDigest bool) []*actors.StatusReply {
	return c.ask(timeout, &actors.StatusRequest{WithDigest: withDigest})
}

// ask sends req to every replica and collects the answers; a replica that
// does not answer within timeout has a nil entry.
func (c *Client) ask(timeout time.Duration, req *actors.StatusRequest) []*actors.StatusReply {
	out := make([]*actors.StatusReply, len(c.cfg.Replicas))
	futures := make([]*actor.Future, len(out))
	for j, pid := range c.cfg.PeerPIDs() {
		futures[j] = c.system.Root.RequestFuture(pid, req, timeout)
	}
	for j, f := range futures {
		if res, err := f.Result(); err == nil {
			out[j], _ = res.(*actors.StatusReply)
		}
	}
	return out
}

// Close stops the client and its remoting. It is safe to call more than
// once (Proto.Actor's ActorSystem.Shutdown is not).
func (c *Client) Close() {
	c.closed.Do(func() {
		c.Client.Close()
		c.remote.Shutdown(false)
		c.system.Shutdown()
	})
}
