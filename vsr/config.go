package vsr

import (
	"errors"
	"fmt"

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
	// sorted configuration. The primary of view v is v mod n.
	ReplicaIndex int
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
	case c.StateMachine == nil:
		return ErrNoStateMachine
	case c.HeartbeatTicks < 1 || c.InactivityTicks < 1 || c.ViewChangeTicks < 1 ||
		c.HeartbeatTicks >= c.InactivityTicks:
		return fmt.Errorf("%w: heartbeat %d, inactivity %d, view change %d, jitter %d",
			ErrTiming, c.HeartbeatTicks, c.InactivityTicks, c.ViewChangeTicks, c.JitterTicks)
	case c.MaxBatch < 1:
		return fmt.Errorf("%w: got %d", ErrBatch, c.MaxBatch)
	case c.Recovering && c.ReplicaCount == 1:
		return ErrCannotRecover
	}
	return nil
}

// f is the number of failures a group of n replicas tolerates.
func faultTolerance(n int) int { return (n - 1) / 2 }
