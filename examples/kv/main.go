// Command kv is the smallest useful program on this library: it starts a
// group of three replicas of a key-value store in one process, writes a key,
// reads it back, and stops.
//
//	go run ./examples/kv
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
)

func main() {
	// Three replicas (f = 1): the group keeps serving with one of them down.
	group, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID:       1,
		Replicas:        3,
		NewStateMachine: kv.New, // each replica gets its own store
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

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// A write goes through the log: it is answered once a quorum holds it.
	if _, err := client.Execute(ctx, kv.PutOp("greeting", []byte("hello"))); err != nil {
		log.Fatal(err)
	}

	// A linearizable read sees every acknowledged write.
	res, err := client.Read(ctx, kv.GetOp("greeting"))
	if err != nil {
		log.Fatal(err)
	}
	r, err := kv.DecodeResult(res)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("greeting = %q (found: %t)\n", r.Value, r.Found)
}
