package cluster

import (
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vsrgo/vsr/vsr"
)

// The transport's size limits. Proto.Actor remoting runs on one gRPC stream
// per pair of processes and direction, and its endpoint writer sends what
// its mailbox holds as one gRPC message: it pops up to a batch size of
// messages (1000 by default) whatever their sizes and marshals them all into
// one MessageBatch. gRPC refuses a received message above its limit (4 MiB by
// default) with "received message larger than max", which ends the stream:
// every message of that batch is lost, the sender sees the endpoint
// terminated, and a node takes that as a sign that its peer is down. So the
// limit must bound a whole batch, not one message: with the default batch
// size, a thousand messages of up to MaxMessageBytes (the core's bound on
// every message it emits, vsr.DefaultMaxMessageBytes = 1 MiB unless
// History.MaxMessageBytes says otherwise) would need a limit of a gigabyte.
// The sound design is a batch budget: a batch holds as many messages of the
// largest size as fit in BatchBudgetBytes, at most MaxEndpointBatchMessages
// and at least one, and gRPC's limit is that budget, or one largest message
// if it is larger, plus slack. With M = MaxMessageBytes and E = EnvelopeBytes:
//
//	EndpointBatchMessages(M) = min(32, max(1, BatchBudgetBytes / (M + E)))
//	TransportMessageBytes(M) = max(BatchBudgetBytes, M + E) + BatchSlackBytes
//	BatchBudgetBytes         = 32 × (1 MiB + 4 KiB) = 33,685,504 bytes
//
// A batch then carries at most EndpointBatchMessages(M) × (M + E) bytes,
// which is at most BatchBudgetBytes when the quotient is at least one, and
// M + E when a batch is a single message. For the default M that is 32
// messages and a limit of 33,751,040 bytes (about 32.2 MiB); for the largest
// M the core accepts (vsr.MaxMaxMessageBytes, 64 MiB) one message and 64 MiB
// plus 68 KiB. The limit is the same, 32.2 MiB, for every M up to about
// 32 MiB, so members that disagree on M within that range still accept each
// other's batches (they must not disagree: see Config.History).
//
// Ordinary batches are a few kilobytes; the limit only caps what a receiver
// accepts, it is not allocated in advance. A batch of 32 largest messages
// measured 310 bytes of envelope in all (see
// TestTransportDeliversFullBatchesOfLargestMessages), so EnvelopeBytes is a
// wide margin. The batch size of 32 against the default 1000 made no
// difference above run-to-run noise in BenchmarkRemoteWrites on 2 cores
// (medians of 5 interleaved runs: 3297 vs 3307 ops/s with 1 client, 26974
// vs 25942 with 64; single runs vary by ±30%): with a few dozen requests in
// flight, few batches hold more than 32 messages. Only a saturating stream
// of small one-way messages notices it, at roughly 10% fewer messages per
// second (0.6-0.9M/s either way).
const (
	// EndpointQueueSlots is the initial size of each remote endpoint's
	// outgoing queue. Proto.Actor's default is a million slots, 16 MB per
	// connected process that the garbage collector scans for ever (measured:
	// 61 of a primary's 75 MB of live heap); the ring doubles when it fills,
	// so a small start costs nothing but a copy during a burst.
	EndpointQueueSlots = 4096
	// MaxEndpointBatchMessages is the most messages Proto.Actor's endpoint
	// writer puts into one gRPC message (remote.WithEndpointWriterBatchSize)
	// whatever the message size bound.
	MaxEndpointBatchMessages = 32
	// EnvelopeBytes bounds what remoting adds to one message inside a batch:
	// its MessageEnvelope (six varint fields and the data's length prefix,
	// about 50 bytes; this library sets no message headers) and, at worst,
	// one new entry in each of the batch's tables of type names, targets
	// and senders (a type name and two PIDs of address and ID, under 1 KiB
	// for host names up to 253 characters). 4 KiB leaves room to spare.
	EnvelopeBytes = 4 << 10
	// BatchBudgetBytes is what one batch of largest messages may carry: a
	// full batch of MaxEndpointBatchMessages at the default bound.
	BatchBudgetBytes = MaxEndpointBatchMessages * (vsr.DefaultMaxMessageBytes + EnvelopeBytes)
	// BatchSlackBytes covers the RemoteMessage wrapper around a batch (a
	// few bytes) with a wide margin.
	BatchSlackBytes = 64 << 10
	// StreamWindowBytes is gRPC's flow-control window for each stream and
	// connection. Setting it turns off gRPC's bandwidth-delay estimator,
	// which otherwise answers data with PING frames to size the window:
	// on a busy connection of small messages those pings and the window
	// updates were a tenth of the transport's allocations. A window is
	// credit, not a buffer: nothing is allocated for it up front.
	StreamWindowBytes = 4 << 20
)

