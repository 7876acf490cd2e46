package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/vsr"
)

// defaultGRPCLimit is gRPC's receive limit when none is set.
const defaultGRPCLimit = 4 << 20

// payload returns a message whose encoding is exactly size bytes (an
// actors.StatusReply: any registered proto message crosses remoting).
func payload(size int) *actors.StatusReply {
	for k := size; k > 0; k-- {
		if m := (&actors.StatusReply{Digest: make([]byte, k)}); proto.Size(m) == size {
			return m
		}
	}
	panic("no payload of that size")
}

// sink is an actor system with remoting that counts what its actor "sink"
// receives, and watches its gRPC stream: the largest gRPC message, in bytes
// and in envelopes, that it accepted.
type sink struct {
	system    *actor.ActorSystem
	pid       *actor.PID
	received  atomic.Int64
	mu        sync.Mutex
	maxBytes  int
	maxBatch  int
	batchData int // bytes of message data in the largest batch
}

func startSink(t *testing.T, maxMessageBytes int) *sink {
	t.Helper()
	s := &sink{}
	s.system, _ = actors.NewActorSystem(nil)
	spy := grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return h(srv, &recvSpy{ServerStream: ss, sink: s})
	})
	opts, err := transportOptions(nil, maxMessageBytes, spy)
	require.NoError(t, err)
	r := remote.NewRemote(s.system, remote.Configure("127.0.0.1", 0, opts...))
	r.Start()
	t.Cleanup(func() { r.Shutdown(false); s.system.Shutdown() })
	s.pid, err = s.system.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actors.StatusReply); ok {
			s.received.Add(1)
		}
	}), "sink")
	require.NoError(t, err)
	return s
}

type recvSpy struct {
	grpc.ServerStream
	sink *sink
}

func (r *recvSpy) RecvMsg(m any) error {
	err := r.ServerStream.RecvMsg(m)
	if rm, ok := m.(*remote.RemoteMessage); ok && err == nil {
		if b := rm.GetMessageBatch(); b != nil {
			data := 0
			for _, e := range b.Envelopes {
				data += len(e.MessageData)
			}
			r.sink.mu.Lock()
			r.sink.maxBytes = max(r.sink.maxBytes, proto.Size(rm))
			if len(b.Envelopes) > r.sink.maxBatch {
				r.sink.maxBatch, r.sink.batchData = len(b.Envelopes), data
			}
			r.sink.mu.Unlock()
		}
	}
	return err
}

// logRecorder keeps the log lines of an actor system, at every level.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// sender is an actor system with remoting, configured as a node is (or
// with Proto.Actor's defaults), that records its log and counts the
// endpoint-terminated events for one address.
type sender struct {
	system     *actor.ActorSystem
	log        *logRecorder
	terminated atomic.Int32
}

func startSender(t *testing.T, target string, nodeConfig bool, maxMessageBytes int) *sender {
	t.Helper()
	s := &sender{log: &logRecorder{}}
	s.system, _ = actors.NewActorSystem(slog.New(s.log))
	var opts []remote.ConfigOption
	if nodeConfig {
		var err error
		opts, err = transportOptions(nil, maxMessageBytes)
		require.NoError(t, err)
	}
	r := remote.NewRemote(s.system, remote.Configure("127.0.0.1", 0, opts...))
	r.Start()
	t.Cleanup(func() { r.Shutdown(false); s.system.Shutdown() })
	s.system.EventStream.Subscribe(func(ev any) {
		if e, ok := ev.(*remote.EndpointTerminatedEvent); ok && e.Address == target {
			s.terminated.Add(1)
		}
	})
	return s
}

