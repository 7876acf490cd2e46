package supervisor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/sim"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// These tests run real replica groups on a real actor system. They never
// assert on how long something took: they poll for the state they expect
// with generous deadlines, because the machine they run on is small and
// shared. Failure detection runs on the default timing (a backup suspects a
// silent primary after 300-450 ms).

const (
	// waitFor bounds every poll for a condition that must become true.
	waitFor = 10 * time.Second
	// pollEvery is how often a condition is polled.
	pollEvery = 20 * time.Millisecond
	// opTimeout bounds one client call that is expected to succeed.
	opTimeout = 10 * time.Second
	// testClusterID is the cluster ID of every group started here.
	testClusterID = 0x7e57
)

// startGroup starts an n-replica kv group that is stopped when the test ends.
func startGroup(t testing.TB, n int, configure ...func(*supervisor.GroupConfig)) *supervisor.Group {
	t.Helper()
	cfg := supervisor.GroupConfig{ClusterID: testClusterID, Replicas: n, NewStateMachine: kv.New}
	for _, f := range configure {
		f(&cfg)
	}
	g, err := supervisor.StartGroup(cfg)
	require.NoError(t, err)
	t.Cleanup(g.Stop)
	return g
}

// newClient makes a client of g that is closed when the test ends.
func newClient(t testing.TB, g *supervisor.Group, sessions int) *actors.Client {
	t.Helper()
	c, err := g.NewClient(sessions)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// decode decodes a kv result and requires that the store accepted the op.
func decode(t testing.TB, b []byte) *kv.Result {
	t.Helper()
	r, err := kv.DecodeResult(b)
	require.NoError(t, err)
	require.Empty(t, r.GetError(), "the store rejected the operation")
	return r
}

// execute runs op through the log and returns its decoded result.
func execute(t testing.TB, c *actors.Client, op []byte) *kv.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := c.Execute(ctx, op)
	require.NoError(t, err)
	return decode(t, b)
}

// put sets key to value through the log.
func put(t testing.TB, c *actors.Client, key, value string) *kv.Result {
	t.Helper()
	return execute(t, c, kv.PutOp(key, []byte(value)))
}

// read reads key with a linearizable read.
func read(t testing.TB, c *actors.Client, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := c.Read(ctx, kv.GetOp(key))
	require.NoError(t, err)
	r := decode(t, b)
	return string(r.GetValue()), r.GetFound()
}

// readStale reads key from whichever replica answers first.
func readStale(t testing.TB, c *actors.Client, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	b, err := c.ReadStale(ctx, kv.GetOp(key))
	require.NoError(t, err)
	r := decode(t, b)
	return string(r.GetValue()), r.GetFound()
}

// status polls every replica.
func status(g *supervisor.Group) []supervisor.ReplicaStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return g.Status(ctx)
}

// currentPrimary returns the replica that is normal and primary in the
// highest view, and that view; ok is false if there is none.
func currentPrimary(g *supervisor.Group) (index int, view uint64, ok bool) {
	index = -1
	for _, s := range status(g) {
		if !s.Down && s.Status == vsr.StatusNormal && s.Primary == s.Replica && (index < 0 || s.View > view) {
			index, view = s.Replica, s.View
		}
	}
	return index, view, index >= 0
}

// waitPrimary waits for a primary in a view above minView (use -1 for any)
// that is not in excluded, and returns it and its view.
func waitPrimary(t testing.TB, g *supervisor.Group, minView int64, excluded ...int) (int, uint64) {
	t.Helper()
	var index int
	var view uint64
	require.Eventually(t, func() bool {
		i, v, ok := currentPrimary(g)
		if !ok || int64(v) <= minView || slices.Contains(excluded, i) {
			return false
		}
		index, view = i, v
		return true
	}, waitFor, pollEvery, "no new primary above view %d outside %v", minView, excluded)
	return index, view
}

// waitConverged waits until every replica in up is normal in the same view
// with the same commit number, op number and state digest, and the commit
// number is at least minCommit. It returns the statuses it last saw.
func waitConverged(t testing.TB, g *supervisor.Group, up []int, minCommit uint64) []supervisor.ReplicaStatus {
	t.Helper()
	var last []supervisor.ReplicaStatus
	ok := assert.Eventually(t, func() bool {
		last = status(g)
		return converged(last, up, minCommit)
	}, waitFor, pollEvery)
	if !ok {
		t.Fatalf("replicas %v did not converge at commit >= %d; last status:\n%s", up, minCommit, describe(last))
	}
	return last
}

