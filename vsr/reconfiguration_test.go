package vsr

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// Reconfiguration (paper section 7; docs/reconfiguration.md).

func TestReconfiguration_ReplaceOneMember(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	g.register()
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(2, "k", "v1").Error)

	rep := g.reconfigure(3, "a", "b", "d")
	require.NotNil(t, rep, "the reconfiguration is answered")
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, rep.Error)
	assert.Equal(t, uint64(1), rep.Epoch, "the reply names the new epoch")
	assert.Equal(t, []string{"a", "b", "d"}, rep.Members, "and its configuration")
	g.run(3 * DefaultHeartbeatTicks)

	g.requireEpoch(1, "a", "b", "d")
	assert.Equal(t, "v1", g.value("d", "k"), "the joiner fetched the state")
	assert.Equal(t, StatusLeaving, g.r("c").Status())
	assert.True(t, g.r("c").Left(), "c is no longer needed once a quorum of the new configuration holds the state")

	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(4, "k", "v2").Error, "the new epoch serves")
	g.run(DefaultHeartbeatTicks)
	g.requireEpoch(1, "a", "b", "d")
	assert.Equal(t, "v2", g.value("d", "k"))
	assert.Equal(t, "v1", g.value("c", "k"), "the removed member takes no part")
}

func TestReconfiguration_GrowThreeToFiveAndShrinkBack(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "c", "d", "e")
	g.join("e", "a", "b", "c", "d", "e")
	g.register()
	g.put(2, "x", "1")
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(3, "a", "b", "c", "d", "e").Error)
	g.run(3 * DefaultHeartbeatTicks)
	g.requireEpoch(1, "a", "b", "c", "d", "e")
	assert.Equal(t, "1", g.value("e", "x"))

	// Writes in the group of five need three of them: with a and b down,
	// c, d and e still commit.
	g.down["a"], g.down["b"] = true, true
	g.run(10 * DefaultInactivityTicks)
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(4, "x", "2").Error)
	g.down["a"], g.down["b"] = false, false
	g.run(10 * DefaultHeartbeatTicks)

	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(5, "c", "d", "e").Error)
	g.run(3 * DefaultHeartbeatTicks)
	g.requireEpoch(2, "c", "d", "e")
	assert.Equal(t, "2", g.value("c", "x"))
	for _, name := range []string{"a", "b"} {
		assert.Equal(t, StatusLeaving, g.r(name).Status(), name)
		assert.True(t, g.r(name).Left(), name)
	}
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(6, "x", "3").Error)
}

func TestReconfiguration_BadConfigurationsAreRefusedAndChangeNothing(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.register()
	for i, c := range []struct {
		name    string
		members []string
	}{
		{"even count", []string{"a", "b", "c", "d"}},
		{"duplicate", []string{"a", "b", "b"}},
		{"empty name", []string{"a", "b", ""}},
		{"the same configuration", []string{"a", "b", "c"}},
		{"new members a majority", []string{"a", "d", "e"}},
		{"no overlap", []string{"d", "e", "f"}},
	} {
		rep := g.reconfigure(uint64(2+i), c.members...)
		require.NotNil(t, rep, c.name)
		assert.Equal(t, messages.ReplyError_REPLY_ERROR_INVALID_REQUEST, rep.Error, c.name)
		assert.NotEmpty(t, string(rep.Result), "%s: the reply says why", c.name)
	}
	g.run(DefaultHeartbeatTicks)
	for _, name := range []string{"a", "b", "c"} {
		assert.Equal(t, uint64(0), g.r(name).Epoch(), name)
		assert.Equal(t, uint64(1), g.r(name).OpNumber(), "%s: only the registration is in the log", name)
	}
}

