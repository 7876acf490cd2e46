package actors_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// events collects the replicas' events.
type events struct {
	mu  sync.Mutex
	all []actors.Event
}

func (e *events) add(ev actors.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// await waits for an event match accepts (replicas start asynchronously).
func (e *events) await(t *testing.T, what string, match func(actors.Event) bool) actors.Event {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if ev, ok := e.find(match); ok {
			return ev
		}
		if time.Now().After(deadline) {
			e.mu.Lock()
			for _, ev := range e.all {
				t.Logf("event %+v", ev)
			}
			e.mu.Unlock()
			t.Fatalf("no event: %s", what)
		}
		time.Sleep(pollEvery)
	}
}

// find returns the first event match accepts.
func (e *events) find(match func(actors.Event) bool) (actors.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if match(ev) {
			return ev, true
		}
	}
	return actors.Event{}, false
}

// startDurableReplicas is startReplicas with a simulated disk per replica.
func startDurableReplicas(t *testing.T, disks []*storage.MemFS, ev *events) *replicas {
	t.Helper()
	n := len(disks)
	g := &replicas{t: t, system: newSystem(t)}
	for i := range n {
		g.peers = append(g.peers, g.system.NewLocalPID(fmt.Sprintf("%s%d", namePrefix, i)))
	}
	for i := range n {
		id := storage.Identity{ClusterID: clusterID, ReplicaIndex: i, ReplicaCount: n}
		disk := disks[i]
		g.props = append(g.props, actors.NewReplicaProps(actors.ReplicaConfig{
			Core:            vsr.Config{ClusterID: clusterID, ReplicaCount: n, ReplicaIndex: i},
			NewStateMachine: kv.New,
			Peers:           g.peers,
			OnEvent:         ev.add,
			OpenStore: func() (storage.Store, error) {
				return storage.Open(disk, "/data", id, storage.Options{})
			},
		}))
		g.start(i)
	}
	t.Cleanup(func() {
		for _, pid := range g.peers {
			_ = g.system.Root.StopFuture(pid).Wait()
		}
	})
	return g
}

func newDisks(n int) []*storage.MemFS {
	disks := make([]*storage.MemFS, n)
	for i := range disks {
		disks[i] = storage.NewMemFS()
	}
	return disks
}

// A replica whose disk fails a write stops with an error that says so, and
// acknowledges nothing it could not write: the write it was making is never
// answered.
func TestDurableReplicaStopsWhenItsDiskFailsAndAcknowledgesNothingUnwritten(t *testing.T) {
	disks := newDisks(1)
	var ev events
	g := startDurableReplicas(t, disks, &ev)
	c := g.client(actors.ClientConfig{Timeout: 2 * time.Second})
	execute(t, c, kv.PutOp("a", []byte("1")))

	errDiskFull := errors.New("no space left on device")
	disks[0].FailWrites(errDiskFull)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := c.Execute(ctx, kv.PutOp("a", []byte("2")))
	require.Error(t, err, "a write the disk refused must not be acknowledged")

	failed := ev.await(t, "the replica reported its failure", func(e actors.Event) bool { return e.Failed != nil })
	require.ErrorIs(t, failed.Failed, errDiskFull)
	require.Contains(t, failed.Failed.Error(), "storage failed")
	require.Eventually(t, func() bool { _, answers := g.status(0); return !answers }, waitFor, pollEvery,
		"the replica stopped")
}

// Replicas killed, one and then all at once, come back from their disks in
// their view, with no recovery round, holding every acknowledged write.
func TestKilledReplicasComeBackFromTheirDisks(t *testing.T) {
	disks := newDisks(3)
	var ev events
	g := startDurableReplicas(t, disks, &ev)
	c := g.client(actors.ClientConfig{Timeout: 5 * time.Second})
	for k := range 20 {
		execute(t, c, kv.PutOp(fmt.Sprintf("k%d", k%4), []byte(fmt.Sprint(k))))
	}
	// A backup's acknowledgement is not needed for every write: wait until
	// replica 1 holds them all, else its disk may still be empty and it
	// rightly recovers instead.
	require.Eventually(t, func() bool { s, ok := g.status(1); return ok && s.OpNumber >= 20 }, waitFor, pollEvery)
	g.kill(1)
	g.start(1)
	back := ev.await(t, "replica 1 came back from its disk", func(e actors.Event) bool { return e.Replica == 1 && e.FromDisk })
	require.Equal(t, vsr.StatusNormal, back.Status, "its disk was intact: no recovery")
	require.False(t, back.Restarted)

	for i := range 3 {
		g.kill(i)
	}
	for i := range 3 {
		g.start(i)
	}
	r := execute(t, c, kv.GetOp("k3"))
	require.Equal(t, "19", string(r.Value), "the last write before the whole group stopped")
	execute(t, c, kv.PutOp("k0", []byte("after")))
	require.Equal(t, "after", string(execute(t, c, kv.GetOp("k0")).Value))
}