func converged(sts []supervisor.ReplicaStatus, up []int, minCommit uint64) bool {
	first := sts[up[0]]
	if first.CommitNumber < minCommit {
		return false
	}
	for _, i := range up {
		s := sts[i]
		if s.Down || s.Status != vsr.StatusNormal || s.View != first.View ||
			s.CommitNumber != first.CommitNumber || s.OpNumber != s.CommitNumber || s.Digest != first.Digest {
			return false
		}
	}
	return true
}

func describe(sts []supervisor.ReplicaStatus) string {
	var b strings.Builder
	for _, s := range sts {
		fmt.Fprintf(&b, "  replica %d: down=%v status=%v view=%d op=%d commit=%d digest=%x\n",
			s.Replica, s.Down, s.Status, s.View, s.OpNumber, s.CommitNumber, s.Digest[:6])
	}
	return b.String()
}

func allReplicas(n int) []int {
	up := make([]int, n)
	for i := range up {
		up[i] = i
	}
	return up
}

func without(all []int, gone ...int) []int {
	return slices.DeleteFunc(slices.Clone(all), func(i int) bool { return slices.Contains(gone, i) })
}

// requireValues reads every key with a linearizable read and requires its
// last acknowledged value.
func requireValues(t testing.TB, c *actors.Client, want map[string]string) {
	t.Helper()
	for key, value := range want {
		got, found := read(t, c, key)
		require.True(t, found, "acknowledged key %q is gone", key)
		require.Equal(t, value, got, "key %q lost its last acknowledged value", key)
	}
}

// 1. Writes and reads through the client; replicas converge.

func TestWritesAndReadsConverge(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			g := startGroup(t, n)
			c := newClient(t, g, 1)

			want := map[string]string{}
			for i := range 20 {
				key := fmt.Sprintf("key-%d", i)
				r := put(t, c, key, key+"-v1")
				require.False(t, r.GetFound(), "a new key cannot have been present")
				want[key] = key + "-v1"
			}
			for i := range 10 {
				key := fmt.Sprintf("key-%d", i)
				r := put(t, c, key, key+"-v2")
				require.True(t, r.GetFound(), "an overwritten key must have been present")
				want[key] = key + "-v2"
			}
			writes := uint64(31) // and the client's registration

			// Linearizable reads see every acknowledged write at once.
			requireValues(t, c, want)
			_, found := read(t, c, "never-written")
			require.False(t, found)

			// A read through the log also sees them (and is itself an op).
			r := execute(t, c, kv.GetOp("key-3"))
			require.True(t, r.GetFound())
			require.Equal(t, "key-3-v2", string(r.GetValue()))
			writes++

			sts := waitConverged(t, g, allReplicas(n), writes)
			require.Equal(t, writes, sts[0].CommitNumber, "reads must not go through the log, writes must")

			// Once every replica has executed everything, a stale read from
			// any of them returns the latest value.
			for key, value := range want {
				got, found := readStale(t, c, key)
				require.True(t, found, key)
				require.Equal(t, value, got, key)
			}
			_, found = readStale(t, c, "never-written")
			require.False(t, found)
		})
	}
}

// 2. Killing the primary: a new primary in a higher view, no acknowledged
// write lost, writes keep being served.

