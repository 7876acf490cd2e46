package statemachine_test

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/supervisor"
)

// counter is a replicated counter. Its operations are "inc", which adds one
// and returns the new value, and "get", which returns the value; results
// are the value in decimal.
type counter struct {
	n uint64
}

// newCounter is the group's statemachine.Factory: every replica, and every
// replica that restarts, starts from an empty counter and is filled by the
// protocol.
func newCounter() statemachine.StateMachine { return &counter{} }

// Apply must give the same result on every replica, so it depends on the
// operation and the state alone, and it never fails: an operation it does
// not know gets a result that says so, which every replica agrees on.
func (c *counter) Apply(op []byte) []byte {
	switch string(op) {
	case "inc":
		c.n++
	case "get":
	default:
		return []byte("error: unknown operation " + strconv.Quote(string(op)))
	}
	return strconv.AppendUint(nil, c.n, 10)
}

// ReadOnly lets "get" be served as a read without a log entry; anything
// else goes through the log.
func (c *counter) ReadOnly(op []byte) bool { return string(op) == "get" }

// Snapshot and Restore carry the whole state for checkpoints and state
// transfer. A counter is small, so it needs no statemachine.Checkpointer:
// encoding it on the replica's goroutine stalls nothing.
func (c *counter) Snapshot() ([]byte, error) { return strconv.AppendUint(nil, c.n, 10), nil }

func (c *counter) Restore(snapshot []byte) error {
	n, err := strconv.ParseUint(string(snapshot), 10, 64)
	if err != nil {
		return fmt.Errorf("counter: bad snapshot: %w", err)
	}
	c.n = n
	return nil
}

// A custom state machine, a counter, replicated by a group of three: writes
// go through the log with Execute, and the read-only "get" is served as a
// linearizable read.
func ExampleStateMachine() {
	group, err := supervisor.StartGroup(supervisor.GroupConfig{
		ClusterID:       1,
		Replicas:        3,
		NewStateMachine: newCounter,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer group.Stop()

	client, err := group.NewClient(1)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for range 3 {
		res, err := client.Execute(ctx, []byte("inc"))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("inc -> %s\n", res)
	}
	res, err := client.Read(ctx, []byte("get"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("get -> %s\n", res)
	// Output:
	// inc -> 1
	// inc -> 2
	// inc -> 3
	// get -> 3
}