func TestReconfiguration_OneAtATime(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	g.register()
	// Hold the backups' acknowledgements so that the first reconfiguration
	// stays uncommitted.
	g.setCut("b", "a", true)
	g.setCut("c", "a", true)
	assert.Nil(t, g.reconfigure(2, "a", "b", "d"), "not committed yet")
	assert.True(t, g.r("a").reconfiguring())

	rep := g.request(3, &messages.Request{Reconfigure: &messages.Reconfiguration{Members: []string{"a", "c", "d"}}})
	require.NotNil(t, rep)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_RECONFIGURING, rep.Error, "a second reconfiguration waits")
	rep = g.put(4, "k", "v")
	require.NotNil(t, rep)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_RECONFIGURING, rep.Error, "and so does a write")
	assert.Equal(t, uint64(2), g.r("a").OpNumber(), "neither was appended")

	g.setCut("b", "a", false)
	g.setCut("c", "a", false)
	g.run(3 * DefaultHeartbeatTicks)
	g.requireEpoch(1, "a", "b", "d")
}

func TestReconfiguration_ClientsLearnTheNewConfigurationAndRetriesRunOnce(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	g.register()
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(2, "a", "b", "d").Error)
	g.run(3 * DefaultHeartbeatTicks)

	// A client that did not see the reply still knows epoch 0.
	g.epoch, g.members = 0, []string{"a", "b", "c"}
	rep := g.put(3, "k", "v")
	require.NotNil(t, rep)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_WRONG_EPOCH, rep.Error)
	assert.Equal(t, uint64(1), rep.Epoch)
	assert.Equal(t, []string{"a", "b", "d"}, rep.Members)
	assert.Equal(t, "<absent>", g.value("a", "k"), "a refused request runs nowhere")

	// The removed member answers the same.
	g.step("c", &messages.Request{ClusterId: testCluster, ClientId: gClient, RequestNumber: 3,
		Operation: []byte("x"), ReplyTo: testClient, Session: g.sessions[gClient]})
	rep = g.replyFor(3)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_WRONG_EPOCH, rep.Error)
	assert.Equal(t, []string{"a", "b", "d"}, rep.Members)

	// A retry of the reconfiguration itself, from a client that lost the
	// reply, gets the stored answer and changes nothing.
	g.epoch = 1
	before := g.r("a").OpNumber()
	rep = g.reconfigure(2, "a", "b", "d")
	require.NotNil(t, rep)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, rep.Error)
	assert.Equal(t, before, g.r("a").OpNumber())
	assert.Equal(t, uint64(1), g.r("a").Epoch(), "executed once")
}

// The primary itself may be the member removed: it commits the change,
// answers it, and leaves; the new epoch's view 0 has another primary.
func TestReconfiguration_RemovingThePrimary(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "b", "c", "d")
	g.register()
	g.put(2, "k", "v1")
	rep := g.reconfigure(3, "b", "c", "d")
	require.NotNil(t, rep)
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, rep.Error)
	assert.Equal(t, []string{"b", "c", "d"}, rep.Members)
	g.run(3 * DefaultHeartbeatTicks)
	g.requireEpoch(1, "b", "c", "d")
	assert.Equal(t, "b", g.primary())
	assert.True(t, g.r("a").Left())
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(4, "k", "v2").Error)
	g.run(DefaultHeartbeatTicks)
	assert.Equal(t, "v2", g.value("d", "k"))
}

// A new member may be member 0, the primary of the new epoch's view 0: it
// serves once it holds the state.
func TestReconfiguration_JoinerIsTheNewPrimary(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "d", "a", "b")
	g.register()
	g.put(2, "k", "v1")
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(3, "d", "a", "b").Error)
	g.run(3 * DefaultHeartbeatTicks)
	g.requireEpoch(1, "d", "a", "b")
	assert.Equal(t, "d", g.primary())
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(4, "k", "v2").Error)
}

// A member that stays but missed the commit (and the primary's Commit) is
// told by the others when its own timeout makes it speak in the old epoch,
// fetches the ops up to the reconfiguration, and joins the new epoch.
func TestReconfiguration_MemberThatMissedTheCommitCatchesUp(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "c", "d", "e")
	g.join("e", "a", "b", "c", "d", "e")
	g.register()
	g.put(2, "k", "v1")
	for _, from := range []string{"a", "b", "d", "e"} {
		g.setCut(from, "c", true) // c hears nothing
	}
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(3, "a", "b", "c", "d", "e").Error)
	g.run(3 * DefaultHeartbeatTicks)
	assert.Equal(t, uint64(0), g.r("c").Epoch(), "c missed it")
	assert.Equal(t, uint64(2), g.r("c").OpNumber(), "c holds the registration and the put")
	for _, from := range []string{"a", "b", "d", "e"} {
		g.setCut(from, "c", false)
	}
	g.run(3 * DefaultInactivityTicks)
	g.requireEpoch(1, "a", "b", "c", "d", "e")
	assert.Equal(t, "v1", g.value("c", "k"))
}

