package cluster

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/vsr"
)

// BenchmarkRemotingRoundTrip measures the floor that Proto.Actor remoting,
// configured as a node configures it, puts under every write over the
// network: one small protocol message from an actor in one actor system to
// an actor in another (each with its own remote on 127.0.0.1, in this
// process) and its answer back, one at a time. It reports the time and the
// heap allocations of one round trip, both sides counted. A write from a
// client in its own process makes two such round trips (client to primary
// and back, primary to backups and back) and six messages, so these figures
// times two (time) and three (allocations) are what no change to the
// replica can go below.
//
//	go test ./cluster -run '^$' -bench RemotingRoundTrip -benchtime 20000x
func BenchmarkRemotingRoundTrip(b *testing.B) {
	opts, err := transportOptions(nil, vsr.DefaultMaxMessageBytes)
	require.NoError(b, err)
	start := func() (*actor.ActorSystem, *remote.Remote) {
		sys, _ := actors.NewActorSystem(slog.New(slog.DiscardHandler))
		r := remote.NewRemote(sys, remote.Configure("127.0.0.1", 0, opts...))
		r.Start()
		return sys, r
	}
	sysA, remA := start()
	sysB, remB := start()
	defer func() {
		remA.Shutdown(false)
		remB.Shutdown(false)
		sysA.Shutdown()
		sysB.Shutdown()
	}()
	echo, err := sysB.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.Commit); ok {
			ctx.Respond(m)
		}
	}), "echo")
	require.NoError(b, err)
	// The pinger sends the next ping when the previous answer arrives, as a
	// closed-loop client does, and reports on done when it has sent them all.
	done := make(chan struct{})
	var left int
	pinger := sysA.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case int:
			left = m
			ctx.Request(echo, &messages.Commit{ClusterId: 1, View: 1, CommitNumber: 1})
		case *messages.Commit:
			if left--; left <= 0 {
				close(done)
				return
			}
			m.CommitNumber++
			ctx.Request(echo, m)
		}
	}))
	// Warm the connection up (dial, stream, first batches) before measuring.
	warm := make(chan struct{})
	warmer := sysA.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*messages.Commit); ok {
			close(warm)
		}
	}))
	sysA.Root.RequestWithCustomSender(echo, &messages.Commit{ClusterId: 1}, warmer)
	select {
	case <-warm:
	case <-time.After(10 * time.Second):
		b.Fatal("no answer from the echo actor within 10s")
	}
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	sysA.Root.Send(pinger, b.N)
	select {
	case <-done:
	case <-time.After(time.Duration(b.N)*10*time.Millisecond + 10*time.Second):
		b.Fatal("round trips did not finish")
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "us/roundtrip")
}
