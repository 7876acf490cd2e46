package supervisor_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
)

// A group of three replicas of the key-value store in one process: a write
// goes through the log, and a linearizable read sees it.
func ExampleStartGroup() {
	group, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID:       1,
		Replicas:        3,      // n = 2f+1: the group keeps serving with one replica down
		NewStateMachine: kv.New, // every replica gets its own, empty store
	})
	if err != nil {
		log.Fatal(err)
	}
	defer group.Stop()

	client, err := group.NewClient(1) // one request in flight at a time
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Execute returns once the write is committed: a quorum holds it.
	if _, err := client.Execute(ctx, kv.PutOp("greeting", []byte("hello"))); err != nil {
		log.Fatal(err)
	}

	// Read is served by the primary without a log entry, once a quorum has
	// confirmed that it is still the primary, so it sees every
	// acknowledged write.
	res, err := client.Read(ctx, kv.GetOp("greeting"))
	if err != nil {
		log.Fatal(err)
	}
	r, err := kv.DecodeResult(res)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("greeting = %s\n", r.GetValue())
	// Output: greeting = hello
}

// Replacing a member of a running group: Replace starts a new replica,
// which fetches the state before it takes part, and asks the group to swap
// it in through the log. The replaced replica stops once the new
// configuration holds the state.
func ExampleGroup_Reconfigure() {
	group, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID:       1,
		Replicas:        3,
		NewStateMachine: kv.New,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer group.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	epoch, members := group.Members()
	fmt.Printf("epoch %d: members %v\n", epoch, members)

	// Replica 2 is lost for good: a new replica takes the next number (3)
	// and replica 2's place in the configuration. Replace is
	// Reconfigure(ctx, []int{0, 1, 3}) with the numbers worked out for you.
	added, err := group.Replace(ctx, 2)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added replica", added)

	// Replace returns once the change is committed, but Members reports
	// what the replicas have told the group, which may lag a moment behind:
	// wait for the new epoch, for a bounded time.
	for epoch, members = group.Members(); epoch < 1 && ctx.Err() == nil; epoch, members = group.Members() {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("epoch %d: members %v\n", epoch, members)
	// Output:
	// epoch 0: members [0 1 2]
	// added replica 3
	// epoch 1: members [0 1 3]
}

// Two groups side by side inside an actor system the program made and
// owns, beside an actor of its own: each group needs its own Name there,
// and Stop stops a group's replicas but leaves the system, and everything
// else in it, running.
func ExampleStartGroup_ownActorSystem() {
	// actors.NewActorSystem logs nothing unless given a logger.
	system, _ := actors.NewActorSystem(nil)
	defer system.Shutdown() // the program's business, not the groups'

	// An actor of the program's own, which answers "pong".
	pinger := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(string); ok {
			ctx.Respond("pong")
		}
	}))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := []string{"orders", "stock"}
	groups := make([]*supervisor.Group, len(names))
	for k, name := range names {
		group, err := supervisor.StartGroup(supervisor.GroupConfig{
			System:          system,
			Name:            name, // unique in the system: it names the group's actors
			ClusterID:       1,
			Replicas:        3,
			NewStateMachine: kv.New,
		})
		if err != nil {
			log.Fatal(err)
		}
		groups[k] = group
	}
	// Both groups run at once; each keeps its own state.
	for k, group := range groups {
		client, err := group.NewClient(1)
		if err != nil {
			log.Fatal(err)
		}
		// The client's sessions live in the program's system: a group's
		// Stop does not close them.
		defer client.Close()
		if _, err := client.Execute(ctx, kv.PutOp("group", []byte(names[k]))); err != nil {
			log.Fatal(err)
		}
		res, err := client.Read(ctx, kv.GetOp("group"))
		if err != nil {
			log.Fatal(err)
		}
		r, err := kv.DecodeResult(res)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("group %s holds %s\n", names[k], r.GetValue())
	}
	for _, group := range groups {
		group.Stop()
	}

	// The groups have stopped; the system and the program's actor run on.
	answer, err := system.Root.RequestFuture(pinger, "ping", 5*time.Second).Result()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the program's own actor still answers:", answer)
	// Output:
	// group orders holds orders
	// group stock holds stock
	// the program's own actor still answers: pong
}
