// Command ownsystem runs replicas inside an actor system the program made
// and owns, in the two ways the library offers, one after the other in the
// same system:
//
//   - A whole group: supervisor.StartGroup with GroupConfig.System starts
//     the group beside the program's own actors, and the group's Stop
//     leaves the system running.
//   - Replicas as children of the program's own parent actor, spawned from
//     actors.NewReplicaProps under the parent's own supervision strategy.
//     One of them panics; the strategy restarts it, and the new instance
//     comes back through VR recovery with the state its peers hold.
//
// It logs nothing (actors.NewActorSystem without a logger) and prints what
// it sees:
//
//	go run ./examples/ownsystem
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run does the whole demonstration, printing to w; main_test.go runs it.
func run(w io.Writer) error {
	// The program's actor system: it logs nothing unless given a logger,
	// and it is the program's to shut down, not the groups'.
	system, _ := actors.NewActorSystem(nil)
	defer system.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := groupInYourSystem(ctx, w, system); err != nil {
		return err
	}
	return replicasUnderYourParent(ctx, w, system)
}

// groupInYourSystem starts a group in system, writes and reads a key, and
// stops the group, which leaves the system running.
func groupInYourSystem(ctx context.Context, w io.Writer, system *actor.ActorSystem) error {
	group, err := supervisor.StartGroup(supervisor.GroupConfig{
		System:          system,
		Name:            "orders", // names the group's actors: unique in the system
		ClusterID:       1,
		Replicas:        3,
		NewStateMachine: kv.New,
	})
	if err != nil {
		return err
	}
	defer group.Stop()
	client, err := group.NewClient(1)
	if err != nil {
		return err
	}
	// The client's sessions are actors of the program's system: the group's
	// Stop does not close them.
	defer client.Close()

	if _, err := client.Execute(ctx, kv.PutOp("greeting", []byte("hello"))); err != nil {
		return err
	}
	value, err := get(ctx, client, "greeting")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "group %q in the program's system: greeting = %s\n", "orders", value)

	group.Stop()
	fmt.Fprintf(w, "group stopped; the program's system still runs: %t\n", !system.IsStopped())
	return nil
}

// parentName is the name of the program's parent actor: its child named
// "b" is the actor "app/b".
const parentName = "app"

// replicaParent is the program's own actor, which hosts replicas as its
// children. Their props are made once, outside it: the props count the
// instances they make, and every instance but the first recovers.
type replicaParent struct {
	members []string
	props   []*actor.Props
}

// ready asks the parent whether it has spawned its children.
type ready struct{}

func (p *replicaParent) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		for i, name := range p.members {
			if _, err := ctx.SpawnNamed(p.props[i], name); err != nil {
				panic(err) // the parent's own parent decides
			}
		}
	case *ready:
		ctx.Respond(len(ctx.Children()))
	}
}

// replicasUnderYourParent runs three replicas as children of the program's
// parent actor, makes one panic, and shows it come back through recovery.
func replicasUnderYourParent(ctx context.Context, w io.Writer, system *actor.ActorSystem) error {
	members := []string{"a", "b", "c"}
	// Resolve maps a member name to its child's PID, computed from the
	// name: it holds before the children exist and after a restart, which
	// keeps a child's PID.
	resolve := func(name string) *actor.PID { return system.NewLocalPID(parentName + "/" + name) }
	events := make(chan actors.Event, 1024)
	props := make([]*actor.Props, len(members))
	for i := range members {
		props[i] = actors.NewReplicaProps(actors.ReplicaConfig{
			Core:            vsr.Config{ClusterID: 2, ReplicaCount: len(members), ReplicaIndex: i, Members: members},
			NewStateMachine: kv.New,
			Resolve:         resolve,
			// OnEvent runs on the replica's goroutine and must not block.
			OnEvent: func(e actors.Event) {
				select {
				case events <- e:
				default:
				}
			},
		})
	}

	// One replica at a time, and always a restart: a resumed replica would
	// go on in whatever state the panic left it, while a restarted one
	// recovers its state from its peers.
	var restarts atomic.Int32
	strategy := actor.NewOneForOneStrategy(10, 10*time.Second, func(any) actor.Directive {
		restarts.Add(1)
		return actor.RestartDirective
	})
	parent, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &replicaParent{members: members, props: props}
	}, actor.WithSupervisor(strategy)), parentName)
	if err != nil {
		return err
	}
	defer func() { _ = system.Root.StopFuture(parent).Wait() }()
	// The parent spawns its children as it starts, after SpawnNamed has
	// returned: wait for that before the first call.
	if _, err := system.Root.RequestFuture(parent, &ready{}, 5*time.Second).Result(); err != nil {
		return err
	}

	client, err := actors.NewClient(system, actors.ClientConfig{ClusterID: 2, Members: members, Resolve: resolve})
	if err != nil {
		return err
	}
	defer client.Close()
	if _, err := client.Execute(ctx, kv.PutOp("greeting", []byte("hello again"))); err != nil {
		return err
	}

	// Replica b (index 1) panics, as a bug would.
	system.Root.Send(resolve("b"), &actors.Crash{})
	if err := awaitRecovery(ctx, w, events, 1); err != nil {
		return err
	}
	value, err := get(ctx, client, "greeting")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "replicas under the program's parent: greeting = %s; restarts by its strategy: %d\n",
		value, restarts.Load())
	return nil
}

// awaitRecovery waits for replica i's new instance to report that it
// restarted, recovering, and then that it is normal again.
func awaitRecovery(ctx context.Context, w io.Writer, events <-chan actors.Event, i int) error {
	restarted := false
	for {
		var e actors.Event
		select {
		case e = <-events:
		case <-ctx.Done():
			return errors.New("the crashed replica did not come back")
		}
		switch {
		case e.Replica != i:
		case e.Restarted:
			restarted = true
			fmt.Fprintf(w, "replica %d panicked and was restarted: %s\n", i, e.Status)
		case restarted && e.Status == vsr.StatusNormal:
			fmt.Fprintf(w, "replica %d came back through VR recovery: %s\n", i, e.Status)
			return nil
		}
	}
}

// get reads key with a linearizable read.
func get(ctx context.Context, c *actors.Client, key string) (string, error) {
	res, err := c.Read(ctx, kv.GetOp(key))
	if err != nil {
		return "", err
	}
	r, err := kv.DecodeResult(res)
	if err != nil {
		return "", err
	}
	return string(r.GetValue()), nil
}
