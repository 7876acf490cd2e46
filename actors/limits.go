package actors

import (
	"log/slog"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
)

// Oversized counts and logs the outgoing messages that exceed a size limit.
// The transport's per-batch limit (cluster.TransportMessageBytes) is sound
// only while every message is within the core's MaxMessageBytes; a message
// above it would, batched with others, make gRPC refuse the whole batch and
// reset the connection, losing the other messages with it and making the
// peer look down. So a sender checks each message first, and one that is
// too large is not sent but counted here and logged: it is a bug in whoever
// built it, and it must be visible, never a silent loss. The zero value is
// ready to use and safe for concurrent use.
type Oversized struct {
	count atomic.Uint64
}

// Allow reports whether m, of size bytes (proto.Size) and bound for to, is
// within limit; a limit of zero or less means none. When it is not, Allow
// counts it and logs its type, size and destination on logger (if not nil)
// at ERROR, and the caller must not send it. The caller measures the size,
// once, because it wants it for its own figures too.
func (o *Oversized) Allow(m proto.Message, size, limit int, to *actor.PID, logger *slog.Logger) bool {
	if limit <= 0 || size <= limit {
		return true
	}
	n := o.count.Add(1)
	if logger != nil {
		dest := ""
		if to != nil {
			dest = to.Address + "/" + to.Id
		}
		logger.Error("vsr: outgoing message exceeds the message size limit; not sent",
			"type", string(m.ProtoReflect().Descriptor().FullName()), "bytes", size,
			"limit", limit, "to", dest, "oversized_total", n)
	}
	return false
}

// Count is the number of messages refused so far.
func (o *Oversized) Count() uint64 { return o.count.Load() }
