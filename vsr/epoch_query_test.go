package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
)

// A replica started to join, cut off for the whole of its change, and
// removed by the next change before it heard of either, learns from the
// members it asks (EpochQuery) that its epoch has ended without it, and
// leaves. Before, nothing ever told it: it waited for ever.
func TestReconfiguration_JoinerThatNeverHeardOfItsEpochLeavesOnceRemoved(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	g.join("e", "a", "b", "e")
	g.register()
	g.down["d"] = true // cut off for the whole of its change and the next
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(2, "x", "1").Error)
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(3, "a", "b", "d").Error)
	g.run(3 * DefaultHeartbeatTicks)
	require.Equal(t, uint64(1), g.r("a").Epoch(), "a and b run epoch 1 without d")
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(4, "a", "b", "e").Error)
	g.run(3 * DefaultHeartbeatTicks)
	g.requireEpoch(2, "a", "b", "e")
	require.Equal(t, StatusJoining, g.r("d").Status(), "d heard of nothing")

	g.down["d"] = false
	g.run(3 * DefaultHeartbeatTicks)
	assert.Equal(t, StatusLeaving, g.r("d").Status())
	assert.True(t, g.r("d").Left(), "d learned that its epoch ended without it")
	require.NoError(t, g.r("d").CheckInvariants())
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(5, "x", "2").Error)
	g.run(DefaultHeartbeatTicks)
	g.requireEpoch(2, "a", "b", "e")
}

// A joiner whose change has not come yet keeps waiting, even while the
// group changes in other ways: its configuration was never an epoch, so no
// member answers its queries, and it may still be the next one.
func TestReconfiguration_JoinerWhoseChangeHasNotComeKeepsWaiting(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	g.join("e", "a", "b", "e")
	g.register()
	g.run(10 * DefaultHeartbeatTicks)
	require.Equal(t, StatusJoining, g.r("d").Status())
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(2, "a", "b", "e").Error)
	g.run(10 * DefaultHeartbeatTicks)
	g.requireEpoch(1, "a", "b", "e")
	assert.Equal(t, StatusJoining, g.r("d").Status(), "{a, b, d} may still come")
	assert.False(t, g.r("d").Left())
}

// An EpochEnded that does not name the joiner's own configuration, or whose
// current configuration still names the joiner, is dropped: only a member
// that remembers the joiner's very configuration as an ended epoch, and
// whose epoch does not name it, makes it leave.
func TestReconfiguration_EpochEndedThatDoesNotFitIsDropped(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	d := g.r("d")
	for _, m := range []*messages.EpochEnded{
		{Epoch: 1, CurrentEpoch: 2, Replica: 0, Members: []string{"a", "b", "e"}, CurrentMembers: []string{"a", "b", "c"}},
		{Epoch: 1, CurrentEpoch: 2, Replica: 0, Members: []string{"a", "b", "d"}, CurrentMembers: []string{"a", "b", "d"}},
		{Epoch: 2, CurrentEpoch: 2, Replica: 0, Members: []string{"a", "b", "d"}, CurrentMembers: []string{"a", "b", "c"}},
		{Epoch: 1, CurrentEpoch: 2, Replica: 2, Members: []string{"a", "b", "d"}, CurrentMembers: []string{"a", "b", "c"}},
		{Epoch: 1, CurrentEpoch: 2, Replica: 0, Members: []string{"a", "b", "d"}, CurrentMembers: []string{"a", "b"}},
	} {
		m.ClusterId = d.cfg.ClusterID
		d.Step(m)
		require.Equal(t, StatusJoining, d.Status(), "%v", m)
		require.False(t, d.Left())
	}
	assert.Equal(t, uint64(5), d.Drops()[DropMalformed])
}
