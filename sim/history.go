package sim

import (
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// OpKind is the kind of a client operation on the key-value store.
type OpKind int

// The operations a client can run. They mirror the constructors in
// statemachine/kv: kv.PutOp, kv.GetOp, kv.CASOp and kv.PutIfAbsentOp.
const (
	// OpPut sets Key to Value unconditionally.
	OpPut OpKind = iota
	// OpGet reads Key.
	OpGet
	// OpCAS sets Key to Value only if Key is present and equals Expected.
	OpCAS
	// OpPutIfAbsent sets Key to Value only if Key is absent.
	OpPutIfAbsent
)

// String names the kind as it appears in the visualisation.
func (k OpKind) String() string {
	switch k {
	case OpPut:
		return "put"
	case OpGet:
		return "get"
	case OpCAS:
		return "cas"
	case OpPutIfAbsent:
		return "putIfAbsent"
	default:
		return fmt.Sprintf("OpKind(%d)", int(k))
	}
}

// Input is what a client asked for. Value is the new value for put, cas and
// put-if-absent; Expected is the value a cas compares against. Fields that do
// not apply to Kind are ignored.
type Input struct {
	Kind     OpKind
	Key      string
	Value    string
	Expected string
}

// Output is what a client learned. Unknown marks an operation whose outcome
// the client never learned (it timed out or gave up): such an op may or may
// not have taken effect, and the other fields are ignored.
//
// Found and Value are checked for gets only; Swapped is checked for cas and
// put-if-absent only. A put's output carries no information.
type Output struct {
	Unknown bool
	Found   bool
	Value   string
	Swapped bool
}

// kvState is the model's state for one key. It is comparable, so the
// checker's cache can use ==.
type kvState struct {
	present bool
	value   string
}

// histOp is one operation as the History holds it.
type histOp struct {
	client    int
	in        Input
	call      int64
	out       Output
	ret       int64
	completed bool
}

// History records the operations a workload invokes and their outcomes, in
// the form porcupine checks. The zero value is an empty history ready to use.
// It is safe for concurrent use, though a deterministic simulator will
// normally drive it from one goroutine.
//
// Timestamps are the caller's clock (for the simulator, virtual time); the
// checker only compares them, and treats each [Call, Return] as a closed
// interval.
type History struct {
	mu  sync.Mutex
	ops []histOp
}

// Invoke records that client called in at time at and returns the op's id,
// which the caller passes to Complete.
func (h *History) Invoke(client int, in Input, at int64) int {
	if client < 0 {
		panic(fmt.Sprintf("sim: History.Invoke: negative client %d", client))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, histOp{client: client, in: in, call: at})
	return len(h.ops) - 1
}

// Complete records that op id returned out at time at. An op may complete
// only once, and not before it was invoked; breaking either rule is a bug in
// the caller and panics.
//
// An out with Unknown set is recorded as if the op had never completed: its
// return time becomes the end of the history, because a request the client
// gave up on may still be executed later (for example from the primary's
// log), and linearizing it at the very end is how the checker expresses
// "never observed".
func (h *History) Complete(id int, out Output, at int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id < 0 || id >= len(h.ops) {
		panic(fmt.Sprintf("sim: History.Complete: unknown op id %d", id))
	}
	r := &h.ops[id]
	if r.completed {
		panic(fmt.Sprintf("sim: History.Complete: op %d completed twice", id))
	}
	if at < r.call {
		panic(fmt.Sprintf("sim: History.Complete: op %d returns at %d before its call at %d", id, at, r.call))
	}
	r.out, r.ret, r.completed = out, at, true
}

// Len is the number of operations invoked so far, completed or not.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Operations returns the history in porcupine's form, one Operation per
// invoked op in invocation order, with Input an Input and Output an Output.
// Ops never completed, and ops completed with Output.Unknown, get an Unknown
// output and a Return time after every other event in the history.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.operations(false)
}

// operations builds the porcupine history. With dropUnknownGets it leaves out
// gets whose outcome is unknown: they change nothing and constrain nothing, so
// removing them is exact and spares the checker their wide intervals.
// The caller holds h.mu.
func (h *History) operations(dropUnknownGets bool) []porcupine.Operation {
	end := h.endTime()
	ops := make([]porcupine.Operation, 0, len(h.ops))
	for _, r := range h.ops {
		out, ret := r.out, r.ret
		if !r.completed || out.Unknown {
			out, ret = Output{Unknown: true}, end
		}
		if dropUnknownGets && out.Unknown && r.in.Kind == OpGet {
			continue
		}
		ops = append(ops, porcupine.Operation{
			ClientId: r.client,
			Input:    r.in,
			Call:     r.call,
			Output:   out,
			Return:   ret,
		})
	}
	return ops
}

