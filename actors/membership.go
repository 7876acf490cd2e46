package actors

import (
	"slices"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vsrgo/vsr/vsr"
)

// A replica's place in a group that reconfigures: what the instances made by
// one Props know of the configurations their replica belonged to, so that an
// instance that replaces a failed one comes back in the right epoch and the
// right way; and how a replica that a reconfiguration removed stops.

// membership is shared by the instances one Props makes. An instance notes
// each change of its core's epoch and status (report); a later instance reads
// it at start (restartConfig).
type membership struct {
	mu sync.Mutex
	// tookPart is set once the replica has held its state as a member: in
	// the first configuration, or after it finished joining. From then on
	// it may have voted, and a restart without its state must run recovery.
	tookPart bool
	// epoch and members are the latest configuration that named the
	// replica while it took part (nil: the one in its Config).
	epoch   uint64
	members []string
}

// notedState is what an instance last told its membership record.
type notedState struct {
	status vsr.Status
	epoch  uint64
}

// note records what the core's state says of the replica's membership.
func (m *membership) note(core *vsr.Replica) {
	switch core.Status() {
	case vsr.StatusNormal, vsr.StatusViewChange:
	default:
		return // joining, leaving or recovering: no configuration to come back in
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tookPart = true
	if m.members == nil || core.Epoch() > m.epoch {
		m.epoch, m.members = core.Epoch(), slices.Clone(core.Members())
	}
}

// restartConfig is the core configuration of an instance that starts after
// another one of the same replica failed (recovering), from cfg, the
// configuration the Props were made with. A replica started to join that
// never held its state joins again: it never voted, and recovery would ask
// for a vote it never had. Any other replica recovers, in the latest
// configuration that named it: the group may have reconfigured since cfg
// was written. With a disk, vsr.Restart reads the epoch from the store and
// only falls back on this for an empty one.
func (m *membership) restartConfig(cfg vsr.Config, recovering bool) vsr.Config {
	if !recovering {
		return cfg
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cfg.Joining && !m.tookPart {
		cfg.Recovering = false
		return cfg
	}
	cfg.Joining, cfg.Recovering = false, true
	if m.members == nil || m.epoch == 0 {
		return cfg
	}
	self := ""
	if names := cfg.Members; cfg.ReplicaIndex >= 0 && cfg.ReplicaIndex < len(names) {
		self = names[cfg.ReplicaIndex]
	}
	if j := slices.Index(m.members, self); j >= 0 {
		cfg.Epoch, cfg.Members, cfg.ReplicaCount, cfg.ReplicaIndex = m.epoch, slices.Clone(m.members), len(m.members), j
	}
	return cfg
}

// leave stops a replica that a reconfiguration removed, once a quorum of the
// new configuration holds the state (vsr.Output.Left): it has nothing left to
// do. Its supervisor does not restart it (a stop is not a failure); the last
// event says it left.
func (a *replicaActor) leave(ctx actor.Context) {
	i, epoch := a.core.Index(), a.core.Epoch()
	a.logger().Info("vsr: replica left the group", "replica", i, "epoch", epoch)
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(Event{Replica: i, Status: a.core.Status(), View: a.core.View(), Epoch: epoch, Left: true})
	}
	a.core = nil
	ctx.Stop(ctx.Self())
}

// route is the actor an envelope of a core goes to: by member name with
// resolve, by index in pids otherwise; nil if neither places it.
func route(env vsr.Envelope, resolve func(string) *actor.PID, pids []*actor.PID) *actor.PID {
	if resolve != nil && env.Member != "" {
		return resolve(env.Member)
	}
	if env.To >= 0 && env.To < len(pids) {
		return pids[env.To]
	}
	return nil
}
