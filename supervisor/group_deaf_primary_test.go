package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// A deaf primary: it can send to its backups and hear its clients, but hears
// none of its backups (Group.SetDeaf). Its heartbeats keep every backup from
// timing out, while it cannot commit anything, so only the primary itself can
// notice: it must abdicate (the core's CheckQuorum, vsr/liveness.go) for the
// group to serve again.

// timedEvents records a group's events with the time each was seen.
type timedEvents struct {
	mu     sync.Mutex
	events []timedEvent
}

type timedEvent struct {
	actors.Event
	at time.Time
}

func (l *timedEvents) add(e actors.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, timedEvent{Event: e, at: time.Now()})
}

// first returns the time of the first event at or after since that matches.
func (l *timedEvents) first(since time.Time, match func(actors.Event) bool) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if !e.at.Before(since) && match(e.Event) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

func TestDeafPrimaryIsReplaced(t *testing.T) {
	const (
		n = 3
		// serveWithin bounds the time from the primary going deaf to the
		// first write the group serves again: generous, for a small shared
		// machine (the core needs about one inactivity timeout, 300 ms, to
		// abdicate, and one view change).
		serveWithin = 10 * time.Second
		// attempt bounds one write while the group may not be serving.
		attempt = 2 * time.Second
	)
	events := &timedEvents{}
	g := startGroup(t, n, func(cfg *supervisor.GroupConfig) { cfg.OnEvent = events.add })
	c := newClient(t, g, 1)

	want := map[string]string{}
	acked := uint64(1) // the client's registration is an op too
	write := func(key, value string) {
		put(t, c, key, value)
		want[key] = value
		acked++
	}
	for i := range 5 {
		write(fmt.Sprintf("before-%d", i), fmt.Sprintf("v%d", i))
	}
	old, view := waitPrimary(t, g, -1)
	waitConverged(t, g, allReplicas(n), acked)

	// Make the primary deaf.
	deafAt := time.Now()
	require.NoError(t, g.SetDeaf(old, true))

	// Keep writing until the group serves a write again. Nothing can commit
	// while the old primary is deaf and still primary (it hears no
	// PrepareOK), so the first write acknowledged after deafAt has been
	// committed by a new primary. A write that timed out may still have
	// taken effect: it is not counted as acknowledged.
	var servedAt time.Time
	timeouts := 0
	for i := 0; servedAt.IsZero(); i++ {
		require.Less(t, time.Since(deafAt), serveWithin,
			"no write served within %v of the primary (replica %d, view %d) going deaf (%d attempts timed out); status:\n%s",
			serveWithin, old, view, timeouts, describe(status(g)))
		key, value := fmt.Sprintf("deaf-%d", i), fmt.Sprintf("d%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), min(attempt, serveWithin-time.Since(deafAt)))
		b, err := c.Execute(ctx, kv.PutOp(key, []byte(value)))
		cancel()
		if errors.Is(err, actors.ErrTimeout) {
			timeouts++
			continue
		}
		require.NoError(t, err)
		decode(t, b)
		servedAt = time.Now()
		want[key] = value
		acked++
	}

	// A different replica is primary in a later view, and the old one,
	// deaf, is not normal in it.
	np, nview := waitPrimary(t, g, int64(view), old)
	require.NotEqual(t, old, np)
	require.Greater(t, nview, view)
	normalAt, ok := events.first(deafAt, func(e actors.Event) bool {
		return e.Replica != old && e.Primary && e.Status == vsr.StatusNormal && e.View > view
	})
	require.True(t, ok, "no event of a new primary being normal")
	abdicatedAt, ok := events.first(deafAt, func(e actors.Event) bool {
		return e.Replica == old && e.View > view
	})
	require.True(t, ok, "no event of the old primary leaving view %d", view)
	sts := status(g)
	require.False(t, sts[old].Status == vsr.StatusNormal && sts[old].View == nview,
		"the deaf replica cannot have joined view %d; status:\n%s", nview, describe(sts))
	t.Logf("primary %d (view %d) deaf: abdicated after %v, new primary %d normal in view %d after %v, first write served after %v (%d attempts timed out)",
		old, view, abdicatedAt.Sub(deafAt).Round(time.Millisecond), np, nview,
		normalAt.Sub(deafAt).Round(time.Millisecond), servedAt.Sub(deafAt).Round(time.Millisecond), timeouts)
	t.Logf("deaf replica %d while deaf: status=%v view=%d op=%d commit=%d", old, sts[old].Status, sts[old].View, sts[old].OpNumber, sts[old].CommitNumber)

	// The new group keeps serving, and every acknowledged write is there.
	for i := range 10 {
		write(fmt.Sprintf("after-%d", i), fmt.Sprintf("a%d", i))
	}
	requireValues(t, c, want)
	waitConverged(t, g, without(allReplicas(n), old), acked)

	// Heal: the old primary hears its peers again and rejoins as a backup.
	healedAt := time.Now()
	require.NoError(t, g.SetDeaf(old, false))
	write("after-heal", "h")
	sts = waitConverged(t, g, allReplicas(n), acked)
	rejoined := time.Since(healedAt)
	require.NotEqual(t, old, sts[old].Primary, "the old primary must rejoin as a backup; status:\n%s", describe(sts))
	for _, s := range sts {
		require.Equal(t, sts[0].Primary, s.Primary)
	}
	t.Logf("healed: replica %d normal as a backup of %d in view %d, all at commit %d, after %v",
		old, sts[old].Primary, sts[old].View, sts[old].CommitNumber, rejoined.Round(time.Millisecond))
	requireValues(t, c, want)
}
