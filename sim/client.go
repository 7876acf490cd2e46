package sim

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// client is one simulated client: the vsr client core, a workload of kv
// put, get and compare-and-swap on a small key set, and the patience of a
// real client, which gives up on a request after a while (its outcome is
// then unknown) and moves on.
type client struct {
	c      *Cluster
	k      int
	core   *vsr.Client
	keys   int
	op     int // history id of the operation in flight, or -1
	input  Input
	since  int               // tick the operation started
	output *Output           // the outcome of the last operation, once known
	seen   map[string]string // the last value this client saw per key
	budget bool              // whether to start new operations
	// writer marks an open-loop writer: it starts puts when the cluster's
	// write clock says so (Cluster.startOpenLoopWrite), never on its own.
	writer bool
	// busy is set when the operation in flight was refused as busy: the
	// group is up but over its pipeline, which is overload, not a loss of
	// liveness (liveness.go).
	busy bool
	mode messages.ReadMode // of the operation in flight
}

// Workload shape, per tick and per operation.
const (
	startChance = 0.25 // an idle client starts an operation
	retryTicks  = 25   // the client core resends to all after this long
	giveUpTicks = 300  // a client abandons an operation after this long
)

func newClient(c *Cluster, k, keys int) (*client, error) {
	core, err := vsr.NewClient(vsr.ClientConfig{
		ClusterID: clusterID, ClientID: uint64(k + 1), ReplicaCount: c.n,
		ReplyTo: &messages.ClientAddress{Address: "sim", Id: strconv.Itoa(k)}, RetryTicks: retryTicks,
	})
	if err != nil {
		return nil, err
	}
	return &client{c: c, k: k, core: core, keys: keys, op: -1, seen: map[string]string{}, budget: true}, nil
}

// clientIndex finds the client a reply address names.
func clientIndex(a *messages.ClientAddress, clients int) (int, bool) {
	if a == nil || a.Address != "sim" {
		return 0, false
	}
	k, err := strconv.Atoi(a.Id)
	return k, err == nil && k >= 0 && k < clients
}

func (cl *client) tick() {
	if cl.op >= 0 {
		if cl.c.faulty && cl.c.now-cl.since > giveUpTicks {
			cl.giveUp()
		} else {
			cl.send(cl.core.Tick())
		}
		return
	}
	if cl.budget && !cl.writer && cl.c.rng.Float64() < startChance {
		cl.start()
	}
}

// startWrite puts a fresh value under the writer's own key. The stream of
// writes is there to keep the primary busy while reads wait, not to race
// with the other clients: a key per writer keeps the linearizability check,
// which is partitioned by key, cheap.
func (cl *client) startWrite() {
	key := "w" + strconv.Itoa(cl.k)
	cl.invoke(Input{Kind: OpPut, Key: key, Value: fmt.Sprintf("c%d.%d", cl.k, cl.core.RequestNumber()+1)},
		messages.ReadMode_READ_MODE_LOG)
}

// start invokes a random operation: 40% puts, 40% gets (three in four of
// them linearizable reads without the log, the rest through the log), 20%
// compare-and-swaps against the last value this client saw.
func (cl *client) start() {
	rng := cl.c.rng
	key := "k" + strconv.Itoa(rng.IntN(cl.keys))
	value := fmt.Sprintf("c%d.%d", cl.k, cl.core.RequestNumber()+1)
	switch x := rng.IntN(10); {
	case x < 4:
		cl.invoke(Input{Kind: OpPut, Key: key, Value: value}, messages.ReadMode_READ_MODE_LOG)
	case x < 7:
		cl.invoke(Input{Kind: OpGet, Key: key}, messages.ReadMode_READ_MODE_LINEARIZABLE)
	case x < 8:
		cl.invoke(Input{Kind: OpGet, Key: key}, messages.ReadMode_READ_MODE_LOG)
	default:
		if old, ok := cl.seen[key]; ok {
			cl.invoke(Input{Kind: OpCAS, Key: key, Expected: old, Value: value}, messages.ReadMode_READ_MODE_LOG)
		} else {
			cl.invoke(Input{Kind: OpPutIfAbsent, Key: key, Value: value}, messages.ReadMode_READ_MODE_LOG)
		}
	}
}

// invoke sends one operation and records it in the history.
func (cl *client) invoke(in Input, mode messages.ReadMode) {
	var op []byte
	switch in.Kind {
	case OpPut:
		op = kv.PutOp(in.Key, []byte(in.Value))
	case OpGet:
		op = kv.GetOp(in.Key)
	case OpCAS:
		op = kv.CASOp(in.Key, []byte(in.Expected), []byte(in.Value))
	case OpPutIfAbsent:
		op = kv.PutIfAbsentOp(in.Key, []byte(in.Value))
	}
	out, err := cl.core.Submit(op, mode)
	if err != nil {
		cl.c.fail("client %d: %v", cl.k, err)
		return
	}
	cl.input, cl.since, cl.output, cl.busy, cl.mode = in, cl.c.now, nil, false, mode
	cl.op = cl.c.history.Invoke(cl.k, in, int64(cl.c.now))
	cl.c.stats.OpsInvoked++
	cl.c.liveness.onInvoke(cl.k, cl.op)
	cl.send(out)
}

func (cl *client) send(out vsr.ClientOutput) {
	for _, env := range out.Messages {
		cl.c.net.send(clientBase+node(cl.k), node(env.To), env.Msg, cl.c.faulty)
	}
}

// giveUp abandons the operation in flight: it may or may not happen.
func (cl *client) giveUp() {
	cl.core.Cancel()
	cl.op = -1
	cl.c.stats.OpsUnknown++
}

func (cl *client) onReply(m *messages.Reply) {
	// Any busy reply counts, the registration's too (its request number is
	// below the operation's).
	if m.Error == messages.ReplyError_REPLY_ERROR_BUSY && cl.op >= 0 {
		cl.busy = true
	}
	out := cl.core.Step(m)
	if out.Done == nil || cl.op < 0 {
		return
	}
	if errors.Is(out.Done.Err, vsr.ErrSessionExpired) {
		// The session expired while the request waited: it was not executed
		// by this attempt, but an earlier copy may have been. Its outcome is
		// unknown, as if the client had given up.
		cl.giveUp()
		return
	}
	if out.Done.Err != nil {
		cl.c.fail("client %d: request %d refused: %v", cl.k, out.Done.RequestNumber, out.Done.Err)
		return
	}
	res, err := kv.DecodeResult(out.Done.Value)
	if err != nil || res.Error != "" {
		cl.c.fail("client %d: bad result %v %v", cl.k, err, res.GetError())
		return
	}
	cl.c.oracle.checkReply(cl.k, m.View, cl.since)
	o := Output{Found: res.Found, Value: string(res.Value), Swapped: res.Swapped}
	cl.c.history.Complete(cl.op, o, int64(cl.c.now))
	cl.output = &o
	cl.c.stats.OpsOK++
	switch cl.input.Kind {
	case OpGet:
		if res.Found {
			cl.seen[cl.input.Key] = string(res.Value)
		}
	case OpPut:
		cl.seen[cl.input.Key] = cl.input.Value
	default:
		if res.Swapped {
			cl.seen[cl.input.Key] = cl.input.Value
		} else if res.Found {
			cl.seen[cl.input.Key] = string(res.Value)
		}
	}
	cl.op = -1
}
