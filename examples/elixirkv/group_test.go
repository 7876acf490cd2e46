package elixirkv_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/examples/elixirkv"
	"github.com/vsrgo/vsr/examples/internal/grouptest"
	"github.com/vsrgo/vsr/vsr"
)

// The group test runs the store in a real group of three replicas on a real
// actor system. It never sleeps and never asserts on how long something took:
// it polls for the state it expects with generous deadlines, because the
// machine may be small and shared. Its outcome does not depend on timing: one
// client issues every op in turn, so each op's result is fixed by the ops
// before it.

// call runs op with one of the client's calls and decodes the result.
func call(t *testing.T, do func(context.Context, []byte) ([]byte, error), op []byte) elixirkv.Result {
	t.Helper()
	return grouptest.Call(t, do, op, elixirkv.DecodeResult)
}

// TestGroupSurvivesPrimaryFailure writes through the primary, kills it, and
// checks that the new primary serves every acknowledged write; then brings
// the old primary back, which catches up by installing a checkpoint
// (Restore), and checks that all three replicas hold byte-identical state.
func TestGroupSurvivesPrimaryFailure(t *testing.T) {
	g := grouptest.StartGroup(t, 0xe1, elixirkv.New)
	c, err := g.NewClient(1)
	require.NoError(t, err)
	t.Cleanup(c.Close)

	// Enough writes to pass two checkpoints, and the ops of the Elixir
	// tests: write, cas, delete.
	for i := range 2 * grouptest.CheckpointInterval {
		require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.WriteOp(fmt.Sprintf("k%02d", i), []byte("v1"))).Status)
	}
	require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.CASOp("k00", []byte("v1"), []byte("v2"))).Status)
	require.Equal(t, elixirkv.StatusCASFailed, call(t, c.Execute, elixirkv.CASOp("k00", []byte("v1"), []byte("v3"))).Status)
	require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.DeleteOp("k01")).Status)
	// A malformed op is committed like any other and answered with an
	// error result on every replica; it changes nothing.
	require.Equal(t, elixirkv.StatusMalformed, call(t, c.Execute, []byte{0xff}).Status)
	// Sent as a read it is refused before it reaches the state machine,
	// because ReadOnly says no.
	{
		ctx, cancel := context.WithTimeout(context.Background(), grouptest.OpTimeout)
		_, err := c.Read(ctx, []byte{0xff})
		cancel()
		require.ErrorIs(t, err, actors.ErrRejected)
		require.ErrorIs(t, err, vsr.ErrNotReadOnly)
	}

	// Kill the primary: Group.Kill on Group.Primary.
	old := grouptest.WaitPrimary(t, g, -1)
	require.NoError(t, g.Kill(old))
	grouptest.WaitPrimary(t, g, old)

	// Every acknowledged write survived the failover, and the new primary
	// goes on taking writes. A linearizable read sees all of them.
	require.Equal(t, elixirkv.Result{Status: elixirkv.StatusOK, Found: true, Value: []byte("v2")},
		call(t, c.Read, elixirkv.ReadOp("k00")))
	require.False(t, call(t, c.Read, elixirkv.ReadOp("k01")).Found)
	for i := 2; i < 2*grouptest.CheckpointInterval; i++ {
		require.Equal(t, elixirkv.Result{Status: elixirkv.StatusOK, Found: true, Value: []byte("v1")},
			call(t, c.Read, elixirkv.ReadOp(fmt.Sprintf("k%02d", i))), "key k%02d", i)
	}
	for i := range grouptest.CheckpointInterval {
		require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.WriteOp(fmt.Sprintf("after%02d", i), []byte("v"))).Status)
	}

	// Wait until the two survivors have trimmed their logs below a
	// checkpoint, so that the old primary, which restarts empty (the group
	// keeps no disk) and runs VR recovery, can only catch up by installing a
	// checkpoint with Restore.
	grouptest.WaitTrimmed(t, g, old)
	require.NoError(t, g.Restart(old))

	// One more write that all three execute, then the three must agree byte
	// for byte: the digest covers the snapshot of each replica's store.
	require.Equal(t, elixirkv.StatusOK, call(t, c.Execute, elixirkv.WriteOp("last", []byte("v"))).Status)
	sts := grouptest.WaitConverged(t, g)
	require.Positive(t, sts[old].CheckpointsInstalled, "the restarted replica did not catch up through a checkpoint")

	// Now that every replica holds everything, a stale read from any of
	// them gives the same answer as the linearizable one.
	require.Equal(t, []byte("v2"), call(t, c.ReadStale, elixirkv.ReadOp("k00")).Value)
}
