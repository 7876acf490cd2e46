package vsr

// Fuzzers for the core (go test -fuzz). Everything here is prefixed fz so that
// it cannot clash with the other test helpers of this package.
//
//   - FuzzDecode (fuzz_decode_test.go): arbitrary bytes are unmarshalled into
//     every message type of package messages; each message that decodes is
//     stepped into replicas in a range of states, among them replicas
//     fetching committed state or a checkpoint. No panic, and
//     CheckInvariants holds.
//   - FuzzStep (fuzz_step_test.go, with the forgers of fuzz_forge_test.go
//     and the checks and seeds of fuzz_check_test.go):
//     the input is a program that drives a cluster of 3 or 5 (or 1)
//     replicas: ticks, client requests (each client registers before its
//     first write, and again after its session expired), delivery, loss,
//     duplication and misdirection of the replicas' own messages, restarts,
//     SuspectDown hints, checkpoints (run at once or late), and forged or
//     corrupted messages with out-of-range and inconsistent fields. By
//     default the history bounds are small (a checkpoint every few ops, a
//     short trailing window, a small pipeline, few sessions, the smallest
//     MaxMessageBytes), so that checkpoint transfer, log trimming, BUSY and
//     session expiry happen. No panic, CheckInvariants holds on every
//     replica after every command, no replica that never saw forged traffic
//     emits a message over MaxMessageBytes, the committed prefixes of those
//     replicas agree, and at the end those with the same commit number hold
//     the same state and client table.
//
// The corpus lives in testdata/fuzz/FuzzDecode and testdata/fuzz/FuzzStep and
// is replayed by plain `go test`. Set VSR_FUZZ_TRACE=1 to log every command
// of FuzzStep when replaying one input with -run 'FuzzStep/<file>' -v. The
// corpus predates bounded history (sessions, suffix-only view changes,
// checkpoints): its inputs still decode and run, some now into messages the
// core drops, and they keep guarding against panics.
//
// Defects the fuzzers found, fixed in the core; their inputs stay in the corpus
// as regressions:
//
//   - Zero request number: an entry (Prepare, StartView, DoViewChange,
//     NewState, RecoveryResponse) or snapshot client-table row with request
//     number 0 was taken and executed, recording a session numbered 0 and
//     breaking CheckInvariants; entries and rows now need a non-zero client ID
//     and request number. FuzzDecode/ac3741b21ebda499 (an entry; a seed of
//     FuzzDecode has such a row in a checkpoint chunk, which validCheckpoint
//     refuses).
//   - View overflow: a replica adopted a forged view 2^64-1 and its election
//     timeout wrapped it to view 0 (the view went backwards); admit now drops
//     any view, op or commit number above 2^62 as DropMalformed.
//     FuzzStep/a608cd5a0bf3a76b.
//   - Short DoViewChange: a new primary adopted a chosen (forged) DoViewChange
//     whose log ended before its own commit number, leaving commit > op;
//     startView now drops such a DoViewChange. FuzzStep/d8721c12a21ae093
//     (which admit now stops earlier, on a commit number of 2^64-1; a seed of
//     FuzzStep reaches startView's check with numbers in range).
//   - NewState op overflow: a NewState with op number 2^64-1 and no entries
//     wrapped its first op to 0 and adoptNewState panicked slicing the log;
//     admit now drops it (op number above 2^62). FuzzStep/b526d35cc518ebae.

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// fzTrace turns on the command log of FuzzStep.
var fzTrace = os.Getenv("VSR_FUZZ_TRACE") != ""

// fzClusterID is the cluster ID of the fuzzed replicas.
const fzClusterID uint64 = 7

var fzAddr = &messages.ClientAddress{Address: "fuzz", Id: "client"}

// fzZeroNonceSeed is the seed whose first SplitMix64 draw is 0, so that a
// replica built with it and no jitter recovers with nonce 0: decoded messages
// that leave the nonce out match it.
const fzZeroNonceSeed uint64 = -0x9e3779b97f4a7c15 & math.MaxUint64