// A view change in the old epoch keeps a reconfiguration that a quorum
// holds: the new primary commits it, and the epoch changes.
func TestReconfiguration_SurvivesAViewChangeInTheOldEpoch(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	g.register()
	// b and c take the Prepare, but the primary hears no acknowledgement
	// and then fails.
	g.setCut("b", "a", true)
	g.setCut("c", "a", true)
	assert.Nil(t, g.reconfigure(2, "a", "b", "d"))
	g.down["a"] = true
	g.run(5 * DefaultInactivityTicks)
	require.Equal(t, uint64(1), g.r("b").Epoch(), "the view change in epoch 0 committed the reconfiguration")
	g.down["a"] = false
	g.setCut("b", "a", false)
	g.setCut("c", "a", false)
	g.run(5 * DefaultInactivityTicks)
	g.requireEpoch(1, "a", "b", "d")
	assert.True(t, g.r("c").Left())
}

// A removed member never takes part again: what it sends in its old epoch
// is dropped by the new one's members (and answered with the news), and its
// votes count nowhere.
func TestReconfiguration_RemovedMemberNeverVotes(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	g.register()
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(2, "a", "b", "d").Error)
	g.run(3 * DefaultHeartbeatTicks)
	view := g.r("a").View()
	for _, m := range []proto.Message{uSVC(5, 2), uDVC(5, 2, 0, 2, nil), uPrepareOK(0, 2, 2)} {
		m = proto.Clone(m)
		m.ProtoReflect().Set(m.ProtoReflect().Descriptor().Fields().ByName("cluster_id"), protoreflect.ValueOfUint64(testCluster))
		g.step("a", m)
		g.step("b", m)
	}
	assert.GreaterOrEqual(t, g.r("a").Drops()[DropOldEpoch], uint64(3))
	g.deliver()
	g.run(DefaultHeartbeatTicks)
	g.requireEpoch(1, "a", "b", "d")
	assert.Equal(t, view, g.r("a").View(), "no view change")
	assert.Equal(t, StatusLeaving, g.r("c").Status())
}

// A replica restarted from its disk after a reconfiguration comes back in
// its epoch, with its index there, whether its checkpoint is older or newer
// than the change, and even if its durable commit number lags the change.
func TestReconfiguration_RestartFromDiskKeepsTheEpoch(t *testing.T) {
	for _, interval := range []int{3, 1000} { // a checkpoint after the change, or none
		t.Run(fmt.Sprintf("checkpoint-interval=%d", interval), func(t *testing.T) {
			g := newGroupWith(t, []func(*Config){func(c *Config) { c.CheckpointInterval, c.TrailingOps = interval, -1 }},
				"a", "b", "c")
			g.join("e", "a", "b", "c", "e", "d")
			g.join("d", "a", "b", "c", "e", "d")
			g.register()
			g.put(2, "k", "v1")
			require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(3, "a", "b", "c", "e", "d").Error)
			g.put(4, "k", "v2")
			g.put(5, "k", "v3")
			g.run(3 * DefaultHeartbeatTicks)
			for _, name := range []string{"c", "d", "b"} {
				if interval == 3 {
					require.NotZero(t, g.r(name).CheckpointOpNumber(), "%s took a checkpoint", name)
				}
				g.restart(name)
				require.Equal(t, uint64(1), g.r(name).Epoch(), name)
			}
			g.run(5 * DefaultInactivityTicks)
			require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(6, "k", "v4").Error)
			g.run(3 * DefaultHeartbeatTicks)
			g.requireEpoch(1, "a", "b", "c", "e", "d")
			assert.Equal(t, "v4", g.value("d", "k"))
		})
	}
}

