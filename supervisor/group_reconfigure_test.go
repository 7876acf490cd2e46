package supervisor_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// Changing a group's members through the Group: a new replica joins and
// takes part, removed ones stop, clients made before the change keep
// working, refused changes leave nothing behind, and a group on disk starts
// again with the replicas it added.

func reconfigureGroup(t testing.TB, g *supervisor.Group, replicas []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	require.NoError(t, g.Reconfigure(ctx, replicas))
}

// waitMembers waits until the group reports the configuration replicas in
// epoch, and until each of them is normal in it with every op committed at
// least up to minCommit.
func waitMembers(t testing.TB, g *supervisor.Group, epoch uint64, replicas []int, minCommit uint64) {
	t.Helper()
	var last []supervisor.ReplicaStatus
	ok := func() bool {
		e, members := g.Members()
		if e != epoch || !slices.Equal(members, replicas) {
			return false
		}
		last = status(g)
		for _, i := range replicas {
			s := last[i]
			if s.Down || s.Status != vsr.StatusNormal || s.Epoch != epoch || s.CommitNumber < minCommit {
				return false
			}
		}
		return true
	}
	require.Eventually(t, ok, waitFor, pollEvery, "members %v in epoch %d; last status:\n%s", replicas, epoch, describe(last))
}

// waitLeft waits for replica i's Left event and for its actor to stop.
func waitLeft(t testing.TB, g *supervisor.Group, events *eventLog, i int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(events.snapshot(), func(e actors.Event) bool { return e.Replica == i && e.Left }) &&
			status(g)[i].Down
	}, waitFor, pollEvery, "replica %d did not leave", i)
}

// TestGroupReplacesAMember replaces replica 2 of three with a new replica
// 3. The client made before the change keeps working; the new replica holds
// the state written before it joined and takes part (the group survives
// losing its primary afterwards, which needs replica 3's vote); replica 2
// leaves and stops.
func TestGroupReplacesAMember(t *testing.T) {
	events := &eventLog{}
	g := startGroup(t, 3, func(cfg *supervisor.GroupConfig) { cfg.OnEvent = events.add })
	c := newClient(t, g, 1)
	want := map[string]string{}
	for i := range 10 {
		key := fmt.Sprint("k", i)
		put(t, c, key, "before")
		want[key] = "before"
	}

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	added, err := g.Replace(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, 3, added, "the new replica takes the next number")
	require.Equal(t, 4, g.Replicas())

	waitMembers(t, g, 1, []int{0, 1, 3}, 10)
	waitLeft(t, g, events, 2)
	put(t, c, "after", "change")
	want["after"] = "change"

	primary, view := waitPrimary(t, g, -1)
	require.NotEqual(t, 2, primary)
	require.NoError(t, g.Kill(primary))
	waitPrimary(t, g, int64(view), primary, 2)
	put(t, c, "after-failover", "yes")
	want["after-failover"] = "yes"
	requireValues(t, c, want)
	requireValues(t, newClient(t, g, 1), want)
}

// TestGroupGrowsToFiveAndShrinksToThree grows a group of three to five and
// then shrinks it to the three newest replicas: the first two leave, and
// the group keeps every write through both changes.
func TestGroupGrowsToFiveAndShrinksToThree(t *testing.T) {
	events := &eventLog{}
	g := startGroup(t, 3, func(cfg *supervisor.GroupConfig) { cfg.OnEvent = events.add })
	c := newClient(t, g, 2)
	put(t, c, "a", "1")

	reconfigureGroup(t, g, []int{0, 1, 2, 3, 4})
	epoch, members := g.Members()
	require.Equal(t, uint64(1), epoch, "Members knows the change as soon as Reconfigure returns")
	require.Equal(t, []int{0, 1, 2, 3, 4}, members)
	waitMembers(t, g, 1, []int{0, 1, 2, 3, 4}, 1)
	put(t, c, "b", "2")

	reconfigureGroup(t, g, []int{2, 3, 4})
	waitMembers(t, g, 2, []int{2, 3, 4}, 2)
	waitLeft(t, g, events, 0)
	waitLeft(t, g, events, 1)
	put(t, c, "c", "3")
	requireValues(t, c, map[string]string{"a": "1", "b": "2", "c": "3"})

	// Status numbers replicas as the group does, not by their index in the
	// configuration of epoch 2 (0 to 2).
	primary, _ := waitPrimary(t, g, -1)
	require.Contains(t, []int{2, 3, 4}, primary)
	sts := status(g)
	for _, i := range []int{2, 3, 4} {
		require.Equal(t, i, sts[i].Replica)
		require.Equal(t, primary, sts[i].Primary, "replica %d names the primary by its number", i)
	}
}

