package vsr

// FuzzDecode: arbitrary bytes, decoded as every message type, stepped into
// replicas in states of interest (see fuzz_test.go).

import (
	"crypto/sha256"
	"hash/crc32"
	"runtime/debug"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// fzFixture is a replica in some state of interest, built from scratch.
type fzFixture struct {
	name  string
	build func(t *testing.T) *Replica
}

// fzCheckpointed is the configuration of fixtures with checkpoints: one every
// 4 ops, one op kept below it.
func fzCheckpointed(c *Config) { c.CheckpointInterval, c.TrailingOps = 4, 1 }

// fzFinishCheckpoint runs the checkpoint job of out, if any, and hands the
// result to r.
func fzFinishCheckpoint(t testing.TB, r *Replica, out Output) {
	if out.Checkpoint != nil {
		r.CheckpointDone(out.Checkpoint.Run())
		if err := r.CheckInvariants(); err != nil {
			t.Fatalf("fixture: after CheckpointDone: %v", err)
		}
	}
}

// fzCheckpointedPrimary is primary 0 of view 0 (n = 3, cluster 0) that has
// committed ops 1..6 of the fzEntry history and holds its checkpoint at op 4,
// its log trimmed to ops 4..6.
func fzCheckpointedPrimary(t testing.TB) *Replica {
	r := fzReplica(t, 0, 3, 0, 9, false, fzCheckpointed)
	for op := uint64(1); op <= 6; op++ {
		fzStep(t, "fixture", r, fzClientRequest(0, op))
	}
	fzFinishCheckpoint(t, r, fzStep(t, "fixture", r, &messages.PrepareOK{View: 0, OpNumber: 6, Replica: 1}))
	return r
}

// fzFixtures are the states FuzzDecode steps every decoded message into. They
// use cluster ID 0, so that a decoded message with no cluster ID belongs to
// them, except one which uses fzClusterID.
var fzFixtures = []fzFixture{
	{"primary of view 0 with 2 committed, 2 uncommitted ops and a read in flight", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 0, 1, false)
		for op := uint64(1); op <= 4; op++ {
			fzStep(t, "fixture", r, fzClientRequest(0, op))
		}
		fzStep(t, "fixture", r, &messages.PrepareOK{View: 0, OpNumber: 2, Replica: 1})
		fzStep(t, "fixture", r, &messages.Request{ClientId: 99, RequestNumber: 1, Operation: kv.GetOp("k1"),
			ReplyTo: fzAddr, ReadMode: messages.ReadMode_READ_MODE_LINEARIZABLE})
		return r
	}},
	{"backup of view 0 with ops 1..4, commit 2", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 1, 2, false)
		fzStep(t, "fixture", r, &messages.Prepare{View: 0, Replica: 0, CommitNumber: 2, Entries: fzLog(1, 4, 0)})
		return r
	}},
	{"backup of view 0 in cluster 7 with ops 1..2, commit 1", func(t *testing.T) *Replica {
		r := fzReplica(t, fzClusterID, 3, 2, 3, false)
		fzStep(t, "fixture", r, &messages.Prepare{ClusterId: fzClusterID, View: 0, Replica: 0, CommitNumber: 1,
			Entries: fzLog(1, 2, 0)})
		return r
	}},
	{"replica 2 changing to view 1 after a timeout, ops 1..3, commit 1", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 2, 4, false)
		fzStep(t, "fixture", r, &messages.Prepare{View: 0, Replica: 0, CommitNumber: 1, Entries: fzLog(1, 3, 0)})
		for k := 0; r.probe.view == 0; k++ {
			if k > 10*DefaultInactivityTicks {
				t.Fatal("fixture: a backup without a primary never probed for a view change")
			}
			r.Tick()
		}
		fzStep(t, "fixture", r, &messages.ViewChangeProbeOK{View: 1, Replica: 1})
		return r
	}},
	{"replica 1 syncing in view 2, ops 1..3, commit 1", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 1, 5, false)
		fzStep(t, "fixture", r, &messages.Prepare{View: 0, Replica: 0, CommitNumber: 1, Entries: fzLog(1, 3, 0)})
		fzStep(t, "fixture", r, &messages.Commit{View: 2, CommitNumber: 3, Replica: 2})
		return r
	}},
	{"replica 1 recovering with nonce 0, one response from a backup in", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 1, fzZeroNonceSeed, true)
		if r.recovery.nonce != 0 {
			t.Fatalf("fixture nonce %d, want 0", r.recovery.nonce)
		}
		r.Tick()
		fzStep(t, "fixture", r, &messages.RecoveryResponse{View: 0, Replica: 2})
		return r
	}},
	{"replica 0 primary of view 3 in view change, own DoViewChange in, ops 1..4, commit 2", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 0, 6, false)
		fzStep(t, "fixture", r, &messages.StartView{View: 1, Replica: 1, Entries: fzLog(1, 4, 0), OpNumber: 4, CommitNumber: 2})
		fzStep(t, "fixture", r, &messages.StartViewChange{View: 3, Replica: 1})
		return r
	}},
	{"n=5: replica 1 new primary of view 1, ops 1..3, commit 1", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 5, 1, 7, false)
		fzStep(t, "fixture", r, &messages.DoViewChange{View: 1, Replica: 2, Entries: fzLog(1, 3, 0), OpNumber: 3})
		for _, j := range []uint32{3, 4} {
			fzStep(t, "fixture", r, &messages.DoViewChange{View: 1, Replica: j, Entries: fzLog(2, 3, 0),
				OpNumber: 3, CommitNumber: 1})
		}
		return r
	}},
	{"n=1: a lone primary with two ops", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 1, 0, 8, false)
		fzStep(t, "fixture", r, fzClientRequest(0, 1))
		fzStep(t, "fixture", r, fzClientRequest(0, 2))
		return r
	}},
	{"replica 1 new primary of view 1 fetching committed ops 1..2 from replica 0", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 1, 10, false)
		fzStep(t, "fixture", r, &messages.DoViewChange{View: 1, Replica: 2, Entries: fzLog(2, 3, 0), OpNumber: 3,
			CommitNumber: 1})
		fzStep(t, "fixture", r, &messages.DoViewChange{View: 1, Replica: 0, Entries: fzLog(3, 3, 0), OpNumber: 3,
			CommitNumber: 2})
		return r
	}},
	{"replica 1 recovering, fetching committed ops 1..2 from primary 0", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 1, fzZeroNonceSeed, true)
		r.Tick()
		fzStep(t, "fixture", r, &messages.RecoveryResponse{View: 0, Replica: 2})
		fzStep(t, "fixture", r, &messages.RecoveryResponse{View: 0, Replica: 0, FromPrimary: true,
			Entries: fzLog(3, 3, 0), OpNumber: 3, CommitNumber: 2})
		return r
	}},
	{"backup 1 with ops 1..2, commit 1, fetching the checkpoint of primary 0", func(t *testing.T) *Replica {
		r := fzReplica(t, 0, 3, 1, 11, false, fzCheckpointed)
		fzStep(t, "fixture", r, &messages.Prepare{View: 0, Replica: 0, CommitNumber: 1, Entries: fzLog(1, 2, 0)})
		fzStep(t, "fixture", r, &messages.NewState{View: 0, Replica: 0, OpNumber: 6, CommitNumber: 6,
			CheckpointOpNumber: 4})
		return r
	}},
	{"primary 0 with ops 1..6 committed, a checkpoint at op 4, log trimmed to ops 4..6", func(t *testing.T) *Replica {
		return fzCheckpointedPrimary(t)
	}},
}

