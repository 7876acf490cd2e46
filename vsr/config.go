package vsr

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/vsrgo/vsr/statemachine"
)

// Default timing, in ticks. With the actor layer's 10 ms tick a primary
// heartbeats every 50 ms and a backup suspects it after 300-450 ms.
const (
	DefaultHeartbeatTicks  = 5
	DefaultInactivityTicks = 30
	DefaultViewChangeTicks = 30
	DefaultJitterTicks     = 15
	DefaultMaxBatch        = 64
)

// Default bounds on history. They fit a 2-core machine: a checkpoint every
// 16384 ops is taken a few times a second at full load, a log window of
// about 21k entries costs a few megabytes, and a view change carries at most
// the 1024-op pipeline.
const (
	DefaultCheckpointInterval = 16384
	DefaultTrailingOps        = 4096
	DefaultPipelineMax        = 1024
	DefaultMaxMessageBytes    = 1 << 20
	DefaultSessionIdleOps     = 1 << 24
	DefaultMaxSessions        = 65536
)

// Protocol bounds, the same for every replica whatever its configuration.
const (
	// MaxPrepareEntries is the most entries any Prepare, NewState or view
	// change message may carry. A receiver checks a message against this
	// bound, not against its own MaxBatch, so that replicas configured
	// differently still understand each other.
	MaxPrepareEntries = 1 << 16
	// MinMaxMessageBytes is the smallest MaxMessageBytes accepted: below it
	// the fixed part of a message leaves too little room for entries.
	MinMaxMessageBytes = 2048
	// MaxMaxMessageBytes is the largest: gRPC, under Proto.Actor remoting,
	// refuses messages of 4 MiB by default, and the transport must be set
	// up with headroom above this bound.
	MaxMaxMessageBytes = 64 << 20
	// messageOverhead is the room kept in every message for its fixed
	// fields (numbers, digests, framing): at most a few hundred bytes are
	// used, so 1 KiB leaves headroom.
	messageOverhead = 1024
)

// Config configures one replica. ReplicaCount, ReplicaIndex and StateMachine
// are required; zero timing fields take the defaults above.
type Config struct {
	// ClusterID names the group. Every replica message carries it, and a
	// message with another cluster ID is dropped.
	ClusterID uint64
	// ReplicaCount is n = 2f+1: 1, 3, 5, 7, ... An even count is refused:
	// it tolerates no more failures than the odd count below it and makes
	// every quorum larger.
	ReplicaCount int
	// ReplicaIndex is this replica's index i in 0..n-1, its position in the
	// configuration (Members, in the order given: it is not sorted). The
	// primary of view v is v mod n.
	ReplicaIndex int
	// Members names the members of the group's first configuration (epoch
	// 0) in index order: host:port in the cluster layer, r0, r1, ... in the
	// simulator. Nil names them "0", "1", ... A reconfiguration names the
	// members of the next epoch the same way (docs/reconfiguration.md).
	Members []string
	// Epoch is the epoch whose configuration Members is, for a replica
	// that restarts without its state (Recovering) after the group was
	// reconfigured: it recovers in that epoch. A new group starts in epoch
	// 0, which is the only epoch a replica that is not recovering may be
	// given.
	Epoch uint64
	// StateMachine is the replicated service. It must be new and empty when
	// Recovering is set.
	StateMachine statemachine.StateMachine
	// Seed seeds the replica's random numbers: timeout jitter and the
	// recovery nonce. A restarted replica must get a seed it has not used
	// before, or its recovery nonce could repeat.
	Seed uint64
	// Recovering says that the replica restarted without its state, so it
	// must run VR recovery before it takes part (paper section 4.3). A
	// replica that restarts must never start as if it were new: it could
	// vote with a log it no longer has.
	Recovering bool
	// Reconfigurable lets clients change the group's members through the
	// log (docs/reconfiguration.md). Off, a reconfiguration request is
	// refused and nothing changes: the caller's transport must route
	// messages by member name (Envelope.Member) and stop a replica that has
	// left before it turns this on.
	Reconfigurable bool
	// Joining says that the replica was started, with no state, to join the
	// group in a reconfiguration whose new configuration is Members: it
	// waits for StartEpoch from a member of that epoch, fetches the state,
	// and takes no part before it holds it (docs/reconfiguration.md).
	Joining bool

	// HeartbeatTicks is how often an idle primary sends Commit, and how often
	// every replica resends what may have been lost (prepares, view-change
	// votes, recovery and state requests).
	HeartbeatTicks int
	// InactivityTicks is how long a backup waits without hearing from the
	// primary before it starts a view change.
	InactivityTicks int
	// ViewChangeTicks is how long a view change may take before the replica
	// moves on to the next view.
	ViewChangeTicks int
	// JitterTicks is the largest random extra added to each inactivity and
	// view-change timeout, so that replicas don't all start the same view
	// change at once. Zero takes the default; a negative value means no jitter.
	JitterTicks int
	// MaxBatch is the most entries one Prepare carries.
	MaxBatch int

	// CheckpointInterval is how many committed ops lie between checkpoints.
	// At every multiple of it a replica captures its state machine and
	// client table (committed state only) and, once the checkpoint is
	// encoded, discards the log below it but for TrailingOps entries.
	CheckpointInterval int
	// TrailingOps is how many entries below the latest checkpoint stay in
	// the log (like hashicorp/raft's TrailingLogs), so that a backup a
	// little behind catches up from the log instead of a whole checkpoint.
	// Zero takes the default; a negative value keeps none.
	TrailingOps int
	// PipelineMax is the most uncommitted ops the primary holds. Past it a
	// request is refused with REPLY_ERROR_BUSY, which clients retry: the
	// uncommitted suffix is all a view change must carry, and this bounds
	// it. It must be the same on every replica.
	PipelineMax int
	// MaxMessageBytes bounds the encoded size of every message the replica
	// emits, whatever the length of the history and the size of the state:
	// an operation may use a quarter of it, the uncommitted pipeline half,
	// and checkpoints travel in chunks below it. It must be the same on
	// every replica, and the transport must accept messages of this size.
	MaxMessageBytes int
	// SessionIdleOps is how many ops may commit after a client's latest
	// executed request before its session expires. Expiry is decided by op
	// numbers, so every replica removes the same sessions at the same op.
	SessionIdleOps uint64
	// MaxSessions bounds the client table: registering a client past it
	// evicts the session idle longest.
	MaxSessions int
}

