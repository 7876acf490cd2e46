package supervisor_test

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
)

// 4. A retried request is executed once, before and after view changes.

// replyCollector is an actor that hands every Reply it gets to a channel.
type replyCollector struct{ replies chan *messages.Reply }

func (r *replyCollector) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*messages.Reply); ok {
		r.replies <- m
	}
}

// rawClient sends hand-made Requests, as a client retrying would.
type rawClient struct {
	t       testing.TB
	g       *supervisor.Group
	id      uint64
	self    *actor.PID
	replies chan *messages.Reply
	skipped []*messages.Reply // replies next passed over
}

func newRawClient(t testing.TB, g *supervisor.Group, id uint64) *rawClient {
	replies := make(chan *messages.Reply, 1024)
	pid := g.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &replyCollector{replies: replies}
	}))
	t.Cleanup(func() { g.System().Root.Stop(pid) })
	return &rawClient{t: t, g: g, id: id, self: pid, replies: replies}
}

func (c *rawClient) request(number uint64, op []byte) *messages.Request {
	return &messages.Request{ClusterId: testClusterID, ClientId: c.id, RequestNumber: number, Operation: op,
		ReplyTo: &messages.ClientAddress{Address: c.self.Address, Id: c.self.Id}}
}

// send sends a copy of req to replica i.
func (c *rawClient) send(i int, req *messages.Request) {
	c.g.System().Root.Send(c.g.Peers()[i], proto.Clone(req))
}

// next waits for the next reply to request number.
func (c *rawClient) next(number uint64) *messages.Reply {
	c.t.Helper()
	return c.await(number, nil)
}

// ask sends req to replica i, and again every resend until a reply to it
// arrives, as a client retrying would.
func (c *rawClient) ask(i int, req *messages.Request) *messages.Reply {
	c.t.Helper()
	c.send(i, req)
	return c.await(req.GetRequestNumber(), func() { c.send(i, req) })
}

func (c *rawClient) await(number uint64, resend func()) *messages.Reply {
	c.t.Helper()
	deadline := time.After(waitFor)
	retry := time.NewTicker(300 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case r := <-c.replies:
			require.Equal(c.t, c.id, r.GetClientId())
			if r.GetRequestNumber() != number {
				c.skipped = append(c.skipped, r)
				continue
			}
			require.Equal(c.t, messages.ReplyError_REPLY_ERROR_NONE, r.GetError())
			require.False(c.t, r.GetStale())
			return r
		case <-retry.C:
			if resend != nil {
				resend()
			}
		case <-deadline:
			c.t.Fatalf("no reply to request %d within %v", number, waitFor)
			return nil
		}
	}
}

// drain returns the replies next passed over and those not yet read.
func (c *rawClient) drain() []*messages.Reply {
	out := c.skipped
	c.skipped = nil
	for {
		select {
		case r := <-c.replies:
			out = append(out, r)
		default:
			return out
		}
	}
}

func TestRetriedRequestExecutesOnce(t *testing.T) {
	const n = 3
	g := startGroup(t, n)
	c := newClient(t, g, 1)
	raw := newRawClient(t, g, 0x5eed_0001)

	// Request 1 opens the raw client's session (a write from a client
	// without one is refused). Request 2 is a put-if-absent: executed once
	// it swaps, executed twice the second execution would not, and would
	// say so.
	p, _ := waitPrimary(t, g, -1)
	reg := raw.request(1, nil)
	reg.Register = true
	session := raw.ask(p, reg).GetSession() // the registration names the session
	require.NotZero(t, session)
	req := raw.request(2, kv.PutIfAbsentOp("once", []byte("first")))
	req.Session = session
	for range 3 {
		raw.send(p, req) // retries straight to the primary, back to back
	}
	for i := range n {
		raw.send(i, req) // and through every backup, which forwards it
	}
	first := raw.next(2)
	require.True(t, decode(t, first.GetResult()).GetSwapped())

	// A retry after it executed gets the stored reply.
	raw.send(p, req)
	again := raw.next(2)
	require.Equal(t, first.GetResult(), again.GetResult(), "a retry must get the stored result")
	for _, r := range raw.drain() { // any other copies answered: same result
		require.Equal(t, first.GetResult(), r.GetResult())
	}

	// Make a re-execution visible in the state: remove the key; running
	// request 1 again would put it back.
	execute(t, c, kv.DeleteOp("once"))
	require.Equal(t, first.GetResult(), raw.ask(p, req).GetResult())
	_, found := read(t, c, "once")
	require.False(t, found, "request 2 was executed again")
	sts := waitConverged(t, g, allReplicas(n), 0)
	ops := sts[0].OpNumber

	// Kill and restart primaries until the primary is a replica that
	// recovered its client table from a peer. After every view change the
	// new primary must still answer request 1 from its client table.
	restarted := map[int]bool{}
	for stage := 0; ; stage++ {
		require.Less(t, stage, 2*n, "the primary never became a restarted replica")
		p, view := waitPrimary(t, g, -1)
		if restarted[p] {
			break
		}
		require.NoError(t, g.Kill(p))
		np, _ := waitPrimary(t, g, int64(view), p)
		require.NoError(t, g.Restart(p))
		restarted[p] = true

		require.Equal(t, first.GetResult(), raw.ask(np, req).GetResult(), "stage %d: new primary %d", stage, np)
		_, found := read(t, c, "once")
		require.False(t, found, "stage %d: request 1 was executed again by replica %d", stage, np)
		waitConverged(t, g, allReplicas(n), ops)
	}
	p, _ = waitPrimary(t, g, -1)
	require.True(t, restarted[p])
	for i := range n {
		raw.send(i, req)
	}
	require.Equal(t, first.GetResult(), raw.next(2).GetResult())
	_, found = read(t, c, "once")
	require.False(t, found, "request 2 was executed again by the recovered primary %d", p)
	sts = waitConverged(t, g, allReplicas(n), ops)
	require.Equal(t, ops, sts[0].OpNumber, "a retry of an executed request must not enter the log")

	// Once a later request of the client has executed, request 2 is older
	// than the client table's entry: it is dropped, never executed again.
	req2 := raw.request(3, kv.PutOp("other", []byte("x")))
	req2.Session = session
	require.False(t, decode(t, raw.ask(p, req2).GetResult()).GetFound())
	raw.send(p, req)
	_, found = read(t, c, "once") // sent after the retry, so served after it
	require.False(t, found, "request 2 was executed again after request 2")
	sts = waitConverged(t, g, allReplicas(n), ops+1)
	require.Equal(t, ops+1, sts[0].OpNumber, "an old request must not enter the log")
	for _, r := range raw.drain() {
		if r.GetRequestNumber() == 2 {
			require.Equal(t, first.GetResult(), r.GetResult(), "request 2 was answered with a new result")
		}
	}
}
