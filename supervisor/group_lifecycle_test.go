package supervisor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// 8. No goroutine outlives Stop.

// goroutines returns the stack of every goroutine by ID.
func goroutines() map[int64]string {
	buf := make([]byte, 1<<20)
	for {
		k := runtime.Stack(buf, true)
		if k < len(buf) {
			buf = buf[:k]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int64]string{}
	for _, stack := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := strings.Cut(string(stack), " [")
		id, err := strconv.ParseInt(strings.TrimPrefix(header, "goroutine "), 10, 64)
		if err == nil {
			out[id] = string(stack)
		}
	}
	return out
}

// newerThan returns the stacks of the goroutines created after the one with
// ID maxID (IDs only grow).
func newerThan(maxID int64) []string {
	var out []string
	for id, stack := range goroutines() {
		if id > maxID {
			out = append(out, stack)
		}
	}
	return out
}

// creators names the function that started each goroutine of stacks.
func creators(stacks []string) string {
	var names []string
	for _, stack := range stacks {
		lines := strings.Split(stack, "\n")
		name := lines[0]
		for k, line := range lines {
			if strings.HasPrefix(line, "created by ") && k+1 < len(lines) {
				name = strings.TrimPrefix(line, "created by ") + " at " + strings.TrimSpace(lines[k+1])
			}
		}
		names = append(names, name)
	}
	return strings.Join(names, "; ")
}

func TestStopLeavesNoGoroutines(t *testing.T) {
	var maxID int64
	for id := range goroutines() {
		maxID = max(maxID, id)
	}
	baseline := runtime.NumGoroutine()

	g, err := supervisor.StartGroup(supervisor.GroupConfig{ClusterID: testClusterID, Replicas: 3, NewStateMachine: kv.New})
	require.NoError(t, err)
	c, err := g.NewClient(4)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			for i := range 25 {
				key := fmt.Sprintf("k%d", i%5)
				if _, err := c.Execute(ctx, kv.PutOp(key, []byte(fmt.Sprintf("%d-%d", w, i)))); err != nil {
					errs <- err
					return
				}
				if _, err := c.Read(ctx, kv.GetOp(key)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Exercise the paths that leave timers and dead letters behind: a
	// killed primary, a view change, a crash and restart.
	p, view := waitPrimary(t, g, -1)
	require.NoError(t, g.Kill(p))
	waitPrimary(t, g, int64(view), p)
	put(t, c, "after", "kill")
	require.NoError(t, g.Restart(p))
	// A recovering replica counts as failed: wait for it before crashing
	// another, or the group (f = 1) is stuck by design.
	waitConverged(t, g, allReplicas(3), 101)
	require.NoError(t, g.Crash((p+1)%3))
	waitConverged(t, g, allReplicas(3), 101)

	c.Close()
	g.Stop()
	g.Stop() // safe twice

	// Every replica actor is gone, so nothing of the group runs any more:
	// idle actors and pending one-shot timers hold no goroutine, so counting
	// goroutines alone would not notice replicas still ticking.
	for _, s := range status(g) {
		require.True(t, s.Down, "replica %d still answers after Stop", s.Replica)
	}
	if first := newerThan(maxID); len(first) > 0 {
		t.Logf("right after Stop, %d goroutines started since StartGroup still run: %s", len(first), creators(first))
	}

	// Poll from this goroutine: assert.Eventually would start goroutines of
	// its own.
	var leaked []string
	for deadline := time.Now().Add(waitFor); ; time.Sleep(pollEvery) {
		leaked = newerThan(maxID)
		if len(leaked) == 0 && runtime.NumGoroutine() <= baseline || time.Now().After(deadline) {
			break
		}
	}
	if len(leaked) > 0 || runtime.NumGoroutine() > baseline {
		t.Fatalf("%d goroutines before StartGroup, %d after Stop; %d started since and still running:\n\n%s",
			baseline, runtime.NumGoroutine(), len(leaked), strings.Join(leaked, "\n\n"))
	}

	// A stopped group refuses further use instead of panicking.
	_, err = g.NewClient(1)
	require.ErrorIs(t, err, supervisor.ErrStopped)
	require.ErrorIs(t, g.Kill(0), supervisor.ErrStopped)
	require.ErrorIs(t, g.Restart(0), supervisor.ErrStopped)
	require.ErrorIs(t, g.Crash(0), supervisor.ErrStopped)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err = c.Execute(ctx, kv.PutOp("k", []byte("v")))
	require.ErrorIs(t, err, actors.ErrClosed)
}

// 9. Bad configuration is an error, never a panic.

func TestStartGroupRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  supervisor.GroupConfig
		want error
	}{
		{"zero replicas", supervisor.GroupConfig{Replicas: 0, NewStateMachine: kv.New}, vsr.ErrReplicaCount},
		{"negative replicas", supervisor.GroupConfig{Replicas: -1, NewStateMachine: kv.New}, vsr.ErrReplicaCount},
		{"two replicas", supervisor.GroupConfig{Replicas: 2, NewStateMachine: kv.New}, vsr.ErrReplicaCount},
		{"four replicas", supervisor.GroupConfig{Replicas: 4, NewStateMachine: kv.New}, vsr.ErrReplicaCount},
		{"no state machine", supervisor.GroupConfig{Replicas: 3}, vsr.ErrNoStateMachine},
		{"no state machine, even replicas", supervisor.GroupConfig{Replicas: 2}, nil},
		{"bad timing", supervisor.GroupConfig{Replicas: 3, NewStateMachine: kv.New,
			Timing: vsr.Config{HeartbeatTicks: 10, InactivityTicks: 5}}, vsr.ErrTiming},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var g *supervisor.Group
			var err error
			require.NotPanics(t, func() { g, err = supervisor.StartGroup(tc.cfg) })
			require.Error(t, err)
			require.Nil(t, g)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			} else {
				require.True(t, errors.Is(err, vsr.ErrReplicaCount) || errors.Is(err, vsr.ErrNoStateMachine), err)
			}
		})
	}

	// Out-of-range replica indexes are errors too.
	g := startGroup(t, 3)
	for _, i := range []int{-1, 3} {
		require.ErrorIs(t, g.Kill(i), vsr.ErrReplicaIndex)
		require.ErrorIs(t, g.Restart(i), vsr.ErrReplicaIndex)
		require.ErrorIs(t, g.Crash(i), vsr.ErrReplicaIndex)
	}
}
