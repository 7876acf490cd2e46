package actors_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// The observer hook (ReplicaConfig.Observer): what a replica reports in
// normal operation, across the loss of its primary, and when it drops a
// message.

// observed records the observations of every replica of a group.
type observed struct {
	mu  sync.Mutex
	all []actors.Observation
}

func (o *observed) Observe(ob actors.Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ob.Message = nil // the hook must not keep it
	o.all = append(o.all, ob)
}

// count counts the observations that match.
func (o *observed) count(match func(actors.Observation) bool) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, ob := range o.all {
		if match(ob) {
			n++
		}
	}
	return n
}

// kindsOf counts replica i's observations by kind.
func (o *observed) kindsOf(i int) map[actors.ObservationKind]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	kinds := map[actors.ObservationKind]int{}
	for _, ob := range o.all {
		if ob.Replica == i {
			kinds[ob.Kind]++
		}
	}
	return kinds
}

// messageObserver records, beside the kinds, the type of each message sent
// or received, which the recorder drops.
type messageObserver struct {
	*observed
	mu    sync.Mutex
	types map[string]int // "i sent Prepare", "j received PrepareOK", ...
	// unsized counts messages to replicas reported sent with no size (only
	// replies to clients in this process go unsized).
	unsized int
}

func (m *messageObserver) Observe(ob actors.Observation) {
	if ob.Message != nil {
		m.mu.Lock()
		m.types[fmt.Sprintf("%d %s %s", ob.Replica, ob.Kind, proto.MessageName(ob.Message).Name())]++
		if _, reply := ob.Message.(*messages.Reply); ob.Kind == actors.ObservedSent && !reply && ob.Size == 0 {
			m.unsized++
		}
		m.mu.Unlock()
	}
	m.observed.Observe(ob)
}

func (m *messageObserver) seen(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.types[key]
}

func observeGroup(t *testing.T) (*replicas, *messageObserver) {
	obs := &messageObserver{observed: &observed{}, types: map[string]int{}}
	g := startReplicas(t, 3, func(_ int, c *actors.ReplicaConfig) { c.Observer = obs })
	return g, obs
}

// TestObserverSeesNormalOperation: writes show up as the client's request at
// the primary, Prepares sent and received, PrepareOKs sent and received,
// commits advancing by every op, and each op applied and timed on every
// replica.
func TestObserverSeesNormalOperation(t *testing.T) {
	g, obs := observeGroup(t)
	c := g.client(actors.ClientConfig{})
	const writes = 10
	for k := range writes {
		execute(t, c, kv.PutOp(fmt.Sprint("k", k), []byte("v")))
	}
	require.Eventually(t, func() bool {
		return obs.count(func(o actors.Observation) bool {
			return o.Kind == actors.ObservedCommitAdvanced && o.Replica == 2 && o.CommitNumber >= writes+1
		}) > 0
	}, waitFor, pollEvery, "backup 2 commits every op")

	assert.Equal(t, 1, obs.kindsOf(0)[actors.ObservedLeadershipStarted], "replica 0 leads view 0")
	assert.GreaterOrEqual(t, obs.seen("0 received Request"), writes)
	assert.GreaterOrEqual(t, obs.seen("0 sent Prepare"), writes)
	assert.GreaterOrEqual(t, obs.seen("1 received Prepare"), writes)
	// A backup acknowledges the latest of the Prepares it has, which may
	// cover several.
	assert.Positive(t, obs.seen("1 sent PrepareOK"))
	assert.Positive(t, obs.seen("0 received PrepareOK"))
	assert.GreaterOrEqual(t, obs.seen("0 sent Reply"), writes)
	for i := range 3 {
		committed := 0
		obs.mu.Lock()
		for _, o := range obs.all {
			if o.Replica == i && o.Kind == actors.ObservedCommitAdvanced {
				committed += o.Count
			}
		}
		obs.mu.Unlock()
		assert.GreaterOrEqual(t, committed, writes+1, "replica %d: commits add up to every op (and the registration)", i)
		assert.GreaterOrEqual(t, obs.kindsOf(i)[actors.ObservedOperationApplied], writes, "replica %d applies each op", i)
	}
	assert.Zero(t, obs.unsized, "every message to a replica is reported with its size")
}

// TestObserverSeesAFailover: when the primary stops, a backup times out on
// it, starts a view change, completes it, and one of them takes the lead.
func TestObserverSeesAFailover(t *testing.T) {
	g, obs := observeGroup(t)
	c := g.client(actors.ClientConfig{})
	execute(t, c, kv.PutOp("k", []byte("v")))
	g.kill(0)
	execute(t, c, kv.PutOp("k", []byte("w")))

	timeouts := obs.count(func(o actors.Observation) bool { return o.Kind == actors.ObservedPrimaryTimeout })
	assert.Positive(t, timeouts, "a backup noticed the silent primary")
	for _, kind := range []actors.ObservationKind{actors.ObservedViewChangeStarted, actors.ObservedViewChangeCompleted} {
		assert.Positive(t, obs.count(func(o actors.Observation) bool { return o.Kind == kind && o.Replica != 0 }), "%s", kind)
	}
	leaders := obs.count(func(o actors.Observation) bool {
		return o.Kind == actors.ObservedLeadershipStarted && o.Replica != 0 && o.View > 0
	})
	assert.Equal(t, 1, leaders, "one new primary")
	assert.Positive(t, obs.count(func(o actors.Observation) bool {
		return o.Kind == actors.ObservedStatusChanged && o.Status == vsr.StatusViewChange
	}))
}

// TestObserverSeesDrops: a message the core refuses is reported with its
// reason.
func TestObserverSeesDrops(t *testing.T) {
	g, obs := observeGroup(t)
	c := g.client(actors.ClientConfig{})
	execute(t, c, kv.PutOp("k", []byte("v")))
	g.system.Root.RequestWithCustomSender(g.peers[1], &messages.Commit{ClusterId: clusterID + 1, CommitNumber: 1}, g.peers[0])
	require.Eventually(t, func() bool {
		return obs.count(func(o actors.Observation) bool {
			return o.Kind == actors.ObservedDropped && o.Replica == 1 && o.Count == 1 && o.Reason == vsr.DropWrongCluster
		}) == 1
	}, waitFor, pollEvery)
}
