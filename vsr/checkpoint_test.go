package vsr

// Checkpoints: taken at every multiple of CheckpointInterval, of committed
// state only, encoded by the caller, and the base of a log window that keeps
// TrailingOps entries below them.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// everyFour takes a checkpoint every 4 ops and keeps 2 ops below it.
func everyFour(c *Config) { c.CheckpointInterval, c.TrailingOps = 4, 2 }

func TestCheckpoint_TakenAtEachMultipleOfTheIntervalAndTrimsTheLogAfterItIsEncoded(t *testing.T) {
	nw := newNetwork(t, 3, everyFour)
	nw.holdCheckpoints = true
	nw.register(0, 1)

	for _, at := range []uint64{4, 8, 12} {
		nw.writeOps(at + 1)
		require.Len(t, nw.jobs, 3, "one checkpoint per replica at op %d", at)
		for _, j := range nw.jobs {
			assert.Equal(t, at, j.job.OpNumber, "replica %d", j.replica)
			assert.LessOrEqual(t, j.job.OpNumber, j.r.CommitNumber(), "replica %d: a checkpoint names a committed op", j.replica)
			require.NotNil(t, nw.committed[at], "op %d is committed", at)
			assert.Equal(t, at-4, j.r.CheckpointOpNumber(), "replica %d: the previous checkpoint until this one is encoded", j.replica)
			base := j.r.LogBase()
			assert.Equal(t, max(at-4, 2)-2, base, "replica %d: the log is not trimmed before the checkpoint is encoded", j.replica)
		}
		nw.runCheckpoints()
		for i, r := range nw.replicas {
			assert.Equal(t, at, r.CheckpointOpNumber(), "replica %d", i)
			assert.Equal(t, at-2, r.LogBase(), "replica %d: the log starts TrailingOps below the checkpoint", i)
			assert.Nil(t, r.Entry(at-2), "replica %d: op %d is gone", i, at-2)
			e := r.Entry(at - 1)
			require.NotNil(t, e, "replica %d keeps op %d", i, at-1)
			assert.Equal(t, at-1, e.OpNumber, "op numbers stay absolute")
			assert.Equal(t, at+1, r.OpNumber())
			assert.True(t, proto.Equal(nw.committed[at+1], r.Entry(at+1)))
		}
	}
}

func TestCheckpoint_HoldsTheCommittedStateAndClientTableAtItsOp(t *testing.T) {
	nw := newNetwork(t, 3, everyFour)
	nw.holdCheckpoints = true
	nw.register(0, 1)
	nw.writeOps(6) // the job at op 4 waits while ops 5 and 6 execute
	require.NotEmpty(t, nw.jobs)
	res := nw.jobs[0].job.Run()
	require.NoError(t, res.Err)
	assert.Equal(t, uint64(4), res.OpNumber)
	sum := sha256.Sum256(res.Encoded())
	assert.Equal(t, sum[:], res.Digest)

	var cp messages.Checkpoint
	require.NoError(t, proto.Unmarshal(res.Encoded(), &cp))
	assert.Equal(t, uint64(4), cp.OpNumber)
	want := kv.NewStore()
	for op := uint64(1); op <= 4; op++ {
		if e := nw.committed[op]; !e.Register {
			want.Apply(e.Operation)
		}
	}
	wantState, err := want.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, wantState, cp.State, "the state after op 4, not after op 6")
	require.Len(t, cp.ClientTable, 1)
	row := cp.ClientTable[0]
	assert.Equal(t, uint64(1), row.ClientId)
	assert.Equal(t, nw.committed[4].RequestNumber, row.RequestNumber, "the client's request executed at op 4")
	assert.Equal(t, uint64(4), row.LastOp)
	for _, j := range nw.jobs[1:] {
		other := j.job.Run()
		assert.Equal(t, res.Encoded(), other.Encoded(), "replica %d encodes the same checkpoint", j.replica)
	}
}

// plainSM is a state machine that is not a statemachine.Checkpointer (only
// the interface's methods are promoted), whose Snapshot counts its calls and
// fails while fail is set.
type plainSM struct {
	statemachine.StateMachine
	snapshots int
	fail      bool
}

