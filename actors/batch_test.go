package actors_test

import (
	"fmt"
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
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// blockingSnapshots is a kv store whose Snapshot, which a replica actor
// calls on its own goroutine for a digest status query, can be made to wait:
// the test holds a replica still that way while messages pile up in its
// mailbox.
type blockingSnapshots struct {
	statemachine.StateMachine
	hold    <-chan struct{}
	entered chan<- struct{}
}

func (b *blockingSnapshots) Snapshot() ([]byte, error) {
	if b.hold != nil {
		b.entered <- struct{}{}
		<-b.hold
	}
	return b.StateMachine.Snapshot()
}

// The requests that wait in a primary's mailbox while it is busy go out as
// one batch: each backup gets one Prepare carrying all of them, not one
// Prepare each, and every request is answered.
func TestRequestsQueuedAtABusyPrimaryLeaveInOnePrepare(t *testing.T) {
	const n, clients = 3, 32
	system := newSystem(t)
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	var peers []*actor.PID
	for i := range n {
		peers = append(peers, system.NewLocalPID(fmt.Sprintf("%s%d", namePrefix, i)))
	}
	var prepares, entries atomic.Int64
	for i := range n {
		cfg := actors.ReplicaConfig{
			Core:  vsr.Config{ClusterID: clusterID, ReplicaCount: n, ReplicaIndex: i},
			Peers: peers,
			// No ticks: a tick queued among the writes would step the
			// batch early, and a heartbeat would resend Prepares.
			TickInterval: time.Hour,
			NewStateMachine: func() statemachine.StateMachine {
				sm := &blockingSnapshots{StateMachine: kv.New()}
				if i == 0 {
					sm.hold, sm.entered = hold, entered
				}
				return sm
			},
		}
		if i == 1 {
			cfg.DropInbound = func(m proto.Message) bool {
				if p, ok := m.(*messages.Prepare); ok {
					prepares.Add(1)
					entries.Add(int64(len(p.Entries)))
				}
				return false
			}
		}
		_, err := system.Root.SpawnNamed(actors.NewReplicaProps(cfg), fmt.Sprintf("%s%d", namePrefix, i))
		require.NoError(t, err)
	}

	// A reply collector, and a session for each client.
	var mu sync.Mutex
	replies := map[uint64]*messages.Reply{}
	collector := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if r, ok := ctx.Message().(*messages.Reply); ok {
			mu.Lock()
			replies[r.ClientId*1000+r.RequestNumber] = r
			mu.Unlock()
		}
	}))
	replyTo := &messages.ClientAddress{Address: collector.Address, Id: collector.Id}
	answered := func(number uint64) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for c := uint64(1); c <= clients; c++ {
				if r := replies[c*1000+number]; r == nil || r.Error != messages.ReplyError_REPLY_ERROR_NONE {
					return false
				}
			}
			return true
		}
	}
	for c := uint64(1); c <= clients; c++ {
		system.Root.Send(peers[0], &messages.Request{ClusterId: clusterID, ClientId: c, RequestNumber: 1,
			ReplyTo: replyTo, Register: true})
	}
	require.Eventually(t, answered(1), 10*time.Second, time.Millisecond, "every client registered")
	before := prepares.Load()

	// Hold the primary in a digest query, queue one write per client
	// behind it (a local Send is in the mailbox when it returns), let go.
	system.Root.RequestFuture(peers[0], &actors.StatusQuery{WithDigest: true}, 10*time.Second)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the primary never took the digest query")
	}
	for c := uint64(1); c <= clients; c++ {
		mu.Lock()
		session := replies[c*1000+1].Session
		mu.Unlock()
		system.Root.Send(peers[0], &messages.Request{ClusterId: clusterID, ClientId: c, RequestNumber: 2,
			ReplyTo: replyTo, Operation: kv.PutOp(fmt.Sprintf("k%d", c), []byte("v")), Session: session})
	}
	close(hold)
	require.Eventually(t, answered(2), 10*time.Second, time.Millisecond, "every write answered")

	assert.Equal(t, int64(1), prepares.Load()-before, "one Prepare for the whole batch")
	assert.Equal(t, int64(2*clients), entries.Load(), "registrations and writes, each prepared once")
}
