package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// GroupConfig configures a group started in one actor system.
type GroupConfig struct {
	// ClusterID names the group (any value; replicas of other groups are
	// ignored).
	ClusterID uint64
	// Replicas is n = 2f+1.
	Replicas int
	// NewStateMachine makes one replica's state machine; it is called again
	// whenever a replica restarts.
	NewStateMachine statemachine.Factory
	// Name prefixes the group's actor names (default "vsr").
	Name string
	// TickInterval is the core's tick (actors.DefaultTickInterval if zero).
	TickInterval time.Duration
	// Timing overrides the core's timing in ticks and its history bounds
	// (CheckpointInterval, TrailingOps, PipelineMax, MaxMessageBytes,
	// SessionIdleOps, MaxSessions); zero fields take the defaults. The
	// identity fields (cluster ID, count, index, state machine, seed) are
	// the group's own and are ignored here.
	Timing vsr.Config
	// Logger receives the log of the actor system the group creates;
	// nothing is logged if nil. Proto.Actor logs ordinary peer loss at
	// ERROR, so a user who wants those lines must ask for them.
	Logger *slog.Logger
	// OnEvent is called on every change of a replica's status or view, from
	// that replica's goroutine; it must not block.
	OnEvent func(actors.Event)
	// MaxRestarts within RestartWindow bound how often the supervisor
	// restarts a panicking replica (defaults 10 in 10 s); past that the
	// replica stays down until Restart.
	MaxRestarts   int
	RestartWindow time.Duration
	// DataDir, if set, gives replica i a durable store in
	// DataDir/replica-<i>: a replica killed, crashed or restarted comes back
	// from its disk, and a group stopped as a whole starts again from its
	// disks with every acknowledged write (StartGroup on the same DataDir).
	// Empty keeps everything in memory, the paper's design.
	DataDir string
}

// openStore is how replica i opens its store, or nil without a DataDir.
func (cfg GroupConfig) openStore(i int) func() (storage.Store, error) {
	if cfg.DataDir == "" {
		return nil
	}
	dir := filepath.Join(cfg.DataDir, fmt.Sprintf("replica-%d", i))
	id := storage.Identity{ClusterID: cfg.ClusterID, ReplicaIndex: i, ReplicaCount: cfg.Replicas}
	return func() (storage.Store, error) { return storage.Open(storage.OSFS{}, dir, id, storage.Options{}) }
}

// Group is a running replica group.
type Group struct {
	cfg    GroupConfig
	system *actor.ActorSystem
	sup    *Supervisor
	peers  []*actor.PID
	// deaf[i] is set while replica i drops its peers' messages (SetDeaf).
	deaf []atomic.Bool
}

// ErrStopped is returned by a Group that has been stopped.
var ErrStopped = errors.New("vsr: group stopped")

// StartGroup starts n replicas in a new actor system and returns once every
// replica actor is running.
func StartGroup(cfg GroupConfig) (*Group, error) {
	if cfg.NewStateMachine == nil {
		return nil, vsr.ErrNoStateMachine
	}
	if cfg.Name == "" {
		cfg.Name = "vsr"
	}
	core := cfg.Timing
	core.ClusterID, core.ReplicaCount, core.ReplicaIndex = cfg.ClusterID, cfg.Replicas, 0
	core.StateMachine = cfg.NewStateMachine()
	if err := core.Validate(); err != nil {
		return nil, err
	}
	system, logger := actors.NewActorSystem(cfg.Logger)
	g := &Group{cfg: cfg, system: system, deaf: make([]atomic.Bool, cfg.Replicas)}
	supName := cfg.Name + "-supervisor"
	for i := 0; i < cfg.Replicas; i++ {
		g.peers = append(g.peers, system.NewLocalPID(ReplicaID(supName, i)))
	}
	props := make([]*actor.Props, cfg.Replicas)
	for i := range props {
		c := core
		c.ReplicaIndex, c.StateMachine = i, nil
		deaf := &g.deaf[i]
		props[i] = actors.NewReplicaProps(actors.ReplicaConfig{
			Core: c, NewStateMachine: cfg.NewStateMachine, Peers: g.peers,
			TickInterval: cfg.TickInterval, Logger: logger, OnEvent: cfg.OnEvent,
			DropInbound: func(proto.Message) bool { return deaf.Load() },
			OpenStore:   cfg.openStore(i),
		})
	}
	sup, err := StartSupervisor(system, supName, props, cfg.MaxRestarts, cfg.RestartWindow)
	if err != nil {
		system.Shutdown()
		return nil, err
	}
	g.sup = sup
	for i := 0; i < cfg.Replicas; i++ {
		if err := sup.Spawn(i); err != nil {
			g.Stop()
			return nil, err
		}
	}
	return g, nil
}

// System is the group's actor system.
func (g *Group) System() *actor.ActorSystem { return g.system }