func TestKillPrimaryKeepsAcknowledgedWrites(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			g := startGroup(t, n)
			c := newClient(t, g, 1)
			f := (n - 1) / 2

			want := map[string]string{}
			writes := uint64(0)
			write := func(key, value string) {
				put(t, c, key, value)
				want[key] = value
				writes++
			}
			for i := range 10 {
				write(fmt.Sprintf("k%d", i), fmt.Sprintf("before-%d", i))
			}

			// Kill the primary f times in a row: the group tolerates f
			// failures, so it must keep serving after each.
			var killed []int
			for round := range f {
				p, view := waitPrimary(t, g, -1, killed...)
				require.NoError(t, g.Kill(p))
				killed = append(killed, p)

				np, nview := waitPrimary(t, g, int64(view), killed...)
				require.NotEqual(t, p, np)
				require.Greater(t, nview, view)

				requireValues(t, c, want)
				for i := range 5 {
					write(fmt.Sprintf("k%d", i), fmt.Sprintf("after-kill-%d-%d", round, i))
					write(fmt.Sprintf("new-%d-%d", round, i), "x")
				}
				requireValues(t, c, want)
				waitConverged(t, g, without(allReplicas(n), killed...), writes)
			}

			// The killed replicas come back through recovery and catch up.
			for _, p := range killed {
				require.NoError(t, g.Restart(p))
			}
			write("after-restart", "y")
			waitConverged(t, g, allReplicas(n), writes)
			requireValues(t, c, want)
		})
	}
}

// 3. A replica that panics is restarted by the supervisor and recovers.

// eventLog records a group's events.
type eventLog struct {
	mu     sync.Mutex
	events []actors.Event
}

func (l *eventLog) add(e actors.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) snapshot() []actors.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// restartedAt returns the position of the first restart event of replica i at
// or after position from, or -1.
func (l *eventLog) restartedAt(i, from int) int {
	for k, e := range l.snapshot() {
		if k >= from && e.Replica == i && e.Restarted {
			return k
		}
	}
	return -1
}

func TestCrashedReplicaRecovers(t *testing.T) {
	cases := []struct {
		name    string
		n       int
		primary bool // crash the primary instead of a backup
	}{
		{"backup/replicas=3", 3, false},
		{"backup/replicas=5", 5, false},
		{"primary/replicas=3", 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events := &eventLog{}
			g := startGroup(t, tc.n, func(cfg *supervisor.GroupConfig) { cfg.OnEvent = events.add })
			c := newClient(t, g, 1)

			want := map[string]string{}
			writes := uint64(0)
			for i := range 10 {
				key := fmt.Sprintf("k%d", i)
				put(t, c, key, "v1")
				want[key] = "v1"
				writes++
			}
			sts := waitConverged(t, g, allReplicas(tc.n), writes)
			for i := range tc.n {
				require.Equal(t, -1, events.restartedAt(i, 0), "replica %d has not restarted yet", i)
			}

			p, _ := waitPrimary(t, g, -1)
			victim := (p + 1) % tc.n
			if tc.primary {
				victim = p
			}
			before := sts[victim]
			mark := len(events.snapshot())
			require.NoError(t, g.Crash(victim))

			// The supervisor restarts it as a new instance, which recovers.
			var at int
			require.Eventually(t, func() bool {
				at = events.restartedAt(victim, mark)
				return at >= 0
			}, waitFor, pollEvery, "replica %d was not restarted", victim)
			restart := events.snapshot()[at]
			require.Equal(t, vsr.StatusRecovering, restart.Status, "a restarted replica must start recovering")
			require.False(t, restart.Primary)

			// Writes keep flowing while it recovers, and it catches up.
			for i := range 10 {
				key := fmt.Sprintf("k%d", i)
				put(t, c, key, "v2")
				want[key] = "v2"
				writes++
			}
			sts = waitConverged(t, g, allReplicas(tc.n), writes)
			require.Equal(t, vsr.StatusNormal, sts[victim].Status)
			requireValues(t, c, want)

			// It went recovering -> normal, in that order, after the restart.
			var sawNormal bool
			for _, e := range events.snapshot()[at+1:] {
				if e.Replica == victim && e.Status == vsr.StatusNormal {
					sawNormal = true
				}
			}
			require.True(t, sawNormal, "no normal event for replica %d after its restart", victim)
			if tc.primary {
				// Nothing answers for a recovering replica, so the group
				// must have moved past the crashed primary's view.
				require.Greater(t, sts[victim].View, before.View)
			}
		})
	}
}