func (s *plainSM) Snapshot() ([]byte, error) {
	s.snapshots++
	if s.fail {
		return nil, errors.New("test: snapshot refused")
	}
	return s.StateMachine.Snapshot()
}

// lonePrimary is a single replica (n = 1, so it commits alone) with sm,
// checkpointing every 2 ops, with client 1 registered (op 1).
func lonePrimary(t *testing.T, sm statemachine.StateMachine, opts ...func(*Config)) *Replica {
	t.Helper()
	r, _ := uBareReplica(t, 1, 0, append([]func(*Config){func(c *Config) {
		c.StateMachine, c.CheckpointInterval, c.TrailingOps = sm, 2, -1
	}}, opts...)...)
	out := uStep(t, r, uRegistration(1, 1))
	require.Len(t, out.Replies, 1)
	require.Nil(t, out.Checkpoint)
	return r
}

func lonePut(t *testing.T, r *Replica, number uint64) Output {
	t.Helper()
	out := uStep(t, r, &messages.Request{ClusterId: uCluster, ClientId: 1, RequestNumber: number,
		Operation: kv.PutOp("a", []byte(fmt.Sprint(number))), ReplyTo: uAddr, Session: 1}) // registered at op 1
	require.Len(t, out.Committed, 1)
	return out
}

func TestCheckpoint_FailedEncodingKeepsTheLogWholeAndTheNextIntervalTriesAgain(t *testing.T) {
	sm := &plainSM{StateMachine: kv.NewStore(), fail: true}
	r := lonePrimary(t, sm)
	out := lonePut(t, r, 2)
	require.NotNil(t, out.Checkpoint, "op 2 is a multiple of the interval")
	res := out.Checkpoint.Run()
	require.Error(t, res.Err)
	uCheckpointDone(t, r, res)
	failed, _ := r.CheckpointStats()
	assert.Equal(t, uint64(1), failed)
	assert.Equal(t, uint64(0), r.CheckpointOpNumber())
	assert.Equal(t, uint64(0), r.LogBase(), "no checkpoint, no trimming")
	assert.NotNil(t, r.Entry(1))

	assert.Nil(t, lonePut(t, r, 3).Checkpoint, "op 3 is not a multiple of the interval")
	sm.fail = false
	out = lonePut(t, r, 4)
	require.NotNil(t, out.Checkpoint, "the next interval tries again")
	uCheckpointDone(t, r, out.Checkpoint.Run())
	assert.Equal(t, uint64(4), r.CheckpointOpNumber())
	assert.Equal(t, uint64(4), r.LogBase(), "TrailingOps < 0 keeps nothing below the checkpoint")
	assert.Equal(t, uint64(4), r.OpNumber())
}

func TestCheckpoint_ResultNotWaitedForIsIgnored(t *testing.T) {
	r := lonePrimary(t, kv.NewStore())
	out := lonePut(t, r, 2)
	require.NotNil(t, out.Checkpoint)
	res := out.Checkpoint.Run()

	stale := res
	stale.OpNumber = 6
	uCheckpointDone(t, r, stale)
	uCheckpointDone(t, r, CheckpointResult{})
	assert.Equal(t, uint64(0), r.CheckpointOpNumber(), "a result for another op is not this checkpoint")

	uCheckpointDone(t, r, res)
	assert.Equal(t, uint64(2), r.CheckpointOpNumber())
	uCheckpointDone(t, r, res)
	assert.Equal(t, uint64(2), r.CheckpointOpNumber(), "a second copy changes nothing")
}

func TestCheckpoint_NoSecondCaptureWhileOneIsBeingEncoded(t *testing.T) {
	r := lonePrimary(t, kv.NewStore())
	first := lonePut(t, r, 2).Checkpoint
	require.NotNil(t, first)
	lonePut(t, r, 3)
	assert.Nil(t, lonePut(t, r, 4).Checkpoint, "the checkpoint at op 2 is still being encoded")
	uCheckpointDone(t, r, first.Run())
	assert.Equal(t, uint64(2), r.LogBase(), "trimmed below op 2 only")
	lonePut(t, r, 5)
	next := lonePut(t, r, 6).Checkpoint
	require.NotNil(t, next)
	assert.Equal(t, uint64(6), next.OpNumber)
}

