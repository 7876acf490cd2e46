package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// A remote client whose replica addresses are live actor systems with no
// replica actor on them gets ErrNoSuchGroup: every node answers every
// request with a dead letter.
func TestRemoteClientGetsNoSuchGroupFromNodesWithoutReplicas(t *testing.T) {
	cfg := Config{ClusterID: 1, Replicas: freeAddrs(t, 3)}
	for _, addr := range cfg.Replicas {
		system, _ := actors.NewActorSystem(nil)
		r, err := startRemote(system, addr, addr, nil, 0)
		require.NoError(t, err)
		t.Cleanup(func() { r.Shutdown(false); system.Shutdown() })
	}
	c, err := NewClient(cfg, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Execute(ctx, kv.PutOp("k", []byte("v")))
	require.ErrorIs(t, err, actors.ErrNoSuchGroup)
	require.NotErrorIs(t, err, actors.ErrTimeout)
}

// The primary's node stops while clients write over remoting. The client's
// requests to it queue in remoting while it tries to reconnect (five
// attempts, 2 s apart), then come back as dead letters in a burst; the
// other two replicas elect a new primary meanwhile. The group exists
// throughout, so no call may end with ErrNoSuchGroup (the workload counts
// any error but ErrTimeout as unexpected), and writes go on.
func TestRemoteClientNeverReportsNoSuchGroupWhenThePrimaryNodeIsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out remoting's reconnection attempts")
	}
	cfg, nodes := startNodes(t, 3, nil, nil)
	// A short retry interval makes every session resend to every replica,
	// the lost one included, every 25 ms while a call is unanswered: many
	// requests queue for the lost node.
	c, err := NewClient(cfg, ClientOptions{Sessions: 6, RetryInterval: 25 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	waitFor(t, "a primary", 10*time.Second, func() bool { return primaryOf(c.StatusWithoutDigest(time.Second)) >= 0 })
	p := primaryOf(c.StatusWithoutDigest(time.Second))
	lost := cfg.Replicas[p]
	// The client's transport reports the lost node twice: when the
	// connection drops, and when it gives up reconnecting and turns the
	// requests it had queued into dead letters.
	var terminated atomic.Int32
	sub := c.system.EventStream.Subscribe(func(ev any) {
		if e, ok := ev.(*remote.EndpointTerminatedEvent); ok && e.Address == lost {
			terminated.Add(1)
		}
	})
	defer c.system.EventStream.Unsubscribe(sub)

	w, stop := startWorkload(t, c)
	require.NoError(t, nodes[p].Stop())
	waitFor(t, "the client's transport to give up on the lost node", 30*time.Second, func() bool { return terminated.Load() >= 2 })
	w.await(t, "operations after the burst of dead letters", 50)
	stop()
	w.check(t)
}
