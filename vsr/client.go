package vsr

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// Client is the client side of VR (paper section 4.1) as a pure core: it
// owns a client ID and its request numbers, sends each request to the replica
// it believes is primary, learns the view from replies, and resends to every
// replica when a reply is late. One request is outstanding at a time, as in
// the paper; a caller wanting concurrency uses one Client per session. The
// simulator's clients and the client actor both run this code.
//
// Before its first write the client registers (a request with Register set,
// through the log), which opens its session in the client table; a write from
// a client without a session is refused, never executed, so that a retry
// after a session expired cannot run twice. Reads need no session. The
// registration is the client's own business: Submit sends it first, and the
// caller sees only the result of its own request. The registration's reply
// names the session, and every later request carries that name.
type Client struct {
	cfg ClientConfig
	// epoch and members are the configuration the client knows: it learns
	// a later one from replies (docs/reconfiguration.md).
	epoch         uint64
	members       []string
	view          uint64
	requestNumber uint64
	pending       *messages.Request
	waited        int // ticks since the pending request was last sent
	backoff       int // ticks left before resending to the primary after BUSY (0: none)
	registered    bool
	// session is the op number of the registration that opened the
	// client's session: every request carries it.
	session uint64
	// queued is the caller's request while its registration is pending.
	queued *messages.Request
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// ClusterID must match the replicas'.
	ClusterID uint64
	// ClientID identifies this client in every replica's client table. It
	// must be non-zero and unique among the group's clients, for all time: a
	// client that reuses another's ID has its requests taken for retries.
	ClientID uint64
	// ReplicaCount is n.
	ReplicaCount int
	// Members names the replicas of the configuration the client starts
	// with, in index order, as Config.Members does; nil names them "0",
	// "1", ... Epoch is that configuration's epoch (0 for a group that was
	// never reconfigured). The client learns later ones from replies.
	Members []string
	Epoch   uint64
	// ReplyTo is where replicas send replies.
	ReplyTo *messages.ClientAddress
	// RetryTicks is how long to wait for a reply before resending the
	// request to every replica. Zero means 20 ticks.
	RetryTicks int
	// FirstRequestNumber lets a restarted client with the same ID continue
	// after the request numbers it used before. Zero means 1.
	FirstRequestNumber uint64
}

// Errors of the client core.
var (
	ErrRequestInFlight = errors.New("vsr: a request is already in flight on this client")
	ErrEmptyOperation  = errors.New("vsr: empty operation")
	ErrNotReadOnly     = errors.New("vsr: operation is not read-only")
	ErrInvalidRequest  = errors.New("vsr: request rejected as invalid")
	ErrClientConfig    = errors.New("vsr: bad client config")
	ErrTooLarge        = errors.New("vsr: request or result larger than the group's message bound")
	// ErrSessionExpired: the client's session was gone when the request
	// reached the primary (it was idle so long that it expired, or the
	// table was full). The request was not executed then; an earlier copy
	// of it may have been, so its outcome is unknown. The client registers
	// again before its next write.
	ErrSessionExpired = errors.New("vsr: client session expired; the outcome of the request is unknown")
)

// Result is the outcome of one request.
type Result struct {
	RequestNumber uint64
	Value         []byte
	// Err is ErrNotReadOnly or ErrInvalidRequest when the replicas refused
	// the request; nil when it was executed.
	Err error
	// Stale is set for a READ_MODE_STALE read.
	Stale bool
	// View and Replica say which replica answered, in which view.
	View    uint64
	Replica int
}

// ClientOutput is what the client must do after a call.
type ClientOutput struct {
	// Messages go to replicas.
	Messages []Envelope
	// Done is the result of the pending request, once it has one.
	Done *Result
}

// NewClient makes a client core.
func NewClient(cfg ClientConfig) (*Client, error) {
	switch {
	case cfg.ClientID == 0:
		return nil, fmt.Errorf("%w: client ID must be non-zero", ErrClientConfig)
	case cfg.ReplicaCount < 1 || cfg.ReplicaCount%2 == 0:
		return nil, fmt.Errorf("%w: %w: got %d", ErrClientConfig, ErrReplicaCount, cfg.ReplicaCount)
	case cfg.ReplyTo == nil:
		return nil, fmt.Errorf("%w: no reply address", ErrClientConfig)
	case cfg.RetryTicks < 0:
		return nil, fmt.Errorf("%w: negative retry ticks", ErrClientConfig)
	case cfg.Members != nil && (len(cfg.Members) != cfg.ReplicaCount || validMembers(cfg.Members) != nil):
		return nil, fmt.Errorf("%w: %w: %d names for %d replicas", ErrClientConfig, ErrMembers, len(cfg.Members), cfg.ReplicaCount)
	}
	if cfg.RetryTicks == 0 {
		cfg.RetryTicks = 20
	}
	c := &Client{cfg: cfg, requestNumber: 0, epoch: cfg.Epoch,
		members: Config{ReplicaCount: cfg.ReplicaCount, Members: cfg.Members}.members()}
	if cfg.FirstRequestNumber > 0 {
		c.requestNumber = cfg.FirstRequestNumber - 1
	}
	return c, nil
}

