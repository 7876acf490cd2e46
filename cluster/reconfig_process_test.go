package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
)

// TestProcessesReplaceGrowAndShrink runs three `vsr node` processes, each on
// its own disk, under concurrent writes and reads, and reconfigures them
// with `vsr admin reconfigure` while the load runs: one node is killed with
// SIGKILL for good and replaced by a fresh node at a new address, the group
// grows to five, then shrinks back to three. The clients, started with the
// first configuration, follow every change. The whole history must be
// linearizable, every acknowledged write must be readable at the end, and
// the nodes removed must exit on their own.
func TestProcessesReplaceGrowAndShrink(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	addrs := freeAddrs(t, 6)
	dir := t.TempDir()
	procs := map[string]*nodeProc{}
	start := func(members []string, self string, extra ...string) {
		index := slices.Index(members, self)
		procs[self] = startNodeProc(t, nil, strings.Join(members, ","), index,
			filepath.Join(dir, strings.ReplaceAll(self, ":", "_")), extra...)
	}
	first := addrs[:3]
	for _, a := range first {
		start(first, a)
	}
	c, err := NewClient(Config{ClusterID: 1, Replicas: first}, ClientOptions{Sessions: 6})
	require.NoError(t, err)
	defer c.Close()
	waitFor(t, "a primary", 15*time.Second, func() bool { return primaryOf(c.StatusWithoutDigest(time.Second)) >= 0 })

	w, stop := startWorkload(t, c)
	acked := startAckedWriter(c.Client)

	// Replace: the primary dies for good (the group first changes views);
	// a new node at a new address takes its place.
	p := primaryOf(c.StatusWithoutDigest(time.Second))
	require.GreaterOrEqual(t, p, 0)
	procs[first[p]].kill9()
	stay := slices.Delete(slices.Clone(first), p, p+1)
	replaced := []string{stay[0], stay[1], addrs[3]}
	start(replaced, addrs[3], "-join")
	reconfigureByCommand(t, replaced, 1)
	w.await(t, "operations after the replacement", 50)

	// Grow to five.
	grown := []string{stay[0], stay[1], addrs[3], addrs[4], addrs[5]}
	start(grown, addrs[4], "-join")
	start(grown, addrs[5], "-join")
	reconfigureByCommand(t, grown, 2)
	w.await(t, "operations after growing", 50)

	// Shrink to three: the two removed nodes exit on their own.
	shrunk := []string{stay[0], addrs[3], addrs[5]}
	reconfigureByCommand(t, shrunk, 3)
	w.await(t, "operations after shrinking", 50)
	for _, gone := range []string{stay[1], addrs[4]} {
		p := procs[gone]
		require.NoError(t, awaitExit(p, 20*time.Second), "a removed node exits cleanly:\n%s", p.out.String())
		require.Contains(t, p.out.String(), "not a member of the group any more")
	}

	stop()
	writes := acked.stop()
	final, err := NewClient(Config{ClusterID: 1, Replicas: shrunk, Epoch: 3}, ClientOptions{})
	require.NoError(t, err)
	defer final.Close()
	waitFor(t, "the final members to converge", 20*time.Second, func() bool { return converged(final) })
	for _, s := range final.StatusWithoutDigest(time.Second) {
		require.Equal(t, uint64(3), s.Epoch)
		require.Equal(t, shrunk, s.Members)
	}
	acked.verify(t, final.Client, writes)
	w.check(t)
	t.Logf("longest time with no operation completing, across kill -9, replace, grow and shrink: %s; %d acknowledged writes checked",
		w.longestGap().Round(time.Millisecond), len(writes))
}

// reconfigureByCommand runs `vsr admin reconfigure` to members and checks it
// reports the epoch expected.
func reconfigureByCommand(t *testing.T, members []string, epoch uint64) {
	t.Helper()
	out, err := exec.Command(vsrBinary(t), "admin", "reconfigure", "-replicas", strings.Join(members, ","),
		"-timeout", "30s").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), fmt.Sprintf("committed: epoch %d", epoch))
}

// awaitExit waits for p's process to end on its own, and returns its exit
// error (nil for status 0).
func awaitExit(p *nodeProc, within time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		// Only the goroutine waits on the process: a second Wait would race it.
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return fmt.Errorf("still running after %s", within)
	}
}

// ackedWriter writes a fresh key at a time, one after another, and keeps
// each write the group acknowledged.
type ackedWriter struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	keys   []string
}

func startAckedWriter(c *actors.Client) *ackedWriter {
	ctx, cancel := context.WithCancel(context.Background())
	a := &ackedWriter{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for i := 0; ctx.Err() == nil; i++ {
			key := fmt.Sprintf("acked-%d", i)
			opCtx, cancelOp := context.WithTimeout(ctx, 2*time.Second)
			_, err := c.Execute(opCtx, kv.PutOp(key, []byte(key)))
			cancelOp()
			if err == nil {
				a.mu.Lock()
				a.keys = append(a.keys, key)
				a.mu.Unlock()
			}
		}
	}()
	return a
}

// stop ends the writer and returns the acknowledged keys.
func (a *ackedWriter) stop() []string {
	a.cancel()
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keys
}

// verify reads every acknowledged key back.
func (a *ackedWriter) verify(t *testing.T, c *actors.Client, keys []string) {
	t.Helper()
	require.NotEmpty(t, keys)
	for _, key := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.Read(ctx, kv.GetOp(key))
		cancel()
		require.NoError(t, err, key)
		r, err := kv.DecodeResult(res)
		require.NoError(t, err)
		require.True(t, r.Found, "acknowledged write %s is missing", key)
		require.Equal(t, key, string(r.Value))
	}
}
