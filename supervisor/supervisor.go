// Package supervisor spawns replica actors under a restart strategy, and
// runs whole groups in one actor system: a new one, or the caller's own
// (GroupConfig.System).
//
// [StartGroup] is the way to run a group in one process, for tests, demos
// and programs that want replication without a network: it starts n
// replicas of a state machine and returns a [Group], whose NewClient gives
// an actors.Client (Execute for writes, Read for linearizable reads). A
// Group also changes its members ([Group.Reconfigure], [Group.Replace],
// [Group.Members]) and, for tests, fails them ([Group.Kill], [Group.Crash],
// [Group.Restart], [Group.SetDeaf]). ExampleStartGroup and
// ExampleGroup_Reconfigure show both; the cluster package builds a group
// across machines from the same [Supervisor], one replica per node.
//
// A replica that panics is restarted by its supervisor; a replica that was
// killed is started again by Spawn (or Group.Restart). Without a disk the
// new instance has lost its state and comes back through VR recovery (paper
// section 4.3), never with stale state. With GroupConfig.DataDir each replica
// keeps its log and checkpoints on disk and comes back from them: in the
// view it had when they are intact, through recovery of what it lost when
// they are damaged. A group stopped as a whole starts again from its disks.
package supervisor

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Supervisor is the parent of the replica actors one actor system hosts: all
// of a group's in one process, or one replica per node across machines.
type Supervisor struct {
	system *actor.ActorSystem
	name   string
	pid    *actor.PID
}

// Restart policy defaults: past MaxRestarts within RestartWindow a replica
// that keeps panicking stays down until it is spawned again.
const (
	DefaultMaxRestarts   = 10
	DefaultRestartWindow = 10 * time.Second
)

// StartSupervisor spawns a supervisor named name in system. props[i] makes
// replica i; a nil entry is a replica hosted elsewhere. No replica is
// spawned yet: call Spawn.
func StartSupervisor(system *actor.ActorSystem, name string, props []*actor.Props, maxRestarts int, window time.Duration) (*Supervisor, error) {
	if maxRestarts <= 0 {
		maxRestarts = DefaultMaxRestarts
	}
	if window <= 0 {
		window = DefaultRestartWindow
	}
	strategy := actor.NewOneForOneStrategy(maxRestarts, window, actor.DefaultDecider)
	s := &Supervisor{system: system, name: name}
	props = append([]*actor.Props(nil), props...)
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &supervisorActor{props: props}
	}, actor.WithSupervisor(strategy)), name)
	if err != nil {
		return nil, fmt.Errorf("vsr: cannot start supervisor %q: %w", name, err)
	}
	s.pid = pid
	return s, nil
}

// ReplicaID is the actor ID of replica i under the supervisor named name: a
// replica's PID is this ID at the address of the node that hosts it.
func ReplicaID(name string, i int) string { return fmt.Sprintf("%s/replica-%d", name, i) }

// Spawn starts replica i: the first instance of a new group starts normal
// in view 0, every later one runs recovery (see actors.NewReplicaProps).
func (s *Supervisor) Spawn(i int) error {
	res, err := s.system.Root.RequestFuture(s.pid, &spawn{index: i}, 5*time.Second).Result()
	if err != nil {
		return fmt.Errorf("vsr: cannot start replica %d: %w", i, err)
	}
	if err := spawnedErr(res); err != nil {
		return fmt.Errorf("vsr: cannot start replica %d: %w", i, err)
	}
	return nil
}

// ErrSupervisorStopped is returned by a Supervisor that has been stopped.
var ErrSupervisorStopped = errors.New("vsr: supervisor stopped")

// spawnedErr is the error a supervisor answered with; an answer that is
// not the supervisor's own comes from Proto.Actor's dead letters, when the
// supervisor has stopped.
func spawnedErr(res any) error {
	r, ok := res.(*spawned)
	if !ok {
		return fmt.Errorf("%w (answered %T)", ErrSupervisorStopped, res)
	}
	return r.err
}

// Host makes props the maker of replica i, which this supervisor did not
// host before (a replica that joins the group in a reconfiguration), or
// with nil forgets replica i, which must be stopped. It spawns nothing.
func (s *Supervisor) Host(i int, props *actor.Props) error {
	if i < 0 {
		return fmt.Errorf("vsr: replica %d: negative index", i)
	}
	res, err := s.system.Root.RequestFuture(s.pid, &host{index: i, props: props}, 5*time.Second).Result()
	if err != nil {
		return fmt.Errorf("vsr: cannot host replica %d: %w", i, err)
	}
	return spawnedErr(res)
}

// Kill stops replica i at once, as a crash would: it loses everything it
// held, and stays down until Spawn.
func (s *Supervisor) Kill(i int) error {
	return s.system.Root.StopFuture(s.system.NewLocalPID(ReplicaID(s.name, i))).Wait()
}

// Stop stops the supervisor and every replica under it.
func (s *Supervisor) Stop() error { return s.system.Root.StopFuture(s.pid).Wait() }

// supervisorActor spawns replicas by index and decides nothing else: its
// strategy restarts a child that panics. It owns props: Host changes them
// through its mailbox.
type supervisorActor struct {
	props []*actor.Props
}

type spawn struct{ index int }

type host struct {
	index int
	props *actor.Props
}

type spawned struct {
	pid *actor.PID
	err error
}

func (s *supervisorActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *spawn:
		if m.index < 0 || m.index >= len(s.props) || s.props[m.index] == nil {
			ctx.Respond(&spawned{err: errors.New("not hosted here")})
			return
		}
		pid, err := ctx.SpawnNamed(s.props[m.index], fmt.Sprintf("replica-%d", m.index))
		ctx.Respond(&spawned{pid: pid, err: err})
	case *host:
		for len(s.props) <= m.index {
			s.props = append(s.props, nil)
		}
		s.props[m.index] = m.props
		ctx.Respond(&spawned{})
	case *actor.Terminated:
		// A child stopped: on purpose (Kill), or after too many restarts.
		// It stays down until Spawn.
	}
}