// fzChunk is a checkpoint of cp's encoding in one chunk, from replica.
func fzChunk(cp *messages.Checkpoint, replica uint32) *messages.CheckpointChunk {
	encoded := fzMarshal(cp)
	sum := sha256.Sum256(encoded)
	return &messages.CheckpointChunk{Replica: replica, OpNumber: cp.OpNumber, Digest: sum[:],
		Size: uint64(len(encoded)), Chunk: 0, Chunks: 1, Data: encoded,
		Crc32C: crc32.Checksum(encoded, crc32.MakeTable(crc32.Castagnoli))}
}

func FuzzDecode(f *testing.F) {
	// The checkpoint that the last fixture serves, whole (one chunk), and
	// with a client-table row without a request number (a defect found by
	// FuzzDecode in recovery snapshots: the core now refuses such a
	// checkpoint).
	served := fzCheckpointedPrimary(f)
	goodChunk := served.chunkMessage(served.checkpoint, 0)
	var zeroRow messages.Checkpoint
	if err := proto.Unmarshal(served.checkpoint.slice(0, served.checkpoint.size()), &zeroRow); err != nil {
		f.Fatal(err)
	}
	zeroRow.ClientTable[0].RequestNumber = 0
	seeds := []proto.Message{
		&messages.Request{ClientId: 1, RequestNumber: 1, Operation: kv.PutOp("a", []byte("b")), ReplyTo: fzAddr},
		&messages.Request{ClientId: 1, RequestNumber: 2, Operation: kv.GetOp("a"), ReadMode: messages.ReadMode_READ_MODE_STALE},
		&messages.Request{ClientId: 5, RequestNumber: 1, ReplyTo: fzAddr, Register: true},
		&messages.Prepare{View: 0, Replica: 0, CommitNumber: 4, Entries: fzLog(5, 6, 0)},
		&messages.Prepare{View: 1, Replica: 1, CommitNumber: 2, Entries: fzLog(1, 5, 1)},
		&messages.Prepare{ClusterId: fzClusterID, View: 0, Replica: 0, CommitNumber: 3, Entries: fzLog(3, 3, 0)},
		&messages.PrepareOK{View: 0, OpNumber: 4, Replica: 2},
		&messages.PrepareOK{View: 1, OpNumber: 3, Replica: 3},
		&messages.Commit{View: 0, CommitNumber: 4, Replica: 0},
		&messages.Commit{View: 2, CommitNumber: 1, Replica: 2},
		&messages.StartViewChange{View: 1, Replica: 0},
		&messages.StartViewChange{View: 3, Replica: 2},
		&messages.DoViewChange{View: 3, Replica: 2, LastNormalView: 1, Entries: fzLog(2, 2, 0), OpNumber: 2, CommitNumber: 1},
		&messages.DoViewChange{View: 1, Replica: 0, LastNormalView: 0, OpNumber: 3, CommitNumber: 3},
		&messages.DoViewChange{View: 1, Replica: 2, LastNormalView: 0, Entries: fzLog(3, 4, 0), OpNumber: 4, CommitNumber: 2},
		&messages.StartView{View: 1, Replica: 1, Entries: fzLog(1, 3, 0), OpNumber: 3, CommitNumber: 3},
		&messages.StartView{View: 2, Replica: 2, Entries: fzLog(3, 5, 0), OpNumber: 5, CommitNumber: 2},
		&messages.Recovery{Replica: 1, Nonce: 42},
		&messages.RecoveryResponse{View: 0, Replica: 0, FromPrimary: true, Entries: fzLog(2, 2, 0), OpNumber: 2, CommitNumber: 1},
		&messages.GetState{View: 0, OpNumber: 1, Replica: 2},
		&messages.GetState{View: 1, OpNumber: 0, Replica: 1, CommittedOnly: true},
		&messages.NewState{View: 2, Replica: 2, Entries: fzLog(2, 4, 0), OpNumber: 4, CommitNumber: 3},
		&messages.NewState{View: 1, Replica: 1, Entries: fzLog(4, 5, 0), OpNumber: 5, CommitNumber: 5},
		&messages.NewState{View: 0, Replica: 0, Entries: fzLog(1, 2, 0), OpNumber: 3, CommitNumber: 2, CommittedOnly: true},
		&messages.NewState{View: 0, Replica: 0, OpNumber: 6, CommitNumber: 6, CheckpointOpNumber: 4},
		&messages.NewState{View: 0, Replica: 2, OpNumber: 6, CommitNumber: 6, CheckpointOpNumber: 4, CommittedOnly: true},
		&messages.GetCheckpoint{Replica: 1, OpNumber: 4, Digest: goodChunk.Digest},
		&messages.GetCheckpoint{Replica: 2, Chunk: 7},
		goodChunk,
		fzChunk(&zeroRow, 0),
		&messages.ConfirmView{View: 0, Round: 1, Replica: 0},
		&messages.ConfirmViewOK{View: 0, Round: 1, Replica: 1},
		&messages.ConfirmViewOK{View: 1, Round: 1, Replica: 2},
	}
	for _, m := range seeds {
		f.Add(fzMarshal(m))
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})

	types := fzMessageTypes()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mt := range types {
			m := mt.New().Interface()
			if err := proto.Unmarshal(data, m); err != nil {
				continue
			}
			if _, err := proto.Marshal(m); err != nil {
				t.Fatalf("%T decoded but does not encode again: %v", m, err)
			}
			if reply, ok := m.(*messages.Reply); ok {
				fzClientStep(t, reply)
			}
			for _, fx := range fzFixtures {
				r := fx.build(t)
				fzStep(t, fx.name, r, m)
				// A second copy, as a duplicate would arrive, and a tick.
				fzStep(t, fx.name+" (duplicate)", r, proto.Clone(m))
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("%s: Tick panicked after %s: %v\n%s", fx.name, fzShow(m), p, debug.Stack())
						}
					}()
					r.Tick()
				}()
				if err := r.CheckInvariants(); err != nil {
					t.Fatalf("%s: invariant broken by a Tick after %s: %v", fx.name, fzShow(m), err)
				}
			}
		}
	})
}