func TestRestartLimitThenRestart(t *testing.T) {
	const n, victim = 3, 1
	events := &eventLog{}
	g := startGroup(t, n, func(cfg *supervisor.GroupConfig) {
		cfg.OnEvent = events.add
		cfg.MaxRestarts, cfg.RestartWindow = 2, time.Hour
	})
	c := newClient(t, g, 1)
	put(t, c, "k", "v1")

	// Two crashes are restarted...
	mark := 0
	for range 2 {
		require.NoError(t, g.Crash(victim))
		require.Eventually(t, func() bool { return events.restartedAt(victim, mark) >= 0 }, waitFor, pollEvery)
		mark = events.restartedAt(victim, mark) + 1
	}
	// ...the third is one too many within the window: the replica stays down.
	require.NoError(t, g.Crash(victim))
	require.Eventually(t, func() bool { return status(g)[victim].Down }, waitFor, pollEvery)
	require.Equal(t, -1, events.restartedAt(victim, mark), "restarted past MaxRestarts")

	// The others serve on; Restart brings it back through recovery.
	put(t, c, "k", "v2")
	require.NoError(t, g.Restart(victim))
	require.Eventually(t, func() bool { return events.restartedAt(victim, mark) >= 0 }, waitFor, pollEvery)
	put(t, c, "k", "v3")
	waitConverged(t, g, allReplicas(n), 3)
	value, _ := read(t, c, "k")
	require.Equal(t, "v3", value)
}

func TestRestartOfRunningReplicaIsAnError(t *testing.T) {
	events := &eventLog{}
	g := startGroup(t, 3, func(cfg *supervisor.GroupConfig) { cfg.OnEvent = events.add })
	c := newClient(t, g, 1)
	put(t, c, "k", "v")
	require.Error(t, g.Restart(1), "replica 1 is running: there is nothing to restart")
	put(t, c, "k", "w")
	waitConverged(t, g, allReplicas(3), 2)
	for i := range 3 {
		require.Equal(t, -1, events.restartedAt(i, 0), "replica %d was replaced", i)
	}
	// Killing a replica twice is harmless.
	require.NoError(t, g.Kill(2))
	require.NoError(t, g.Kill(2))
	require.True(t, status(g)[2].Down)
}

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
	raw.ask(p, reg)
	req := raw.request(2, kv.PutIfAbsentOp("once", []byte("first")))
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

// 7. A concurrent history spanning a primary kill is linearizable.

func TestConcurrentHistoryAcrossFailoverIsLinearizable(t *testing.T) {
	const (
		n        = 3
		workers  = 6
		duration = 2500 * time.Millisecond
	)
	keys := []string{"a", "b", "c"}
	g := startGroup(t, n)
	c := newClient(t, g, workers)
	history := &sim.History{}
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	var stop atomic.Bool
	var completed, unknown, afterFailover atomic.Int64
	var failoverDone atomic.Int64 // history time the new primary was seen; 0 until then
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	seed := uint64(time.Now().UnixNano())
	t.Logf("workload seed %d", seed)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			seen := map[string]string{}
			for seq := 0; !stop.Load(); seq++ {
				// Think time between ops keeps the history to some ten
				// thousand ops, which the checker takes well under a second
				// on; unpaced, it reaches 100k and takes seconds.
				time.Sleep(time.Millisecond)
				key := keys[rng.IntN(len(keys))]
				value := fmt.Sprintf("w%d-%d", w, seq)
				var in sim.Input
				var op []byte
				read := false
				switch k := rng.IntN(10); {
				case k < 3:
					in, op = sim.Input{Kind: sim.OpPut, Key: key, Value: value}, kv.PutOp(key, []byte(value))
				case k < 6:
					in, op, read = sim.Input{Kind: sim.OpGet, Key: key}, kv.GetOp(key), k < 5
				case k < 9:
					in = sim.Input{Kind: sim.OpCAS, Key: key, Expected: seen[key], Value: value}
					op = kv.CASOp(key, []byte(seen[key]), []byte(value))
				default:
					in, op = sim.Input{Kind: sim.OpPutIfAbsent, Key: key, Value: value}, kv.PutIfAbsentOp(key, []byte(value))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				id := history.Invoke(w, in, now())
				var b []byte
				var err error
				if read {
					b, err = c.Read(ctx, op)
				} else {
					b, err = c.Execute(ctx, op)
				}
				ret := now()
				cancel()
				if errors.Is(err, actors.ErrTimeout) {
					unknown.Add(1) // left incomplete: it may or may not have happened
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d: %v: %w", w, in, err)
					return
				}
				r, err := kv.DecodeResult(b)
				if err != nil || r.GetError() != "" {
					errs <- fmt.Errorf("worker %d: %v: bad result %v (%v)", w, in, r, err)
					return
				}
				out := sim.Output{Found: r.GetFound(), Value: string(r.GetValue()), Swapped: r.GetSwapped()}
				history.Complete(id, out, ret)
				completed.Add(1)
				if f := failoverDone.Load(); f > 0 && ret > f {
					afterFailover.Add(1)
				}
				switch {
				case in.Kind == sim.OpGet && r.GetFound():
					seen[key] = string(r.GetValue())
				case in.Kind == sim.OpGet:
					delete(seen, key)
				case in.Kind == sim.OpPut || r.GetSwapped():
					seen[key] = value
				case in.Kind == sim.OpCAS && r.GetFound():
					seen[key] = string(r.GetValue()) // a failed CAS returns the current value
				}
			}
		}()
	}

	// Let the workload run, kill the primary in the middle, restart it later.
	time.Sleep(duration / 3)
	p, view := waitPrimary(t, g, -1)
	require.NoError(t, g.Kill(p))
	np, _ := waitPrimary(t, g, int64(view), p)
	failoverDone.Store(now())
	t.Logf("killed primary %d in view %d; new primary %d", p, view, np)
	time.Sleep(duration / 3)
	require.NoError(t, g.Restart(p))
	time.Sleep(duration / 3)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.False(t, t.Failed())

	t.Logf("%d ops completed (%d after the failover), %d timed out", completed.Load(), afterFailover.Load(), unknown.Load())
	require.Positive(t, afterFailover.Load(), "nothing completed after the new primary took over")

	checkStart := time.Now()
	ok, result, info := history.Check(time.Minute)
	t.Logf("history checked in %v", time.Since(checkStart).Round(time.Millisecond))
	if !ok {
		path := filepath.Join(t.TempDir(), "history.html")
		if err := sim.WriteVisualization(path, info); err == nil {
			t.Logf("visualisation: %s", path)
		}
	}
	require.True(t, ok, "history is not linearizable: %v", result)

	waitConverged(t, g, allReplicas(n), 1)
}