// fzStep steps m into r and fails the test, with the message and the
// replica's state, if the core panics or breaks an invariant.
func fzStep(t testing.TB, what string, r *Replica, m proto.Message) (out Output) {
	t.Helper()
	before := fzState(r)
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("%s: replica %d (%s) panicked on %s: %v\n%s", what, r.index, before, fzShow(m), p, debug.Stack())
			}
		}()
		out = r.Step(m)
	}()
	if err := r.CheckInvariants(); err != nil {
		t.Fatalf("%s: replica %d (%s) broke an invariant on %s: %v\nnow: %s", what, r.index, before, fzShow(m), err, fzState(r))
	}
	return out
}

func fzShow(m proto.Message) string {
	if m == nil {
		return "<nil>"
	}
	if !m.ProtoReflect().IsValid() {
		return fmt.Sprintf("(%T)(nil)", m)
	}
	return fmt.Sprintf("%T{%v}", m, m)
}

func fzState(r *Replica) string {
	return fmt.Sprintf("n=%d %s view=%d lnv=%d base=%d op=%d commit=%d checkpoint=%d syncing=%v primary=%v "+
		"catchUp=%v fetch=%v", r.n, r.status, r.viewNumber, r.lastNormalView, r.logBase, r.opNumber(),
		r.commitNumber, r.CheckpointOpNumber(), r.syncing, r.isPrimary(), r.catchUp.active, r.fetch.active)
}

// fzMessageTypes is every message type of package messages, in the order of
// the .proto file.
func fzMessageTypes() []protoreflect.MessageType {
	var types []protoreflect.MessageType
	mds := messages.File_vsr_proto.Messages()
	for k := 0; k < mds.Len(); k++ {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(mds.Get(k).FullName())
		if err != nil {
			panic(err)
		}
		types = append(types, mt)
	}
	return types
}

// fzReplica is replica i of n with short, jitter-free timing.
func fzReplica(t testing.TB, cluster uint64, n, i int, seed uint64, recovering bool, opts ...func(*Config)) *Replica {
	cfg := Config{ClusterID: cluster, ReplicaCount: n, ReplicaIndex: i, StateMachine: kv.NewStore(),
		Seed: seed, Recovering: recovering, HeartbeatTicks: 2, InactivityTicks: 10, ViewChangeTicks: 10,
		JitterTicks: -1, MaxBatch: 4}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.primaryHeardAt = -cfg.InactivityTicks // as if the primary had gone quiet (uForgetPrimary)
	return r
}

// fzClient is the client of the histories fzEntry makes.
const fzClient = 100

// fzEntry is op number op of view v of a history in which op 1 registers
// client fzClient and every later op is its request number op, putting
// "k<op>" = "v<op>": a history every replica executes in full.
func fzEntry(op, view uint64) *messages.Entry {
	if op == 1 {
		return &messages.Entry{OpNumber: 1, View: view, ClientId: fzClient, RequestNumber: 1, ReplyTo: fzAddr,
			Register: true}
	}
	return &messages.Entry{OpNumber: op, View: view, ClientId: fzClient, RequestNumber: op, Session: 1, // opened at op 1
		Operation: kv.PutOp(fmt.Sprintf("k%d", op), []byte(fmt.Sprintf("v%d", op))), ReplyTo: fzAddr}
}

func fzLog(first, last, view uint64) []*messages.Entry {
	var log []*messages.Entry
	for op := first; op <= last; op++ {
		log = append(log, fzEntry(op, view))
	}
	return log
}

// fzClientRequest is the request that fzEntry(op, ·) was made from.
func fzClientRequest(cluster, op uint64) *messages.Request {
	e := fzEntry(op, 0)
	return &messages.Request{ClusterId: cluster, ClientId: e.ClientId, RequestNumber: e.RequestNumber,
		Operation: e.Operation, ReplyTo: e.ReplyTo, Register: e.Register, Session: e.Session}
}

func fzMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}
