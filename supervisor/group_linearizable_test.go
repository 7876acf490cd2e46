package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/sim"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// 7. A concurrent history spanning a primary kill is linearizable.

func TestConcurrentHistoryAcrossFailoverIsLinearizable(t *testing.T) {
	const (
		n        = 3
		workers  = 6
		duration = 2500 * time.Millisecond
	)
	keys := []string{"a", "b", "c"}
	g := startGroup(t, n)
	c := newClient(t, g, workers)
	history := &sim.History{}
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	var stop atomic.Bool
	var completed, unknown, afterFailover atomic.Int64
	var failoverDone atomic.Int64 // history time the new primary was seen; 0 until then
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	seed := uint64(time.Now().UnixNano())
	t.Logf("workload seed %d", seed)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			seen := map[string]string{}
			for seq := 0; !stop.Load(); seq++ {
				// Think time between ops keeps the history to some ten
				// thousand ops, which the checker takes well under a second
				// on; unpaced, it reaches 100k and takes seconds.
				time.Sleep(time.Millisecond)
				key := keys[rng.IntN(len(keys))]
				value := fmt.Sprintf("w%d-%d", w, seq)
				var in sim.Input
				var op []byte
				read := false
				switch k := rng.IntN(10); {
				case k < 3:
					in, op = sim.Input{Kind: sim.OpPut, Key: key, Value: value}, kv.PutOp(key, []byte(value))
				case k < 6:
					in, op, read = sim.Input{Kind: sim.OpGet, Key: key}, kv.GetOp(key), k < 5
				case k < 9:
					in = sim.Input{Kind: sim.OpCAS, Key: key, Expected: seen[key], Value: value}
					op = kv.CASOp(key, []byte(seen[key]), []byte(value))
				default:
					in, op = sim.Input{Kind: sim.OpPutIfAbsent, Key: key, Value: value}, kv.PutIfAbsentOp(key, []byte(value))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				id := history.Invoke(w, in, now())
				var b []byte
				var err error
				if read {
					b, err = c.Read(ctx, op)
				} else {
					b, err = c.Execute(ctx, op)
				}
				ret := now()
				cancel()
				if errors.Is(err, actors.ErrTimeout) {
					unknown.Add(1) // left incomplete: it may or may not have happened
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d: %v: %w", w, in, err)
					return
				}
				r, err := kv.DecodeResult(b)
				if err != nil || r.GetError() != "" {
					errs <- fmt.Errorf("worker %d: %v: bad result %v (%v)", w, in, r, err)
					return
				}
				out := sim.Output{Found: r.GetFound(), Value: string(r.GetValue()), Swapped: r.GetSwapped()}
				history.Complete(id, out, ret)
				completed.Add(1)
				if f := failoverDone.Load(); f > 0 && ret > f {
					afterFailover.Add(1)
				}
				switch {
				case in.Kind == sim.OpGet && r.GetFound():
					seen[key] = string(r.GetValue())
				case in.Kind == sim.OpGet:
					delete(seen, key)
				case in.Kind == sim.OpPut || r.GetSwapped():
					seen[key] = value
				case in.Kind == sim.OpCAS && r.GetFound():
					seen[key] = string(r.GetValue()) // a failed CAS returns the current value
				}
			}
		}()
	}

	// Let the workload run, kill the primary in the middle, restart it later.
	time.Sleep(duration / 3)
	p, view := waitPrimary(t, g, -1)
	require.NoError(t, g.Kill(p))
	np, _ := waitPrimary(t, g, int64(view), p)
	failoverDone.Store(now())
	t.Logf("killed primary %d in view %d; new primary %d", p, view, np)
	time.Sleep(duration / 3)
	require.NoError(t, g.Restart(p))
	time.Sleep(duration / 3)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.False(t, t.Failed())

	t.Logf("%d ops completed (%d after the failover), %d timed out", completed.Load(), afterFailover.Load(), unknown.Load())
	require.Positive(t, afterFailover.Load(), "nothing completed after the new primary took over")

	checkStart := time.Now()
	ok, result, info := history.Check(time.Minute)
	t.Logf("history checked in %v", time.Since(checkStart).Round(time.Millisecond))
	if !ok {
		path := filepath.Join(t.TempDir(), "history.html")
		if err := sim.WriteVisualization(path, info); err == nil {
			t.Logf("visualisation: %s", path)
		}
	}
	require.True(t, ok, "history is not linearizable: %v", result)

	waitConverged(t, g, allReplicas(n), 1)
}