// fzClientStep hands a decoded reply to client cores waiting for the reply to
// their request: one waiting for a read, one waiting for the registration it
// sent before a write. Each must stay sane, and a request it completes is the
// caller's.
func fzClientStep(t *testing.T, reply *messages.Reply) {
	id := max(reply.ClientId, 1)
	for _, mode := range []messages.ReadMode{messages.ReadMode_READ_MODE_LINEARIZABLE, messages.ReadMode_READ_MODE_LOG} {
		first := max(reply.RequestNumber, 1)
		if mode == messages.ReadMode_READ_MODE_LOG {
			first = max(reply.RequestNumber, 2) - 1 // the registration takes the number after
		}
		c, err := NewClient(ClientConfig{ClusterID: fzClusterID, ClientID: id, ReplicaCount: 3, ReplyTo: fzAddr,
			FirstRequestNumber: first})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Submit(kv.GetOp("k"), mode); err != nil {
			t.Fatal(err)
		}
		out := c.Step(reply)
		if p := c.Primary(); p < 0 || p >= 3 {
			t.Fatalf("client believes replica %d is primary after %s", p, fzShow(reply))
		}
		if out.Done != nil && out.Done.RequestNumber != first {
			t.Fatalf("%v client completed request %d, not its caller's %d, with %s", mode, out.Done.RequestNumber,
				first, fzShow(reply))
		}
		for _, env := range append(out.Messages, c.Tick().Messages...) {
			if env.To < 0 || env.To >= 3 {
				t.Fatalf("client sent to replica %d", env.To)
			}
		}
	}
}