// Submit sends op with the given read mode to the replica believed to be
// primary. It fails if a request is already in flight.
func (c *Client) Submit(op []byte, mode messages.ReadMode) (ClientOutput, error) {
	if c.pending != nil {
		return ClientOutput{}, ErrRequestInFlight
	}
	if len(op) == 0 {
		return ClientOutput{}, ErrEmptyOperation
	}
	if mode == messages.ReadMode_READ_MODE_LOG && !c.registered {
		// The registration takes the lower number: a session opened at
		// number s refuses every request numbered s or below as old.
		reg := c.newRequest(nil, messages.ReadMode_READ_MODE_LOG)
		reg.Register = true
		c.queued = c.newRequest(op, mode)
		return c.send(reg), nil
	}
	return c.send(c.newRequest(op, mode)), nil
}

// Reconfigure asks the group to change its configuration to members (names
// in index order, as Config.Members): an operator's request, executed at
// most once like a write, after which the client uses the new
// configuration. The group refuses a configuration that is not valid, that
// adds a majority of new members, or that comes while another change is
// under way (see docs/reconfiguration.md).
func (c *Client) Reconfigure(members []string) (ClientOutput, error) {
	if c.pending != nil {
		return ClientOutput{}, ErrRequestInFlight
	}
	if err := validMembers(members); err != nil {
		return ClientOutput{}, fmt.Errorf("%w: %w", ErrMembers, err)
	}
	req := c.newRequest(nil, messages.ReadMode_READ_MODE_LOG)
	req.Reconfigure = &messages.Reconfiguration{Members: append([]string(nil), members...)}
	if !c.registered {
		reg := c.newRequest(nil, messages.ReadMode_READ_MODE_LOG)
		reg.Register = true
		// The registration must take the lower number.
		req.RequestNumber, reg.RequestNumber = reg.RequestNumber, req.RequestNumber
		c.queued = req
		return c.send(reg), nil
	}
	return c.send(req), nil
}

func (c *Client) newRequest(op []byte, mode messages.ReadMode) *messages.Request {
	c.requestNumber++
	return &messages.Request{
		ClusterId:     c.cfg.ClusterID,
		ClientId:      c.cfg.ClientID,
		RequestNumber: c.requestNumber,
		Operation:     op,
		ReplyTo:       c.cfg.ReplyTo,
		ReadMode:      mode,
		Session:       c.session,
		Epoch:         c.epoch,
	}
}

// send makes req the pending request and sends it to the primary.
func (c *Client) send(req *messages.Request) ClientOutput {
	c.pending = req
	c.waited, c.backoff = 0, 0
	return ClientOutput{Messages: []Envelope{c.toPrimary()}}
}

// toPrimary addresses the pending request to the replica believed primary.
func (c *Client) toPrimary() Envelope {
	p := c.Primary()
	return Envelope{To: p, Member: c.members[p], Msg: c.pending}
}

// learnEpoch takes the configuration a reply names, if it is later than the
// client's. The view starts over: views are counted per epoch.
func (c *Client) learnEpoch(m *messages.Reply) bool {
	return c.adopt(m.Epoch, m.Members)
}

// adopt makes epoch, with members, the client's configuration if it is
// later than the client's.
func (c *Client) adopt(epoch uint64, members []string) bool {
	if epoch <= c.epoch || validMembers(members) != nil {
		return false
	}
	c.epoch, c.members, c.view = epoch, append([]string(nil), members...), 0
	return true
}

// Learn takes a configuration the client heard of outside the protocol (from
// whatever hosts the group), if it is later than the one it knows, as a reply
// naming it would teach it; a pending request goes out again in it, the same
// request, so it still executes at most once. It reports whether the client
// took the configuration. A client needs it only when every member it knows
// of has left the group since it last heard from one.
func (c *Client) Learn(epoch uint64, members []string) (ClientOutput, bool) {
	if !c.adopt(epoch, members) {
		return ClientOutput{}, false
	}
	if c.pending == nil {
		return ClientOutput{}, true
	}
	c.restamp()
	return c.send(c.pending), true
}

// restamp makes the pending request one of the client's current epoch. It
// is a new message: the old one may still be in the hands of the transport.
func (c *Client) restamp() {
	req := proto.Clone(c.pending).(*messages.Request)
	req.Epoch = c.epoch
	c.pending = req
	if c.queued != nil {
		q := proto.Clone(c.queued).(*messages.Request)
		q.Epoch = c.epoch
		c.queued = q
	}
}

