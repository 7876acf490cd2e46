package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/sim"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// workload runs concurrent clients against a group and records every
// operation in a history for the linearizability check. An operation that
// fails with a timeout is left open: it may or may not have happened.
type workload struct {
	history sim.History
	ok      atomic.Int64
	unknown atomic.Int64
	start   time.Time
	mu      sync.Mutex
	errs    []error
	// lastOK is when the latest operation completed, and maxGap the
	// longest time between two completions, in ns since start.
	lastOK, maxGap int64
}

func (w *workload) now() int64 { return int64(time.Since(w.start)) }

// run starts workers goroutines on c until ctx ends, and waits for them.
func (w *workload) run(ctx context.Context, c *actors.Client, workers, keys int) {
	var wg sync.WaitGroup
	for k := 0; k < workers; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(k), 7))
			for seq := 0; ctx.Err() == nil; seq++ {
				w.one(ctx, c, k, seq, rng, keys)
			}
		}(k)
	}
	wg.Wait()
}

func (w *workload) one(ctx context.Context, c *actors.Client, k, seq int, rng *rand.Rand, keys int) {
	key := fmt.Sprintf("k%d", rng.IntN(keys))
	value := fmt.Sprintf("w%d.%d", k, seq)
	var in sim.Input
	var call func(context.Context) ([]byte, error)
	switch rng.IntN(3) {
	case 0:
		in = sim.Input{Kind: sim.OpPut, Key: key, Value: value}
		call = func(ctx context.Context) ([]byte, error) { return c.Execute(ctx, kv.PutOp(key, []byte(value))) }
	case 1:
		in = sim.Input{Kind: sim.OpGet, Key: key}
		call = func(ctx context.Context) ([]byte, error) { return c.Read(ctx, kv.GetOp(key)) }
	default:
		in = sim.Input{Kind: sim.OpPutIfAbsent, Key: key, Value: value}
		call = func(ctx context.Context) ([]byte, error) {
			return c.Execute(ctx, kv.PutIfAbsentOp(key, []byte(value)))
		}
	}
	id := w.history.Invoke(k, in, w.now())
	opCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	res, err := call(opCtx)
	cancel()
	w.complete(id, res, err)
}

// complete records the outcome of history operation id and returns its
// result, or nil when the operation failed or its outcome is unknown (it is
// then left open). Errors other than a timeout or a closed client are kept
// for check.
func (w *workload) complete(id int, res []byte, err error) *kv.Result {
	if err != nil {
		w.unknown.Add(1)
		if !errors.Is(err, actors.ErrTimeout) && !errors.Is(err, actors.ErrClosed) {
			w.mu.Lock()
			w.errs = append(w.errs, err)
			w.mu.Unlock()
		}
		return nil // left open: the outcome is unknown
	}
	r, err := kv.DecodeResult(res)
	if err != nil {
		w.mu.Lock()
		w.errs = append(w.errs, err)
		w.mu.Unlock()
		return nil
	}
	now := w.now()
	w.history.Complete(id, sim.Output{Found: r.Found, Value: string(r.Value), Swapped: r.Swapped}, now)
	w.ok.Add(1)
	w.mu.Lock()
	w.maxGap, w.lastOK = max(w.maxGap, now-w.lastOK), max(w.lastOK, now)
	w.mu.Unlock()
	return r
}

// check requires a linearizable history and no unexpected errors.
func (w *workload) check(t *testing.T) {
	t.Helper()
	require.Empty(t, w.errs, "unexpected client errors")
	ok, result, _ := w.history.Check(60 * time.Second)
	require.True(t, ok, "the client history is not linearizable (checker: %s)", result)
	t.Logf("history: %d operations completed, %d with unknown outcome", w.ok.Load(), w.unknown.Load())
}

// longestGap is the longest time no operation completed, from the first
// completion on.
func (w *workload) longestGap() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Duration(w.maxGap)
}

// primaryOf returns the index of the replica that reports itself normal and
// primary in the highest view, or -1.
func primaryOf(st []*actors.StatusReply) int {
	best, view := -1, uint64(0)
	for j, s := range st {
		if s != nil && s.Status == "normal" && int(s.Primary) == j && (best < 0 || s.View > view) {
			best, view = j, s.View
		}
	}
	return best
}

// converged reports whether every replica answers, normal in one view, with
// the same commit number and state. It asks for the digests only once the
// status without them shows the rest agreeing: a digest costs every replica
// a snapshot of its state machine, and this is polled.
func converged(c *Client) bool {
	return agreed(c.StatusWithoutDigest(time.Second), false) && agreed(c.Status(time.Second), true)
}

// agreed reports whether every replica answers, normal in one view, with the
// same commit number and, if digests is set, the same state digest.
func agreed(st []*actors.StatusReply, digests bool) bool {
	for _, s := range st {
		if s == nil || s.Status != "normal" || s.View != st[0].View || s.CommitNumber != st[0].CommitNumber ||
			(digests && string(s.Digest) != string(st[0].Digest)) {
			return false
		}
	}
	return true
}

// startWorkload starts six clients on three keys against c and returns once
// they have completed some operations; stop ends them and waits.
func startWorkload(t *testing.T, c *Client) (w *workload, stop func()) {
	t.Helper()
	w = &workload{start: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx, c.Client, 6, 3); close(done) }()
	w.await(t, "the workload to get going", 100)
	return w, func() { cancel(); <-done }
}

// await waits until n more operations than now have completed.
func (w *workload) await(t *testing.T, what string, n int64) {
	t.Helper()
	target := w.ok.Load() + n
	deadline := time.Now().Add(20 * time.Second)
	for w.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