// capturingSM is a statemachine.Checkpointer that counts captures, encodings
// and snapshots.
type capturingSM struct {
	plainSM
	captures, encodings int
}

func (s *capturingSM) Checkpoint() func() ([]byte, error) {
	s.captures++
	state, err := s.StateMachine.Snapshot() // a copy, as a real capture would keep
	return func() ([]byte, error) {
		s.encodings++
		return state, err
	}
}

func TestCheckpoint_CapturedWithCheckpointerAndEncodedOnlyWhenTheJobRuns(t *testing.T) {
	sm := &capturingSM{plainSM: plainSM{StateMachine: kv.NewStore()}}
	r := lonePrimary(t, sm)
	out := lonePut(t, r, 2)
	require.NotNil(t, out.Checkpoint)
	assert.Equal(t, 1, sm.captures)
	assert.Equal(t, 0, sm.encodings, "the replica does not encode the state itself")
	assert.Equal(t, 0, sm.snapshots, "nor does it snapshot a Checkpointer")
	uCheckpointDone(t, r, out.Checkpoint.Run())
	assert.Equal(t, 1, sm.encodings)

	plain := &plainSM{StateMachine: kv.NewStore()}
	r = lonePrimary(t, plain)
	require.NotNil(t, lonePut(t, r, 2).Checkpoint)
	assert.Equal(t, 1, plain.snapshots, "without Checkpointer the state is snapshotted at the capture")
}

// uRegistration is client's registration, request number.
func uRegistration(client, number uint64) *messages.Request {
	return &messages.Request{ClusterId: uCluster, ClientId: client, RequestNumber: number, ReplyTo: uAddr,
		Register: true}
}

// uCheckpointDone hands res to r and checks its invariants.
func uCheckpointDone(t *testing.T, r *Replica, res CheckpointResult) Output {
	t.Helper()
	out := r.CheckpointDone(res)
	require.NoError(t, r.CheckInvariants())
	return out
}

// A job its caller never finishes (dropped, or an encoding that hangs) is
// given up two intervals later and another is captured, so the log is
// trimmed whatever becomes of one job; the late result of the first is then
// ignored.
func TestCheckpoint_JobNeverFinishedIsGivenUpAfterTwoIntervals(t *testing.T) {
	r := lonePrimary(t, kv.NewStore())
	dropped := lonePut(t, r, 2).Checkpoint
	require.NotNil(t, dropped)
	for number := uint64(3); number <= 5; number++ {
		assert.Nil(t, lonePut(t, r, number).Checkpoint, "op %d: the job for op 2 is still out", number)
	}
	next := lonePut(t, r, 6).Checkpoint
	require.NotNil(t, next, "two intervals after op 2 another checkpoint is captured")
	assert.Equal(t, uint64(6), next.OpNumber)
	uCheckpointDone(t, r, dropped.Run())
	assert.Equal(t, uint64(0), r.CheckpointOpNumber(), "the given-up job's result is ignored")
	uCheckpointDone(t, r, next.Run())
	assert.Equal(t, uint64(6), r.CheckpointOpNumber())
	assert.Equal(t, uint64(6), r.LogBase())
}

// panickySM panics while encoding a checkpoint, as a buggy state machine
// might.
type panickySM struct{ statemachine.StateMachine }

func (panickySM) Snapshot() ([]byte, error) { panic("test: encoding exploded") }

// A state machine that panics while a checkpoint is encoded fails the job
// with an error; the goroutine running it does not die, and the log stays
// whole.
func TestCheckpoint_PanicWhileEncodingIsAFailedJob(t *testing.T) {
	sm := &panickySM{StateMachine: kv.New()}
	job := &CheckpointJob{OpNumber: 2, encodeState: func() ([]byte, error) { return sm.Snapshot() }}
	var res CheckpointResult
	require.NotPanics(t, func() { res = job.Run() })
	assert.ErrorIs(t, res.Err, ErrCheckpoint)
	assert.Contains(t, res.Err.Error(), "encoding exploded")
}