// TestFuzzFixtures checks that the fixtures of FuzzDecode are in the states
// their names promise, so that the fuzzer keeps exploring them.
func TestFuzzFixtures(t *testing.T) {
	want := []struct {
		status       Status
		view, op, k  uint64
		syncing, prm bool
	}{
		{StatusNormal, 0, 4, 2, false, true},
		{StatusNormal, 0, 4, 2, false, false},
		{StatusNormal, 0, 2, 1, false, false},
		{StatusViewChange, 1, 3, 1, false, false},
		{StatusViewChange, 2, 3, 1, true, false},
		{StatusRecovering, 0, 0, 0, false, false},
		{StatusViewChange, 3, 4, 2, false, false},
		{StatusNormal, 1, 3, 1, false, true},
		{StatusNormal, 0, 2, 2, false, true},
		{StatusViewChange, 1, 0, 0, false, false},
		{StatusRecovering, 0, 0, 0, false, false},
		{StatusNormal, 0, 2, 1, false, false},
		{StatusNormal, 0, 6, 6, false, true},
	}
	if len(want) != len(fzFixtures) {
		t.Fatalf("%d fixtures, %d expectations", len(fzFixtures), len(want))
	}
	built := make([]*Replica, len(fzFixtures))
	for k, fx := range fzFixtures {
		r := fx.build(t)
		built[k] = r
		w := want[k]
		got := fzState(r)
		if r.status != w.status || r.viewNumber != w.view || r.opNumber() != w.op || r.commitNumber != w.k ||
			r.syncing != w.syncing || r.IsPrimary() != w.prm {
			t.Errorf("fixture %q: %s", fx.name, got)
		}
	}
	if rs := built[0].primary.reads; rs.round <= rs.confirmed {
		t.Errorf("fixture 0 has no read round in flight")
	}
	if len(built[6].viewChange.doViewChanges) != 1 {
		t.Errorf("fixture 6 holds %d DoViewChanges, want its own", len(built[6].viewChange.doViewChanges))
	}
	if r := built[9]; !r.catchUp.active || r.catchUp.source != 0 || r.catchUp.target != 2 {
		t.Errorf("fixture 9 is not fetching ops up to 2 from 0: %+v", r.catchUp)
	}
	if r := built[10]; r.recovery.chosen == nil || !r.catchUp.active || r.catchUp.target != 2 {
		t.Errorf("fixture 10 is not fetching committed ops: %s", fzState(r))
	}
	if r := built[11]; !r.fetch.active || r.fetch.source != 0 {
		t.Errorf("fixture 11 is not fetching a checkpoint from 0: %s", fzState(r))
	}
	if r := built[12]; r.LogBase() != 3 || r.CheckpointOpNumber() != 4 || r.Entry(3) != nil || r.Entry(4) == nil {
		t.Errorf("fixture 12 is not trimmed to ops 4..6 below a checkpoint at 4: %s", fzState(r))
	}
}