// 8. No goroutine outlives Stop.

// goroutines returns the stack of every goroutine by ID.
func goroutines() map[int64]string {
	buf := make([]byte, 1<<20)
	for {
		k := runtime.Stack(buf, true)
		if k < len(buf) {
			buf = buf[:k]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int64]string{}
	for _, stack := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := strings.Cut(string(stack), " [")
		id, err := strconv.ParseInt(strings.TrimPrefix(header, "goroutine "), 10, 64)
		if err == nil {
			out[id] = string(stack)
		}
	}
	return out
}

// newerThan returns the stacks of the goroutines created after the one with
// ID maxID (IDs only grow).
func newerThan(maxID int64) []string {
	var out []string
	for id, stack := range goroutines() {
		if id > maxID {
			out = append(out, stack)
		}
	}
	return out
}

// creators names the function that started each goroutine of stacks.
func creators(stacks []string) string {
	var names []string
	for _, stack := range stacks {
		lines := strings.Split(stack, "\n")
		name := lines[0]
		for k, line := range lines {
			if strings.HasPrefix(line, "created by ") && k+1 < len(lines) {
				name = strings.TrimPrefix(line, "created by ") + " at " + strings.TrimSpace(lines[k+1])
			}
		}
		names = append(names, name)
	}
	return strings.Join(names, "; ")
}