// Peers returns the replicas' PIDs by index.
func (g *Group) Peers() []*actor.PID { return append([]*actor.PID(nil), g.peers...) }

// NewClient returns a client of the group with the given number of sessions
// (requests in flight at once).
func (g *Group) NewClient(sessions int) (*actors.Client, error) {
	if g.system.IsStopped() {
		return nil, ErrStopped
	}
	return actors.NewClient(g.system, actors.ClientConfig{ClusterID: g.cfg.ClusterID, Replicas: g.peers, Sessions: sessions})
}

// Status asks every replica for its status with a digest of its state, for
// comparing replicas' states. The digest costs every replica an encoding of
// its whole state machine and a hash of it: O(state size) in time and
// memory, per call (on the replica's goroutine, stalling it, unless the
// state machine implements statemachine.Checkpointer). Use
// StatusWithoutDigest to poll, or whenever the digest is not compared. A
// replica that is down is reported with Down set.
func (g *Group) Status(ctx context.Context) []ReplicaStatus { return g.status(ctx, true) }

// StatusWithoutDigest is Status without the digest (Digest is zero): each
// replica answers from a few counters, in constant time whatever the size
// of its state. It is the form for polling, health checks and finding the
// primary.
func (g *Group) StatusWithoutDigest(ctx context.Context) []ReplicaStatus {
	return g.status(ctx, false)
}

func (g *Group) status(ctx context.Context, withDigest bool) []ReplicaStatus {
	out := make([]ReplicaStatus, len(g.peers))
	futures := make([]*actor.Future, len(g.peers))
	timeout := 2 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	for i, pid := range g.peers {
		futures[i] = g.system.Root.RequestFuture(pid, &actors.StatusQuery{WithDigest: withDigest}, timeout)
	}
	for i, f := range futures {
		res, err := f.Result()
		if s, ok := res.(actors.ReplicaStatus); ok && err == nil {
			out[i] = ReplicaStatus{ReplicaStatus: s}
		} else {
			out[i] = ReplicaStatus{ReplicaStatus: actors.ReplicaStatus{Replica: i}, Down: true}
		}
	}
	return out
}

// ReplicaStatus is a replica's status as the group reports it.
type ReplicaStatus struct {
	actors.ReplicaStatus
	// Down is set when the replica did not answer (stopped, or gone).
	Down bool
}

// Primary returns the index of the replica that is normal and primary in the
// highest view, or -1 if there is none right now. It asks without the
// digest, so it is cheap enough to poll.
func (g *Group) Primary(ctx context.Context) int {
	best, view := -1, uint64(0)
	for _, s := range g.StatusWithoutDigest(ctx) {
		if !s.Down && s.Status == vsr.StatusNormal && s.Primary == s.Replica && (best < 0 || s.View > view) {
			best, view = s.Replica, s.View
		}
	}
	return best
}

// Kill stops replica i at once, as a crash would: it loses everything but
// what its disk holds, if it keeps one. It stays down until Restart.
func (g *Group) Kill(i int) error {
	if err := g.check(i); err != nil {
		return err
	}
	return g.sup.Kill(i)
}

// Restart starts replica i again after Kill: from its disk if the group
// keeps one (DataDir), otherwise through VR recovery.
func (g *Group) Restart(i int) error {
	if err := g.check(i); err != nil {
		return err
	}
	return g.sup.Spawn(i)
}

// SetDeaf is a test and fault-injection hook: while deaf is true, replica i
// drops every message from its peers before its core sees it (see
// actors.ReplicaConfig.DropInbound), while it still sends to them and still
// hears its clients. A deaf primary is one that can send but not receive:
// its backups keep hearing its heartbeats, so only the primary itself can
// notice that it has lost its quorum. SetDeaf(i, false) heals it. The
// setting outlives restarts of the replica. When never set it costs each
// replica one atomic load per peer message.
func (g *Group) SetDeaf(i int, deaf bool) error {
	if err := g.check(i); err != nil {
		return err
	}
	g.deaf[i].Store(deaf)
	return nil
}

// Crash makes replica i panic: its supervisor restarts it and it recovers.
func (g *Group) Crash(i int) error {
	if err := g.check(i); err != nil {
		return err
	}
	g.system.Root.Send(g.peers[i], &actors.Crash{})
	return nil
}

func (g *Group) check(i int) error {
	if g.system.IsStopped() {
		return ErrStopped
	}
	if i < 0 || i >= len(g.peers) {
		return fmt.Errorf("%w: %d", vsr.ErrReplicaIndex, i)
	}
	return nil
}

// Stop stops every replica and the actor system. It is safe to call twice.
func (g *Group) Stop() {
	if g.system.IsStopped() {
		return
	}
	if g.sup != nil {
		_ = g.sup.Stop()
	}
	g.system.Shutdown()
}