// A message above TransportMessageBytes is refused by the transport, and
// visibly: it is never delivered, the sender's transport reports the
// receiver's endpoint terminated (a node takes that as its peer down) with
// gRPC's "larger than max" error in its log, and the next message goes
// through on a new connection. A sender set up as a node is refuses it
// before sending; a sender with Proto.Actor's defaults (no send limit) has
// it refused by the receiver.
func TestTransportRefusesMessageAboveItsLimit(t *testing.T) {
	for _, c := range []struct {
		name       string
		nodeConfig bool
		log        string
	}{
		{"refused by the sender", true, "trying to send message larger than max"},
		{"refused by the receiver", false, "received message larger than max"},
	} {
		t.Run(c.name, func(t *testing.T) {
			recv := startSink(t, 0)
			s := startSender(t, recv.pid.Address, c.nodeConfig, 0)
			s.system.Root.Send(recv.pid, payload(100))
			waitFor(t, "the first message", 10*time.Second, func() bool { return recv.received.Load() == 1 })

			s.system.Root.Send(recv.pid, payload(TransportMessageBytes(0)+1))
			waitFor(t, "the transport to drop the connection", 10*time.Second, func() bool { return s.terminated.Load() >= 1 })
			require.True(t, s.log.contains(c.log), "the sender's log names gRPC's error %q", c.log)
			stays(t, "the oversized message is not delivered", 500*time.Millisecond, func() bool { return recv.received.Load() == 1 })

			s.system.Root.Send(recv.pid, payload(100))
			waitFor(t, "a message after the refusal", 10*time.Second, func() bool { return recv.received.Load() == 2 })
		})
	}
}

// Two full batches of messages of exactly MaxMessageBytes each (plus
// remoting's envelope) are all delivered, for the default bound and a
// larger one, and the receiver accepted a gRPC message holding many of
// them, far above gRPC's default 4 MiB limit: the limit covers a full batch
// of the largest messages the core emits.
func TestTransportDeliversFullBatchesOfLargestMessages(t *testing.T) {
	for _, bound := range []int{vsr.DefaultMaxMessageBytes, 8 << 20} {
		t.Run(fmt.Sprintf("max=%d", bound), func(t *testing.T) {
			recv := startSink(t, bound)
			s := startSender(t, recv.pid.Address, true, bound)
			m := payload(bound)
			batch := EndpointBatchMessages(bound)
			count := int64(2 * batch)
			// Sent at once, before the first connection is up, so that they
			// queue in the endpoint writer's mailbox and leave in full batches.
			for range count {
				s.system.Root.Send(recv.pid, m)
			}
			waitFor(t, "every message", 30*time.Second, func() bool { return recv.received.Load() == count })
			require.Zero(t, s.terminated.Load(), "the connection was dropped")
			recv.mu.Lock()
			defer recv.mu.Unlock()
			t.Logf("largest batch: %d messages, %d bytes of data; largest gRPC message %d bytes (limit %d)",
				recv.maxBatch, recv.batchData, recv.maxBytes, TransportMessageBytes(bound))
			require.LessOrEqual(t, recv.maxBatch, batch)
			require.Greater(t, recv.batchData, defaultGRPCLimit, "no batch held more than gRPC's default limit")
			require.LessOrEqual(t, recv.maxBytes, TransportMessageBytes(bound))
		})
	}
}

// The arithmetic of the limits, for every kind of bound the core accepts: a
// batch holds one message at least and 32 at most, a full batch of largest
// messages fits the limit, and the limit fits gRPC's int32 length.
func TestTransportLimitHoldsAFullBatchForEveryMessageBound(t *testing.T) {
	require.Equal(t, 32, EndpointBatchMessages(0))
	require.Equal(t, 33751040, TransportMessageBytes(0))
	require.Equal(t, TransportMessageBytes(0), TransportMessageBytes(vsr.DefaultMaxMessageBytes))
	for _, m := range []int{vsr.MinMaxMessageBytes, 64 << 10, vsr.DefaultMaxMessageBytes - 1, vsr.DefaultMaxMessageBytes,
		vsr.DefaultMaxMessageBytes + 1, 3 << 20, 8 << 20, 32 << 20, 33 << 20, vsr.MaxMaxMessageBytes} {
		b, limit := EndpointBatchMessages(m), TransportMessageBytes(m)
		require.GreaterOrEqual(t, b, 1, "max %d", m)
		require.LessOrEqual(t, b, MaxEndpointBatchMessages, "max %d", m)
		require.LessOrEqual(t, b*(m+EnvelopeBytes)+BatchSlackBytes, limit, "max %d: a full batch exceeds the limit", m)
		require.GreaterOrEqual(t, limit, TransportMessageBytes(0), "max %d: below the default's limit", m)
		require.Less(t, limit, 1<<31, "max %d", m)
	}
}