func TestStopLeavesNoGoroutines(t *testing.T) {
	var maxID int64
	for id := range goroutines() {
		maxID = max(maxID, id)
	}
	baseline := runtime.NumGoroutine()

	g, err := supervisor.StartGroup(supervisor.GroupConfig{ClusterID: testClusterID, Replicas: 3, NewStateMachine: kv.New})
	require.NoError(t, err)
	c, err := g.NewClient(4)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			for i := range 25 {
				key := fmt.Sprintf("k%d", i%5)
				if _, err := c.Execute(ctx, kv.PutOp(key, []byte(fmt.Sprintf("%d-%d", w, i)))); err != nil {
					errs <- err
					return
				}
				if _, err := c.Read(ctx, kv.GetOp(key)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Exercise the paths that leave timers and dead letters behind: a
	// killed primary, a view change, a crash and restart.
	p, view := waitPrimary(t, g, -1)
	require.NoError(t, g.Kill(p))
	waitPrimary(t, g, int64(view), p)
	put(t, c, "after", "kill")
	require.NoError(t, g.Restart(p))
	// A recovering replica counts as failed: wait for it before crashing
	// another, or the group (f = 1) is stuck by design.
	waitConverged(t, g, allReplicas(3), 101)
	require.NoError(t, g.Crash((p+1)%3))
	waitConverged(t, g, allReplicas(3), 101)

	c.Close()
	g.Stop()
	g.Stop() // safe twice

	// Every replica actor is gone, so nothing of the group runs any more:
	// idle actors and pending one-shot timers hold no goroutine, so counting
	// goroutines alone would not notice replicas still ticking.
	for _, s := range status(g) {
		require.True(t, s.Down, "replica %d still answers after Stop", s.Replica)
	}
	if first := newerThan(maxID); len(first) > 0 {
		t.Logf("right after Stop, %d goroutines started since StartGroup still run: %s", len(first), creators(first))
	}

	// Poll from this goroutine: assert.Eventually would start goroutines of
	// its own.
	var leaked []string
	for deadline := time.Now().Add(waitFor); ; time.Sleep(pollEvery) {
		leaked = newerThan(maxID)
		if len(leaked) == 0 && runtime.NumGoroutine() <= baseline || time.Now().After(deadline) {
			break
		}
	}
	if len(leaked) > 0 || runtime.NumGoroutine() > baseline {
		t.Fatalf("%d goroutines before StartGroup, %d after Stop; %d started since and still running:\n\n%s",
			baseline, runtime.NumGoroutine(), len(leaked), strings.Join(leaked, "\n\n"))
	}

	// A stopped group refuses further use instead of panicking.
	_, err = g.NewClient(1)
	require.ErrorIs(t, err, supervisor.ErrStopped)
	require.ErrorIs(t, g.Kill(0), supervisor.ErrStopped)
	require.ErrorIs(t, g.Restart(0), supervisor.ErrStopped)
	require.ErrorIs(t, g.Crash(0), supervisor.ErrStopped)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err = c.Execute(ctx, kv.PutOp("k", []byte("v")))
	require.ErrorIs(t, err, actors.ErrClosed)
}

// 9. Bad configuration is an error, never a panic.

func TestStartGroupRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  supervisor.GroupConfig
		want error
	}{
		{"zero replicas", supervisor.GroupConfig{Replicas: 0, NewStateMachine: kv.New}, vsr.ErrReplicaCount},
		{"negative replicas", supervisor.GroupConfig{Replicas: -1, NewStateMachine: kv.New}, vsr.ErrReplicaCount},
		{"two replicas", supervisor.GroupConfig{Replicas: 2, NewStateMachine: kv.New}, vsr.ErrReplicaCount},
		{"four replicas", supervisor.GroupConfig{Replicas: 4, NewStateMachine: kv.New}, vsr.ErrReplicaCount},
		{"no state machine", supervisor.GroupConfig{Replicas: 3}, vsr.ErrNoStateMachine},
		{"no state machine, even replicas", supervisor.GroupConfig{Replicas: 2}, nil},
		{"bad timing", supervisor.GroupConfig{Replicas: 3, NewStateMachine: kv.New,
			Timing: vsr.Config{HeartbeatTicks: 10, InactivityTicks: 5}}, vsr.ErrTiming},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var g *supervisor.Group
			var err error
			require.NotPanics(t, func() { g, err = supervisor.StartGroup(tc.cfg) })
			require.Error(t, err)
			require.Nil(t, g)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			} else {
				require.True(t, errors.Is(err, vsr.ErrReplicaCount) || errors.Is(err, vsr.ErrNoStateMachine), err)
			}
		})
	}

	// Out-of-range replica indexes are errors too.
	g := startGroup(t, 3)
	for _, i := range []int{-1, 3} {
		require.ErrorIs(t, g.Kill(i), vsr.ErrReplicaIndex)
		require.ErrorIs(t, g.Restart(i), vsr.ErrReplicaIndex)
		require.ErrorIs(t, g.Crash(i), vsr.ErrReplicaIndex)
	}
}
