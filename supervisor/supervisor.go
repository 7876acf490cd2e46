// Package supervisor spawns a group's replica actors under a restart
// strategy and gives a user what they need to run the group: a client, each
// replica's status, ways to stop, kill, crash and restart replicas, and a way
// to stop it all.
//
// A replica that panics is restarted by its supervisor; a replica that was
// stopped is started again by Restart. Either way the new instance has lost
// its state and comes back through VR recovery (paper section 4.3), never
// with stale state.
package supervisor

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// supervisorActor is the parent of a group's replica actors. It spawns them
// by index and decides nothing else: its strategy restarts a child that
// panics, up to MaxRestarts within RestartWindow.
type supervisorActor struct {
	props []*actor.Props // by replica index
	name  func(i int) string
}

// spawn asks the supervisor to start replica i (a fresh instance of its
// props: recovering, unless it is the first instance of a new group).
type spawn struct{ index int }

type spawned struct {
	pid *actor.PID
	err error
}

func (s *supervisorActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *spawn:
		pid, err := ctx.SpawnNamed(s.props[m.index], s.name(m.index))
		ctx.Respond(&spawned{pid: pid, err: err})
	case *actor.Terminated:
		// A child that stopped: by request (Kill), or after too many
		// restarts. It stays down until Restart.
	}
}

func supervisorProps(props []*actor.Props, name func(int) string, maxRestarts int, window time.Duration) *actor.Props {
	strategy := actor.NewOneForOneStrategy(maxRestarts, window, actor.DefaultDecider)
	return actor.PropsFromProducer(func() actor.Actor {
		return &supervisorActor{props: props, name: name}
	}, actor.WithSupervisor(strategy))
}
