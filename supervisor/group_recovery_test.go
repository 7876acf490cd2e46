package supervisor_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// 3. A replica that panics is restarted by the supervisor and recovers.

// eventLog records a group's events.
type eventLog struct {
	mu     sync.Mutex
	events []actors.Event
}

func (l *eventLog) add(e actors.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) snapshot() []actors.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// restartedAt returns the position of the first restart event of replica i at
// or after position from, or -1.
func (l *eventLog) restartedAt(i, from int) int {
	for k, e := range l.snapshot() {
		if k >= from && e.Replica == i && e.Restarted {
			return k
		}
	}
	return -1
}

func TestCrashedReplicaRecovers(t *testing.T) {
	cases := []struct {
		name    string
		n       int
		primary bool // crash the primary instead of a backup
	}{
		{"backup/replicas=3", 3, false},
		{"backup/replicas=5", 5, false},
		{"primary/replicas=3", 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events := &eventLog{}
			g := startGroup(t, tc.n, func(cfg *supervisor.GroupConfig) { cfg.OnEvent = events.add })
			c := newClient(t, g, 1)

			want := map[string]string{}
			writes := uint64(0)
			for i := range 10 {
				key := fmt.Sprintf("k%d", i)
				put(t, c, key, "v1")
				want[key] = "v1"
				writes++
			}
			sts := waitConverged(t, g, allReplicas(tc.n), writes)
			for i := range tc.n {
				require.Equal(t, -1, events.restartedAt(i, 0), "replica %d has not restarted yet", i)
			}

			p, _ := waitPrimary(t, g, -1)
			victim := (p + 1) % tc.n
			if tc.primary {
				victim = p
			}
			before := sts[victim]
			mark := len(events.snapshot())
			require.NoError(t, g.Crash(victim))

			// The supervisor restarts it as a new instance, which recovers.
			var at int
			require.Eventually(t, func() bool {
				at = events.restartedAt(victim, mark)
				return at >= 0
			}, waitFor, pollEvery, "replica %d was not restarted", victim)
			restart := events.snapshot()[at]
			require.Equal(t, vsr.StatusRecovering, restart.Status, "a restarted replica must start recovering")
			require.False(t, restart.Primary)

			// Writes keep flowing while it recovers, and it catches up.
			for i := range 10 {
				key := fmt.Sprintf("k%d", i)
				put(t, c, key, "v2")
				want[key] = "v2"
				writes++
			}
			sts = waitConverged(t, g, allReplicas(tc.n), writes)
			require.Equal(t, vsr.StatusNormal, sts[victim].Status)
			requireValues(t, c, want)

			// It went recovering -> normal, in that order, after the restart.
			var sawNormal bool
			for _, e := range events.snapshot()[at+1:] {
				if e.Replica == victim && e.Status == vsr.StatusNormal {
					sawNormal = true
				}
			}
			require.True(t, sawNormal, "no normal event for replica %d after its restart", victim)
			if tc.primary {
				// Nothing answers for a recovering replica, so the group
				// must have moved past the crashed primary's view.
				require.Greater(t, sts[victim].View, before.View)
			}
		})
	}
}

func TestRestartLimitThenRestart(t *testing.T) {
	const n, victim = 3, 1
	events := &eventLog{}
	g := startGroup(t, n, func(cfg *supervisor.GroupConfig) {
		cfg.OnEvent = events.add
		cfg.MaxRestarts, cfg.RestartWindow = 2, time.Hour
	})
	c := newClient(t, g, 1)
	put(t, c, "k", "v1")

	// Two crashes are restarted...
	mark := 0
	for range 2 {
		require.NoError(t, g.Crash(victim))
		require.Eventually(t, func() bool { return events.restartedAt(victim, mark) >= 0 }, waitFor, pollEvery)
		mark = events.restartedAt(victim, mark) + 1
	}
	// ...the third is one too many within the window: the replica stays down.
	require.NoError(t, g.Crash(victim))
	require.Eventually(t, func() bool { return status(g)[victim].Down }, waitFor, pollEvery)
	require.Equal(t, -1, events.restartedAt(victim, mark), "restarted past MaxRestarts")

	// The others serve on; Restart brings it back through recovery.
	put(t, c, "k", "v2")
	require.NoError(t, g.Restart(victim))
	require.Eventually(t, func() bool { return events.restartedAt(victim, mark) >= 0 }, waitFor, pollEvery)
	put(t, c, "k", "v3")
	waitConverged(t, g, allReplicas(n), 3)
	value, _ := read(t, c, "k")
	require.Equal(t, "v3", value)
}

func TestRestartOfRunningReplicaIsAnError(t *testing.T) {
	events := &eventLog{}
	g := startGroup(t, 3, func(cfg *supervisor.GroupConfig) { cfg.OnEvent = events.add })
	c := newClient(t, g, 1)
	put(t, c, "k", "v")
	require.Error(t, g.Restart(1), "replica 1 is running: there is nothing to restart")
	put(t, c, "k", "w")
	waitConverged(t, g, allReplicas(3), 2)
	for i := range 3 {
		require.Equal(t, -1, events.restartedAt(i, 0), "replica %d was replaced", i)
	}
	// Killing a replica twice is harmless.
	require.NoError(t, g.Kill(2))
	require.NoError(t, g.Kill(2))
	require.True(t, status(g)[2].Down)
}
