package actors_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// hostParent is a program's own actor that hosts replicas as its children.
type hostParent struct {
	members []string
	props   []*actor.Props // made once, outside the parent
}

// ready asks a hostParent whether it has spawned its children.
type ready struct{}

func (p *hostParent) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		for i, name := range p.members {
			if _, err := ctx.SpawnNamed(p.props[i], name); err != nil {
				panic(err)
			}
		}
	case *ready:
		ctx.Respond(len(ctx.Children()))
	}
}

// Three replicas as children of the program's own parent actor, under the
// parent's own supervision strategy: a replica that panics is restarted by
// that strategy, and the new instance comes back through VR recovery with
// the state its peers hold.
func ExampleNewReplicaProps_underYourParent() {
	system, _ := actors.NewActorSystem(nil)
	defer system.Shutdown()

	// The parent is named "app", so its child "b" is the actor "app/b":
	// Resolve computes that PID from the member name, which holds before the
	// children exist and after a restart (a restarted child keeps its PID).
	members := []string{"a", "b", "c"}
	resolve := func(name string) *actor.PID { return system.NewLocalPID("app/" + name) }

	// OnEvent runs on the replica's goroutine and must not block.
	events := make(chan actors.Event, 1024)
	props := make([]*actor.Props, len(members))
	for i := range members {
		props[i] = actors.NewReplicaProps(actors.ReplicaConfig{
			Core:            vsr.Config{ClusterID: 1, ReplicaCount: len(members), ReplicaIndex: i, Members: members},
			NewStateMachine: kv.New,
			Resolve:         resolve,
			OnEvent: func(e actors.Event) {
				select {
				case events <- e:
				default:
				}
			},
		})
	}

	// The parent's strategy restarts one replica at a time, and never
	// resumes one: a resumed replica would go on in whatever state the
	// panic left it.
	var restarts atomic.Int32
	strategy := actor.NewOneForOneStrategy(10, 10*time.Second, func(reason any) actor.Directive {
		restarts.Add(1)
		return actor.RestartDirective
	})
	parent, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &hostParent{members: members, props: props}
	}, actor.WithSupervisor(strategy)), "app")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = system.Root.StopFuture(parent).Wait() }()
	// The parent spawns its children as it starts: wait for that before
	// the first call.
	if _, err := system.Root.RequestFuture(parent, &ready{}, 5*time.Second).Result(); err != nil {
		log.Fatal(err)
	}

	client, err := actors.NewClient(system, actors.ClientConfig{ClusterID: 1, Members: members, Resolve: resolve})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Execute(ctx, kv.PutOp("greeting", []byte("hello"))); err != nil {
		log.Fatal(err)
	}

	// Replica b (index 1) panics; the parent's strategy restarts it.
	system.Root.Send(resolve("b"), &actors.Crash{})
	for restarted := false; ; {
		var e actors.Event
		select {
		case e = <-events:
		case <-ctx.Done():
			log.Fatal("replica b did not recover")
		}
		if e.Replica != 1 {
			continue
		}
		if e.Restarted {
			restarted = true
			fmt.Println("b restarted, status", e.Status)
		} else if restarted && e.Status == vsr.StatusNormal {
			fmt.Println("b recovered, status", e.Status)
			break
		}
	}

	res, err := client.Read(ctx, kv.GetOp("greeting"))
	if err != nil {
		log.Fatal(err)
	}
	r, err := kv.DecodeResult(res)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("greeting = %s; restarts by the parent's strategy: %d\n", r.GetValue(), restarts.Load())
	// Output:
	// b restarted, status recovering
	// b recovered, status normal
	// greeting = hello; restarts by the parent's strategy: 1
}
