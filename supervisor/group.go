package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/storage"
	"github.com/vsrgo/vsr/vsr"
)

// GroupConfig configures a group started in one actor system: a new one
// that the group owns, or the caller's own (System).
type GroupConfig struct {
	// ClusterID names the group (any value; replicas of other groups are
	// ignored).
	ClusterID uint64
	// Replicas is n = 2f+1.
	Replicas int
	// NewStateMachine makes one replica's state machine; it is called again
	// whenever a replica restarts.
	NewStateMachine statemachine.Factory
	// Name prefixes the group's actor names (default "vsr"): its supervisor
	// is Name+"-supervisor" and replica i is ReplicaID(Name+"-supervisor",
	// i). Groups that share an actor system need different names; a name
	// already taken there makes StartGroup fail.
	Name string
	// System, if set, is the actor system the group starts in, one that
	// the caller made and owns: the group then lives beside the caller's
	// own actors, and a program needs one actor system (one set of
	// dispatchers, one remote endpoint, one logger) however many groups it
	// runs. The group spawns only its supervisor (see Name) and the
	// replicas under it; Stop stops those and leaves the system running,
	// and shutting the system down is the caller's business. Clients made
	// by NewClient live in the system too: Close them, since Stop does
	// not. Nil makes a new actor system for the group, which Stop shuts
	// down. A system made with actors.NewActorSystem logs nothing unless
	// given a logger; one made with Proto.Actor's defaults logs at INFO.
	System *actor.ActorSystem
	// TickInterval is the core's tick (actors.DefaultTickInterval if zero).
	TickInterval time.Duration
	// Timing overrides the core's timing in ticks and its history bounds
	// (CheckpointInterval, TrailingOps, PipelineMax, MaxMessageBytes,
	// SessionIdleOps, MaxSessions); zero fields take the defaults. The
	// identity fields (cluster ID, count, index, state machine, seed) are
	// the group's own and are ignored here.
	Timing vsr.Config
	// Logger receives the replicas' own log and, when the group makes its
	// actor system, that system's log; nothing is logged if nil. Proto.Actor
	// logs ordinary peer loss at ERROR, so a user who wants those lines must
	// ask for them. With System set, the system keeps the logger its owner
	// gave it, and Logger only names where the replicas' lines go.
	Logger *slog.Logger
	// OnEvent is called on every change of a replica's status, view or
	// epoch, from that replica's goroutine; it must not block. Event.Replica
	// is the group's number of the replica (see Group).
	OnEvent func(actors.Event)
	// Observer, if set, receives every replica's protocol events (see
	// actors.Observer), with Observation.Replica the group's number of the
	// replica; it is called from that replica's goroutine and must not
	// block. Nil costs nothing but a comparison per batch of messages.
	Observer actors.Observer
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

// Group is a running replica group. Its replicas are numbered from 0 in the
// order they were added: the first configuration's are 0 to Replicas-1, and
// a replica that joins in a reconfiguration takes the next number. A
// replica's member name in the protocol is its number in decimal.
type Group struct {
	cfg    GroupConfig
	system *actor.ActorSystem
	// ownSystem is set when StartGroup made system, which Stop then shuts
	// down; a system the caller gave (GroupConfig.System) is left running.
	ownSystem bool
	// stopped is set by Stop: the group's own end, which a caller's system
	// that keeps running cannot tell. stopOnce makes a second Stop wait for
	// the first.
	stopped  atomic.Bool
	stopOnce sync.Once
	logger   *slog.Logger
	supName  string
	sup      *Supervisor
	// core is the core configuration every replica starts from, identity
	// aside.
	core vsr.Config
	// slots holds every replica the group has hosted, by number; it only
	// grows, under mu, and is replaced whole so that routing reads it
	// without a lock.
	mu    sync.Mutex
	slots atomic.Pointer[[]*slot]
	// latest is the newest configuration a replica has reported; it is
	// written under configMu, which also guards configChanged, closed at
	// the next change for whoever waits for one (nil while nobody does).
	latest        atomic.Pointer[configuration]
	configMu      sync.Mutex
	configChanged chan struct{}
	// reconfiguring lets one Reconfigure run at a time.
	reconfiguring sync.Mutex
}

// slot is one replica of the group.
type slot struct {
	pid *actor.PID
	// deaf is set while the replica drops its peers' messages (SetDeaf).
	deaf atomic.Bool
}

// ErrStopped is returned by a Group that has been stopped.
var ErrStopped = errors.New("vsr: group stopped")

// StartGroup starts n replicas in a new actor system, or in
// GroupConfig.System, and returns once every replica actor is running. With
// a DataDir that a group used before, it starts that group again from its
// disks, with the replicas it added since it started. In a caller's system
// it fails, with an error wrapping actor.ErrNameExists and nothing changed,
// when a group (or another actor) already has the name; a StartGroup that
// fails never shuts the caller's system down.
func StartGroup(cfg GroupConfig) (*Group, error) {
	if cfg.NewStateMachine == nil {
		return nil, vsr.ErrNoStateMachine
	}
	if cfg.Name == "" {
		cfg.Name = "vsr"
	}
	core := cfg.Timing
	core.ClusterID, core.ReplicaCount, core.ReplicaIndex = cfg.ClusterID, cfg.Replicas, 0
	core.Members, core.Epoch, core.Joining, core.Recovering = nil, 0, false, false
	core.StateMachine = cfg.NewStateMachine()
	if err := core.Validate(); err != nil {
		return nil, err
	}
	core.StateMachine, core.Reconfigurable = nil, true
	joined, err := cfg.readRecord()
	if err != nil {
		return nil, err
	}
	system, logger, own := cfg.System, cfg.Logger, cfg.System == nil
	if own {
		system, logger = actors.NewActorSystem(cfg.Logger)
	} else if system.IsStopped() {
		return nil, fmt.Errorf("vsr: cannot start group %q: %w", cfg.Name, ErrStopped)
	}
	g := &Group{cfg: cfg, system: system, ownSystem: own, logger: logger, supName: cfg.Name + "-supervisor", core: core}
	g.slots.Store(&[]*slot{})
	if g.sup, err = StartSupervisor(system, g.supName, nil, cfg.MaxRestarts, cfg.RestartWindow); err != nil {
		if own {
			system.Shutdown()
		}
		if errors.Is(err, actor.ErrNameExists) {
			err = fmt.Errorf("vsr: cannot start group %q: actor %q already exists in this actor system "+
				"(give each group its own GroupConfig.Name): %w", cfg.Name, g.supName, actor.ErrNameExists)
		}
		return nil, err
	}
	first := memberNames(cfg.Replicas)
	for i := range cfg.Replicas {
		err = errors.Join(err, g.host(i, g.memberConfig(first, i, false)))
	}
	for _, j := range joined {
		err = errors.Join(err, g.host(j.Replica, g.memberConfig(j.Members, j.Replica, true)))
	}
	for i := range g.replicas() {
		if err == nil {
			err = g.sup.Spawn(i)
		}
	}
	if err != nil {
		g.Stop()
		return nil, err
	}
	return g, nil
}

// memberConfig is the core configuration of replica i, a member of the
// configuration members, which it joins if joining.
func (g *Group) memberConfig(members []string, i int, joining bool) vsr.Config {
	c := g.core
	c.Members, c.ReplicaCount = members, len(members)
	c.ReplicaIndex = slices.Index(members, strconv.Itoa(i))
	c.Joining = joining
	return c
}

// host makes replica i, which the group did not have, with core
// configuration c; it does not spawn it.
func (g *Group) host(i int, c vsr.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isStopped() {
		// The supervisor is gone, though a caller's system still runs: a
		// replica that joins after Stop has nowhere to go.
		return ErrStopped
	}
	old := *g.slots.Load()
	if i != len(old) {
		return fmt.Errorf("vsr: replica %d cannot be added after replica %d", i, len(old)-1)
	}
	s := &slot{pid: g.system.NewLocalPID(ReplicaID(g.supName, i))}
	props := actors.NewReplicaProps(actors.ReplicaConfig{
		Core: c, NewStateMachine: g.cfg.NewStateMachine, Resolve: g.resolve,
		TickInterval: g.cfg.TickInterval, Logger: g.logger, OnEvent: g.onEvent(i), Observer: g.observer(i),
		DropInbound: func(proto.Message) bool { return s.deaf.Load() },
		OpenStore:   g.cfg.openStore(i, c),
	})
	if err := g.sup.Host(i, props); err != nil {
		return err
	}
	next := append(slices.Clip(old), s)
	g.slots.Store(&next)
	return nil
}

// replicas is every replica the group has hosted, by number.
func (g *Group) replicas() []*slot { return *g.slots.Load() }

// resolve is the actor of the replica whose member name is name, or nil.
func (g *Group) resolve(name string) *actor.PID {
	if i, ok := replicaNumber(name); ok {
		if s := g.replicas(); i < len(s) {
			return s[i].pid
		}
	}
	return nil
}

// onEvent passes replica i's events on to the user's OnEvent, numbered as
// the group numbers its replicas, and keeps the newest configuration.
func (g *Group) onEvent(i int) func(actors.Event) {
	return func(e actors.Event) {
		e.Replica = i
		g.noteConfiguration(e.Epoch, e.Members)
		if g.cfg.OnEvent != nil {
			g.cfg.OnEvent(e)
		}
	}
}

// observer passes replica i's observations on to the user's Observer,
// numbered as the group numbers its replicas; nil without one.
func (g *Group) observer(i int) actors.Observer {
	if g.cfg.Observer == nil {
		return nil
	}
	return actors.ObserverFunc(func(o actors.Observation) {
		o.Replica = i
		g.cfg.Observer.Observe(o)
	})
}

// openStore is how replica i, with core configuration c, opens its store,
// or nil without a DataDir.
func (cfg GroupConfig) openStore(i int, c vsr.Config) func() (storage.Store, error) {
	if cfg.DataDir == "" {
		return nil
	}
	dir := filepath.Join(cfg.DataDir, fmt.Sprintf("replica-%d", i))
	id := storage.Identity{ClusterID: cfg.ClusterID, ReplicaIndex: c.ReplicaIndex, ReplicaCount: c.ReplicaCount}
	return func() (storage.Store, error) { return storage.Open(storage.OSFS{}, dir, id, storage.Options{}) }
}

// System is the actor system the group runs in: GroupConfig.System, or the
// one StartGroup made.
func (g *Group) System() *actor.ActorSystem { return g.system }

// Peers returns the PIDs of every replica the group has hosted, by number,
// members or not.
func (g *Group) Peers() []*actor.PID {
	var pids []*actor.PID
	for _, s := range g.replicas() {
		pids = append(pids, s.pid)
	}
	return pids
}

// NewClient returns a client of the group with the given number of sessions
// (requests in flight at once).
func (g *Group) NewClient(sessions int) (*actors.Client, error) {
	if g.isStopped() {
		return nil, ErrStopped
	}
	_, members := g.configuration()
	return actors.NewClient(g.system, actors.ClientConfig{ClusterID: g.cfg.ClusterID, Members: members,
		Resolve: g.resolve, Discover: g.configuration, Sessions: sessions})
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
	slots := g.replicas()
	out := make([]ReplicaStatus, len(slots))
	futures := make([]*actor.Future, len(slots))
	timeout := 2 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	for i, s := range slots {
		futures[i] = g.system.Root.RequestFuture(s.pid, &actors.StatusQuery{WithDigest: withDigest}, timeout)
	}
	for i, f := range futures {
		res, err := f.Result()
		if s, ok := res.(actors.ReplicaStatus); ok && err == nil {
			s.Replica = i
			if s.Primary >= 0 && s.Primary < len(s.Members) {
				s.Primary, _ = replicaNumber(s.Members[s.Primary])
			}
			out[i] = ReplicaStatus{ReplicaStatus: s}
		} else {
			out[i] = ReplicaStatus{ReplicaStatus: actors.ReplicaStatus{Replica: i}, Down: true}
		}
	}
	return out
}

// ReplicaStatus is a replica's status as the group reports it: Replica and
// Primary are numbers of the group's replicas (the core's indexes within
// its configuration differ once the group has reconfigured).
type ReplicaStatus struct {
	actors.ReplicaStatus
	// Down is set when the replica did not answer (stopped, left the group
	// in a reconfiguration, or gone).
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
	g.replicas()[i].deaf.Store(deaf)
	return nil
}

// Crash makes replica i panic: its supervisor restarts it and it recovers.
func (g *Group) Crash(i int) error {
	if err := g.check(i); err != nil {
		return err
	}
	g.system.Root.Send(g.replicas()[i].pid, &actors.Crash{})
	return nil
}

func (g *Group) check(i int) error {
	if g.isStopped() {
		return ErrStopped
	}
	if i < 0 || i >= len(g.replicas()) {
		return fmt.Errorf("%w: %d", vsr.ErrReplicaIndex, i)
	}
	return nil
}

// isStopped reports whether the group was stopped, or its actor system shut
// down under it (by the caller who owns it).
func (g *Group) isStopped() bool { return g.stopped.Load() || g.system.IsStopped() }

// Stop stops every replica and the group's supervisor, and shuts the actor
// system down if the group made it; a caller's system (GroupConfig.System)
// keeps running, with its other actors and groups. Afterwards NewClient,
// Kill, Restart, Crash, SetDeaf, Reconfigure and Replace return ErrStopped,
// and Status reports every replica Down. It is safe to call twice, and from
// several goroutines: each call returns once the group has stopped.
func (g *Group) Stop() {
	g.stopped.Store(true)
	g.stopOnce.Do(func() {
		// The supervisor is stopped even in a system its owner has shut
		// down: Proto.Actor's Shutdown stops no actor.
		if g.sup != nil {
			_ = g.sup.Stop()
		}
		if g.ownSystem {
			g.system.Shutdown()
		}
	})
}