// EndpointBatchMessages is the endpoint writer's batch size for a group
// whose messages are at most maxMessageBytes (zero: the default); see the
// arithmetic above.
func EndpointBatchMessages(maxMessageBytes int) int {
	return min(MaxEndpointBatchMessages, max(1, BatchBudgetBytes/(messageBound(maxMessageBytes)+EnvelopeBytes)))
}

// TransportMessageBytes is gRPC's send and receive limit on every connection
// of a node or remote client of a group whose messages are at most
// maxMessageBytes (zero: the default): a full batch of such messages always
// fits. A single message above it is refused by the transport; one between
// maxMessageBytes and it may pass alone but not in a full batch, which is
// why a replica checks each message against the core's bound
// (actors.Oversized) before sending it.
func TransportMessageBytes(maxMessageBytes int) int {
	return max(BatchBudgetBytes, messageBound(maxMessageBytes)+EnvelopeBytes) + BatchSlackBytes
}

// messageBound is the core's bound for a configured value: zero takes the
// core's default, as vsr.Config does.
func messageBound(maxMessageBytes int) int {
	if maxMessageBytes <= 0 {
		return vsr.DefaultMaxMessageBytes
	}
	return maxMessageBytes
}

// transportOptions returns the remoting options every node and remote client
// of a group whose messages are at most maxMessageBytes uses: the batch size
// and gRPC's limits above, with the TLS credentials if tlsFiles is set and
// plain TCP otherwise. Both sides of every connection
// get both limits: the dialling side sends the batches and the listening
// side receives them, and setting the send limit as well makes an oversized
// batch fail at the sender, before any byte of it is written. extra server
// options are added last (the tests watch the stream with one).
func transportOptions(tlsFiles *TLSFiles, maxMessageBytes int, extra ...grpc.ServerOption) ([]remote.ConfigOption, error) {
	limit := TransportMessageBytes(maxMessageBytes)
	server := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(limit),
		grpc.MaxSendMsgSize(limit),
		grpc.InitialWindowSize(StreamWindowBytes),
		grpc.InitialConnWindowSize(StreamWindowBytes),
		grpc.SharedWriteBuffer(true),
	}
	// remote.WithDialOptions replaces Proto.Actor's default dial options,
	// plain-text credentials included, so they are given again here.
	dial := []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(limit),
		grpc.MaxCallSendMsgSize(limit),
	),
		grpc.WithInitialWindowSize(StreamWindowBytes),
		grpc.WithInitialConnWindowSize(StreamWindowBytes),
		grpc.WithSharedWriteBuffer(true),
	}
	if tlsFiles != nil {
		s, d, err := grpcTLS(tlsFiles)
		if err != nil {
			return nil, err
		}
		server, dial = append(server, s...), append(dial, d...)
	} else {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	return []remote.ConfigOption{
		remote.WithEndpointWriterBatchSize(EndpointBatchMessages(maxMessageBytes)),
		remote.WithEndpointWriterQueueSize(EndpointQueueSlots),
		remote.WithServerOptions(append(server, extra...)...),
		remote.WithDialOptions(dial...),
	}, nil
}