// TestGroupRefusesBadReconfigurations: malformed configurations are refused
// before anything starts, the group's refusals come back with its reason,
// and a refused change leaves no new replica behind.
func TestGroupRefusesBadReconfigurations(t *testing.T) {
	g := startGroup(t, 3)
	c := newClient(t, g, 1)
	put(t, c, "k", "v")
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()

	for _, bad := range [][]int{{0, 1}, {0, 0, 1}, {0, 1, -1}, {0, 1, 4}, {}} {
		err := g.Reconfigure(ctx, bad)
		require.ErrorIs(t, err, vsr.ErrMembers, "%v", bad)
		require.Equal(t, 3, g.Replicas(), "%v started a replica", bad)
	}
	_, err := g.Replace(ctx, 7)
	require.ErrorIs(t, err, vsr.ErrMembers, "a replica that is not a member cannot be replaced")

	err = g.Reconfigure(ctx, []int{0, 1, 2})
	require.ErrorIs(t, err, actors.ErrRejected, "the same configuration")
	require.ErrorContains(t, err, vsr.ErrSameConfiguration.Error())

	err = g.Reconfigure(ctx, []int{0, 3, 4})
	require.ErrorIs(t, err, actors.ErrRejected, "a majority of new replicas")
	require.ErrorContains(t, err, "minority")
	require.Equal(t, 3, g.Replicas(), "the replicas started for a refused change are gone")
	require.Len(t, g.Peers(), 3)

	epoch, members := g.Members()
	require.Equal(t, uint64(0), epoch)
	require.Equal(t, []int{0, 1, 2}, members)
	put(t, c, "still", "works")

	// The numbers of the refused replicas are free again.
	reconfigureGroup(t, g, []int{0, 1, 2, 3, 4})
	waitMembers(t, g, 1, []int{0, 1, 2, 3, 4}, 2)
}

// TestGroupOnDiskStartsAgainWithItsNewMembers replaces a replica of a group
// that keeps its state on disk, stops the whole group and starts it again
// from the same directory: the joined replica is hosted again in the
// configuration it joined, the group is in the new epoch with every write,
// and the removed replica does not come back as a member.
func TestGroupOnDiskStartsAgainWithItsNewMembers(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *supervisor.GroupConfig) { c.DataDir = dir }
	g := startGroup(t, 3, cfg)
	c := newClient(t, g, 1)
	put(t, c, "before", "1")
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := g.Replace(ctx, 0)
	require.NoError(t, err)
	waitMembers(t, g, 1, []int{3, 1, 2}, 1)
	put(t, c, "after", "2")
	c.Close()
	g.Stop()

	events := &eventLog{}
	g2 := startGroup(t, 3, cfg, func(c *supervisor.GroupConfig) { c.OnEvent = events.add })
	require.Equal(t, 4, g2.Replicas(), "the joined replica is hosted again")
	waitMembers(t, g2, 1, []int{3, 1, 2}, 2)
	requireValues(t, newClient(t, g2, 1), map[string]string{"before": "1", "after": "2"})
	require.Eventually(t, func() bool { return status(g2)[0].Down }, waitFor, pollEvery,
		"the removed replica does not run again")
}

// TestAClientWhoseMembersAllLeftFindsTheGroup: three changes in a row,
// each asked for as soon as the last returned, replace every member a
// client made at the start knows of. No reply can teach it the new
// members, since it sent nothing meanwhile and its members are gone; it
// learns them from the group (actors.ClientConfig.Discover) instead of
// failing with ErrNoSuchGroup.
func TestAClientWhoseMembersAllLeftFindsTheGroup(t *testing.T) {
	events := &eventLog{}
	g := startGroup(t, 3, func(cfg *supervisor.GroupConfig) { cfg.OnEvent = events.add })
	c := newClient(t, g, 1)
	put(t, c, "a", "1")
	reconfigureGroup(t, g, []int{0, 1, 3})
	reconfigureGroup(t, g, []int{0, 1, 3, 4, 5})
	reconfigureGroup(t, g, []int{3, 4, 5})
	waitMembers(t, g, 3, []int{3, 4, 5}, 1)
	for _, i := range []int{0, 1, 2} {
		waitLeft(t, g, events, i)
	}
	requireValues(t, c, map[string]string{"a": "1"})
	put(t, c, "b", "2")
}
