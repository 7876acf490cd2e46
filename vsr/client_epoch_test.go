package vsr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// drive runs the client core c against the group g: its messages go to the
// members they name, replies to c come back to it, and the group ticks,
// until c's request is done.
func drive(t *testing.T, g *group, c *Client, out ClientOutput) *Result {
	t.Helper()
	seen := len(g.replies)
	for k := 0; k < 2000; k++ {
		if out.Done != nil {
			return out.Done
		}
		for _, env := range out.Messages {
			require.NotEmpty(t, env.Member)
			if n := g.nodes[env.Member]; n != nil && !g.down[env.Member] {
				g.step(env.Member, env.Msg)
			}
		}
		g.deliver()
		out = ClientOutput{}
		for seen < len(g.replies) && out.Done == nil && len(out.Messages) == 0 {
			out = c.Step(g.replies[seen])
			seen++
		}
		if out.Done == nil && len(out.Messages) == 0 {
			g.run(1)
			out = c.Tick()
		}
	}
	t.Fatal("the client's request never finished")
	return nil
}

func newEpochClient(t *testing.T, id uint64, members ...string) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{ClusterID: testCluster, ClientID: id, ReplicaCount: len(members),
		Members: members, ReplyTo: testClient, RetryTicks: 10})
	require.NoError(t, err)
	return c
}

// A client learns the new configuration from the reply to its
// reconfiguration; another client that knows only the old one is told by
// the group and retries there, and its write runs once.
func TestClient_FollowsAReconfiguration(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	g.join("d", "a", "b", "d")
	admin := newEpochClient(t, 7, "a", "b", "c")
	out, err := admin.Reconfigure([]string{"a", "b", "d"})
	require.NoError(t, err)
	res := drive(t, g, admin, out)
	require.NoError(t, res.Err)
	assert.Equal(t, uint64(1), admin.Epoch())
	assert.Equal(t, []string{"a", "b", "d"}, admin.Members())
	g.run(3 * DefaultHeartbeatTicks)
	g.requireEpoch(1, "a", "b", "d")

	old := newEpochClient(t, 8, "a", "b", "c")
	out, err = old.Submit(kv.PutOp("k", []byte("v")), messages.ReadMode_READ_MODE_LOG)
	require.NoError(t, err)
	res = drive(t, g, old, out)
	require.NoError(t, res.Err)
	assert.Equal(t, uint64(1), old.Epoch(), "learned from the refusal")
	assert.Equal(t, []string{"a", "b", "d"}, old.Members())
	g.run(DefaultHeartbeatTicks)
	assert.Equal(t, "v", g.value("d", "k"))
	puts := 0
	for _, e := range g.committed {
		if e.ClientId == 8 && !e.Register {
			puts++
		}
	}
	assert.Equal(t, 1, puts, "the write is in the log once")
}

func TestClient_ReconfigureRefusesABadConfigurationLocally(t *testing.T) {
	c := newEpochClient(t, 7, "a", "b", "c")
	_, err := c.Reconfigure([]string{"a", "b"})
	assert.ErrorIs(t, err, ErrMembers)
	_, err = c.Reconfigure([]string{"a", "a", "b"})
	assert.ErrorIs(t, err, ErrMembers)
	assert.False(t, c.Pending())
}