// endTime is a time strictly after every call and every known return. The
// caller holds h.mu.
func (h *History) endTime() int64 {
	var last int64
	for i, r := range h.ops {
		if i == 0 || r.call > last {
			last = r.call
		}
		if r.completed && !r.out.Unknown && r.ret > last {
			last = r.ret
		}
	}
	return last + 1
}

// Check reports whether the history is linearizable against KVModel, giving
// up after timeout (zero means no limit). ok is true only when result is
// porcupine.Ok: a timeout gives porcupine.Unknown and ok false, and callers
// decide what that means to them. info can be passed to WriteVisualization.
func (h *History) Check(timeout time.Duration) (ok bool, result porcupine.CheckResult, info porcupine.LinearizationInfo) {
	h.mu.Lock()
	ops := h.operations(true)
	h.mu.Unlock()
	result, info = porcupine.CheckOperationsVerbose(KVModel, ops, timeout)
	return result == porcupine.Ok, result, info
}

// WriteVisualization writes porcupine's HTML visualisation of info, from
// History.Check, to path.
func WriteVisualization(path string, info porcupine.LinearizationInfo) error {
	if err := porcupine.VisualizePath(KVModel, info, path); err != nil {
		return fmt.Errorf("sim: writing linearizability visualization: %w", err)
	}
	return nil
}

// KVModel is the sequential specification of the key-value store, partitioned
// by key: the state of each partition is whether its key is present and its
// value. Inputs must be Input and outputs Output.
var KVModel = porcupine.Model{
	Partition: partitionKVByKey,
	Init:      func() interface{} { return kvState{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		return kvStep(state.(kvState), input.(Input), output.(Output))
	},
	Equal: func(a, b interface{}) bool { return a.(kvState) == b.(kvState) },
	Hash: func(state interface{}) uint64 {
		s := state.(kvState)
		f := fnv.New64a()
		if s.present {
			_, _ = f.Write([]byte{1})
			_, _ = f.Write([]byte(s.value))
		}
		return f.Sum64()
	},
	DescribeOperation: func(input, output interface{}) string {
		return describeKVOp(input.(Input), output.(Output))
	},
	DescribeState: func(state interface{}) string {
		return describeKVState(state.(kvState))
	},
}

// partitionKVByKey groups ops by key, the partitions in order of each key's
// first op, so that checking is deterministic.
func partitionKVByKey(history []porcupine.Operation) [][]porcupine.Operation {
	index := make(map[string]int)
	var parts [][]porcupine.Operation
	for _, op := range history {
		key := op.Input.(Input).Key
		i, seen := index[key]
		if !seen {
			i = len(parts)
			index[key] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

// kvStep applies in to s. It reports whether out is what the store could have
// answered in state s, and the state after. An Unknown out is always
// allowed, and the state becomes what the op would have made it; that the op
// may not have happened at all is covered by the checker's freedom to
// linearize it after everything else.
func kvStep(s kvState, in Input, out Output) (bool, kvState) {
	switch in.Kind {
	case OpPut:
		return true, kvState{present: true, value: in.Value}
	case OpGet:
		if out.Unknown {
			return true, s
		}
		return out.Found == s.present && (!s.present || out.Value == s.value), s
	case OpCAS:
		return kvConditional(s, in, out, s.present && s.value == in.Expected)
	case OpPutIfAbsent:
		return kvConditional(s, in, out, !s.present)
	default:
		return false, s
	}
}

// kvConditional steps a write that swaps exactly when holds.
func kvConditional(s kvState, in Input, out Output, holds bool) (bool, kvState) {
	if !out.Unknown && out.Swapped != holds {
		return false, s
	}
	if holds {
		return true, kvState{present: true, value: in.Value}
	}
	return true, s
}

// describeKVOp renders an op for the visualisation, such as
// "cas(x, 1→2) → swapped".
func describeKVOp(in Input, out Output) string {
	var call string
	switch in.Kind {
	case OpGet:
		call = fmt.Sprintf("get(%q)", in.Key)
	case OpCAS:
		call = fmt.Sprintf("cas(%q, %q→%q)", in.Key, in.Expected, in.Value)
	default:
		call = fmt.Sprintf("%v(%q, %q)", in.Kind, in.Key, in.Value)
	}
	switch {
	case out.Unknown:
		return call + " → ?"
	case in.Kind == OpGet && out.Found:
		return fmt.Sprintf("%s → %q", call, out.Value)
	case in.Kind == OpGet:
		return call + " → absent"
	case in.Kind == OpCAS || in.Kind == OpPutIfAbsent:
		if out.Swapped {
			return call + " → swapped"
		}
		return call + " → not swapped"
	default:
		return call
	}
}

// describeKVState renders one key's state for the visualisation.
func describeKVState(s kvState) string {
	if !s.present {
		return "absent"
	}
	return fmt.Sprintf("%q", s.value)
}