// Errors returned by Config.Validate.
var (
	ErrReplicaCount    = errors.New("vsr: replica count must be odd and at least 1 (n = 2f+1)")
	ErrReplicaIndex    = errors.New("vsr: replica index must be in 0..n-1")
	ErrNoStateMachine  = errors.New("vsr: config has no state machine")
	ErrTiming          = errors.New("vsr: timing must be positive and the heartbeat shorter than the inactivity timeout")
	ErrCannotRecover   = errors.New("vsr: a single replica cannot recover: there is no peer to recover from")
	ErrBatch           = errors.New("vsr: max batch must be positive")
	ErrTooManyReplicas = errors.New("vsr: at most 255 replicas")
	ErrHistoryBounds   = errors.New("vsr: bad history bounds")
	ErrMembers         = errors.New("vsr: bad member names")
)

// withDefaults fills zero timing fields.
func (c Config) withDefaults() Config {
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if c.InactivityTicks == 0 {
		c.InactivityTicks = DefaultInactivityTicks
	}
	if c.ViewChangeTicks == 0 {
		c.ViewChangeTicks = DefaultViewChangeTicks
	}
	if c.JitterTicks == 0 {
		c.JitterTicks = DefaultJitterTicks
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.TrailingOps == 0 {
		c.TrailingOps = DefaultTrailingOps
	} else if c.TrailingOps < 0 {
		c.TrailingOps = 0
	}
	if c.PipelineMax == 0 {
		c.PipelineMax = DefaultPipelineMax
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.SessionIdleOps == 0 {
		c.SessionIdleOps = DefaultSessionIdleOps
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	return c
}

// Validate reports the first thing wrong with c, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.ReplicaCount < 1 || c.ReplicaCount%2 == 0:
		return fmt.Errorf("%w: got %d", ErrReplicaCount, c.ReplicaCount)
	case c.ReplicaCount > 255:
		return fmt.Errorf("%w: got %d", ErrTooManyReplicas, c.ReplicaCount)
	case c.ReplicaIndex < 0 || c.ReplicaIndex >= c.ReplicaCount:
		return fmt.Errorf("%w: got %d with n = %d", ErrReplicaIndex, c.ReplicaIndex, c.ReplicaCount)
	case c.Members != nil && len(c.Members) != c.ReplicaCount:
		return fmt.Errorf("%w: %d names for %d replicas", ErrMembers, len(c.Members), c.ReplicaCount)
	case c.Members != nil && validMembers(c.Members) != nil:
		return fmt.Errorf("%w: %v", ErrMembers, validMembers(c.Members))
	case c.StateMachine == nil:
		return ErrNoStateMachine
	case c.HeartbeatTicks < 1 || c.InactivityTicks < 1 || c.ViewChangeTicks < 1 ||
		c.HeartbeatTicks >= c.InactivityTicks:
		return fmt.Errorf("%w: heartbeat %d, inactivity %d, view change %d, jitter %d",
			ErrTiming, c.HeartbeatTicks, c.InactivityTicks, c.ViewChangeTicks, c.JitterTicks)
	case c.MaxBatch < 1:
		return fmt.Errorf("%w: got %d", ErrBatch, c.MaxBatch)
	case c.MaxBatch > MaxPrepareEntries:
		return fmt.Errorf("%w: got %d, at most %d", ErrBatch, c.MaxBatch, MaxPrepareEntries)
	case c.CheckpointInterval < 1:
		return fmt.Errorf("%w: checkpoint interval must be positive, got %d", ErrHistoryBounds, c.CheckpointInterval)
	case c.PipelineMax < 1 || c.PipelineMax > MaxPrepareEntries:
		return fmt.Errorf("%w: pipeline max must be in 1..%d, got %d", ErrHistoryBounds, MaxPrepareEntries, c.PipelineMax)
	case c.MaxMessageBytes < MinMaxMessageBytes || c.MaxMessageBytes > MaxMaxMessageBytes:
		return fmt.Errorf("%w: max message bytes must be in %d..%d, got %d",
			ErrHistoryBounds, MinMaxMessageBytes, MaxMaxMessageBytes, c.MaxMessageBytes)
	case c.MaxSessions < 1:
		return fmt.Errorf("%w: max sessions must be positive, got %d", ErrHistoryBounds, c.MaxSessions)
	case c.Recovering && c.ReplicaCount == 1:
		return ErrCannotRecover
	case c.Epoch != 0 && !c.Recovering:
		return fmt.Errorf("%w: only a recovering replica starts in an epoch after 0", ErrMembers)
	case c.Joining && c.Recovering:
		return fmt.Errorf("%w: a replica cannot both join and recover", ErrCannotRecover)
	}
	return nil
}

// members is the configuration of epoch 0: Members, or the indexes as names.
func (c Config) members() []string {
	if c.Members != nil {
		return append([]string(nil), c.Members...)
	}
	names := make([]string, c.ReplicaCount)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// maxMemberName bounds a member's name: a host:port is far shorter, and the
// bound keeps a configuration, which travels in messages and checkpoints,
// small.
const maxMemberName = 255

// CheckMembers reports, wrapping ErrMembers, what is wrong with names as a
// configuration (Config.Members, or a reconfiguration's new members), or
// nil. A reconfiguration is further refused by the group if it adds a
// majority of new members or comes while another is under way.
func CheckMembers(names []string) error {
	if err := validMembers(names); err != nil {
		return fmt.Errorf("%w: %w", ErrMembers, err)
	}
	return nil
}

// validMembers reports what is wrong with a list of member names, or nil:
// an odd count of 1 to 255 distinct names, none empty or longer than
// maxMemberName bytes.
func validMembers(names []string) error {
	if len(names) < 1 || len(names)%2 == 0 || len(names) > 255 {
		return fmt.Errorf("%d members: the count must be odd, from 1 to 255", len(names))
	}
	seen := make(map[string]bool, len(names))
	for i, name := range names {
		switch {
		case name == "":
			return fmt.Errorf("member %d has no name", i)
		case len(name) > maxMemberName:
			return fmt.Errorf("member %d's name is longer than %d bytes", i, maxMemberName)
		case seen[name]:
			return fmt.Errorf("member %q is named twice", name)
		}
		seen[name] = true
	}
	return nil
}

// f is the number of failures a group of n replicas tolerates.
func faultTolerance(n int) int { return (n - 1) / 2 }

// The byte budgets that follow from MaxMessageBytes. Every message the core
// builds stays inside them; invariants check it.

// maxEntryBytes is the largest encoded entry a request may make.
func (c Config) maxEntryBytes() int { return c.MaxMessageBytes / 4 }

// pipelineBytes is the most the uncommitted suffix may weigh, so that a view
// change message carrying it fits with room to spare.
func (c Config) pipelineBytes() int { return c.MaxMessageBytes / 2 }

// entriesBytes is the room for entries in a Prepare or NewState.
func (c Config) entriesBytes() int { return c.MaxMessageBytes - messageOverhead }

// chunkBytes is the room for checkpoint data in one chunk.
func (c Config) chunkBytes() int { return c.MaxMessageBytes - messageOverhead }