// Step handles a reply. Replies to anything but the pending request are
// ignored, except that every reply teaches the client a newer view.
func (c *Client) Step(m *messages.Reply) ClientOutput {
	if m == nil || m.ClientId != c.cfg.ClientID {
		return ClientOutput{}
	}
	learned := c.learnEpoch(m)
	if !m.Stale && m.Epoch == c.epoch && !learned {
		c.view = max(c.view, m.View)
	}
	if learned && c.pending != nil {
		c.restamp() // Its next copy goes out in the new configuration.
	}
	if c.pending == nil || m.RequestNumber != c.pending.RequestNumber {
		return ClientOutput{}
	}
	if m.Error == messages.ReplyError_REPLY_ERROR_WRONG_EPOCH {
		// Nothing ran: send the request again, in the configuration the
		// client now knows (the reply's, or a later one learned before);
		// a refusal from a replica behind the client is waited out.
		if c.pending.Epoch == c.epoch && !learned {
			return ClientOutput{}
		}
		c.restamp()
		return c.send(c.pending)
	}
	if m.Error == messages.ReplyError_REPLY_ERROR_BUSY || m.Error == messages.ReplyError_REPLY_ERROR_RECONFIGURING {
		// The primary's pipeline is full: back off for half the retry
		// time, then resend to the primary that said so. Sending to every
		// replica, as a timeout does, would multiply the load on a primary
		// that is already overloaded, since backups forward to it.
		c.waited, c.backoff = 0, max(1, c.cfg.RetryTicks/2)
		return ClientOutput{}
	}
	if c.pending.Register && m.Error == messages.ReplyError_REPLY_ERROR_NONE {
		c.registered, c.session = true, m.Session
		req := c.queued
		c.queued = nil
		req.Session = c.session
		return c.send(req)
	}
	res := &Result{RequestNumber: m.RequestNumber, Value: m.Result, Stale: m.Stale, View: m.View, Replica: int(m.Replica)}
	if c.queued != nil {
		res.RequestNumber = c.queued.RequestNumber // The registration failed; report it as the caller's request.
	}
	switch m.Error {
	case messages.ReplyError_REPLY_ERROR_NONE:
	case messages.ReplyError_REPLY_ERROR_NOT_READ_ONLY:
		res.Err = ErrNotReadOnly
	case messages.ReplyError_REPLY_ERROR_TOO_LARGE:
		res.Err = ErrTooLarge
	case messages.ReplyError_REPLY_ERROR_SESSION_EXPIRED:
		res.Err = ErrSessionExpired
		c.registered, c.session = false, 0
	default:
		res.Err = ErrInvalidRequest
	}
	c.pending, c.queued = nil, nil
	return ClientOutput{Done: res}
}

// Tick advances the client's clock; a request unanswered for RetryTicks is
// sent again to every replica, since the primary may have changed.
func (c *Client) Tick() ClientOutput {
	if c.pending == nil {
		return ClientOutput{}
	}
	if c.backoff > 0 {
		if c.backoff--; c.backoff == 0 {
			c.waited = 0
			return ClientOutput{Messages: []Envelope{c.toPrimary()}}
		}
	}
	c.waited++
	if c.waited < c.cfg.RetryTicks {
		return ClientOutput{}
	}
	c.waited = 0
	out := ClientOutput{Messages: make([]Envelope, 0, len(c.members))}
	for j, name := range c.members {
		out.Messages = append(out.Messages, Envelope{To: j, Member: name, Msg: c.pending})
	}
	return out
}

// ResendAll sends the pending request to every replica now, as a timeout
// would: for a caller that has learned that the replica it sent to does not
// exist.
func (c *Client) ResendAll() ClientOutput {
	if c.pending == nil {
		return ClientOutput{}
	}
	c.waited = c.cfg.RetryTicks
	return c.Tick()
}

// Cancel abandons the pending request: a late reply to it is ignored. The
// request may still execute; the next request gets a new number, so it can
// never be mistaken for this one.
func (c *Client) Cancel() { c.pending, c.queued = nil, nil }

// Pending reports whether a request is in flight.
func (c *Client) Pending() bool { return c.pending != nil }

// Primary is the replica the client believes is primary: its index in
// Members.
func (c *Client) Primary() int { return int(c.view % uint64(len(c.members))) }

// Epoch is the latest epoch the client has learned.
func (c *Client) Epoch() uint64 { return c.epoch }

// Members is the configuration of Epoch, member names in index order. The
// slice is shared: callers must not modify it.
func (c *Client) Members() []string { return c.members }

// View is the latest view the client has learned.
func (c *Client) View() uint64 { return c.view }

// RequestNumber is the number of the latest request submitted (a
// registration takes a number too).
func (c *Client) RequestNumber() uint64 { return c.requestNumber }