// A removed replica restarted from its disk is still removed.
func TestReconfiguration_RestartedRemovedMemberStaysOut(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	g.register()
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(2, "a", "b", "d").Error)
	g.run(3 * DefaultHeartbeatTicks)
	g.restart("c")
	g.run(3 * DefaultInactivityTicks)
	assert.Equal(t, StatusLeaving, g.r("c").Status())
	g.requireEpoch(1, "a", "b", "d")
}

// A replica that lost its state recovers in the epoch its peers are in,
// even when it restarts with the configuration of an earlier one.
func TestReconfiguration_RecoveryLearnsTheEpoch(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "c", "d", "e")
	g.join("e", "a", "b", "c", "d", "e")
	g.register()
	g.put(2, "k", "v1")
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(3, "a", "b", "c", "d", "e").Error)
	g.put(4, "k", "v2")
	g.run(3 * DefaultHeartbeatTicks)

	n := g.nodes["c"]
	cfg := n.cfg
	g.seed++
	cfg.Seed, cfg.StateMachine, cfg.Recovering = g.seed, kv.NewStore(), true
	r, err := New(cfg)
	require.NoError(t, err)
	n.r, n.store, n.disk = r, cfg.StateMachine.(*kv.Store), &testDisk{}
	g.run(5 * DefaultInactivityTicks)
	g.requireEpoch(1, "a", "b", "c", "d", "e")
	assert.Equal(t, "v2", g.value("c", "k"))
}

// A group that was not configured for reconfiguration refuses one, whoever
// asks, and nothing changes: its transport could not route the new epoch.
func TestReconfiguration_RefusedUnlessTheGroupTakesThem(t *testing.T) {
	g := newGroupWith(t, []func(*Config){func(c *Config) { c.Reconfigurable = false }}, "a", "b", "c")
	g.register()
	rep := g.reconfigure(2, "a", "b", "d")
	require.NotNil(t, rep)
	assert.Equal(t, messages.ReplyError_REPLY_ERROR_INVALID_REQUEST, rep.Error)
	assert.Contains(t, string(rep.Result), "Reconfigurable")
	g.run(DefaultHeartbeatTicks)
	assert.Equal(t, uint64(0), g.r("a").Epoch())
	assert.Equal(t, uint64(1), g.r("a").OpNumber(), "only the registration is in the log")
}

// A replica started to join a configuration that the group changes again
// before the joiner holds the state (grow to five, then shrink without it
// at once) learns of the later epoch from the members it asks, and leaves:
// it never voted, and nothing waits for it. Two things make it so: a
// catch-up whose source stays silent (here d, which left and stopped) moves
// on to the next member, which answers from the later epoch; and a joiner
// that hears of a later epoch without it leaves, where before it dropped the
// news as malformed and asked d for the state for ever.
func TestReconfiguration_JoinerRemovedBeforeItFinishedJoiningLeaves(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "c", "d", "e")
	g.join("e", "a", "b", "c", "d", "e")
	for _, peer := range []string{"a", "b", "c", "d"} {
		g.setCut("e", peer, true) // e hears the new epoch but cannot ask for its state
	}
	g.register()
	g.put(2, "x", "1")
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(3, "a", "b", "c", "d", "e").Error)
	g.run(3 * DefaultHeartbeatTicks)
	require.Equal(t, StatusJoining, g.r("e").Status(), "e cannot fetch the state")
	require.Equal(t, uint64(1), g.r("e").Epoch(), "e heard of the epoch it joins")
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.reconfigure(4, "a", "b", "c").Error)
	g.run(3 * DefaultHeartbeatTicks)
	g.requireEpoch(2, "a", "b", "c")
	require.True(t, g.r("d").Left())
	g.down["d"] = true // d left, and its process stopped: no member of epoch 1 is left to serve e

	for _, peer := range []string{"a", "b", "c", "d"} {
		g.setCut("e", peer, false)
	}
	g.run(10 * DefaultHeartbeatTicks)
	assert.Equal(t, StatusLeaving, g.r("e").Status())
	assert.True(t, g.r("e").Left(), "the joiner the group no longer names has left")
	require.Equal(t, messages.ReplyError_REPLY_ERROR_NONE, g.put(5, "x", "2").Error)
}
