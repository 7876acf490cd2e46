package cluster

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests run real `vsr node` processes, started by the test from a
// binary it builds, on loopback.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// vsrBinary builds cmd/vsr once per test run.
func vsrBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vsr-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "vsr")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/vsr").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// nodeProc is one `vsr node` process.
type nodeProc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNodeProc starts replica index of replicas; prefix, if set, runs the
// node through it (such as ip netns exec NAME).
func startNodeProc(t testing.TB, prefix []string, replicas string, index int, dataDir string, extra ...string) *nodeProc {
	t.Helper()
	args := append(append([]string{}, prefix...), vsrBinary(t), "node", "-replicas", replicas,
		"-index", fmt.Sprint(index), "-data-dir", dataDir)
	args = append(args, extra...)
	p := &nodeProc{out: &syncBuffer{}}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() { p.kill9() })
	return p
}

// kill9 kills the process with SIGKILL, as a crash would, and reaps it.
func (p *nodeProc) kill9() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = p.cmd.Process.Wait()
	p.cmd.ProcessState = &os.ProcessState{}
}

// freeAddrs returns n loopback addresses with free ports.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < n; i++ {
		port, err := freePort("127.0.0.1")
		require.NoError(t, err)
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	}
	return addrs
}

// waitFor polls cond every 20 ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Three node processes that keep no disk (-memory, the paper's design)
// serve a concurrent workload; the primary is killed with SIGKILL in the
// middle, then restarted (it recovers from its peers); the whole history
// must be linearizable and the replicas must converge.
func TestProcessesSurviveKill9OfThePrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	addrs := freeAddrs(t, 3)
	replicas := strings.Join(addrs, ",")
	dir := t.TempDir()
	procs := make([]*nodeProc, 3)
	for i := range procs {
		procs[i] = startNodeProc(t, nil, replicas, i, filepath.Join(dir, fmt.Sprint(i)), "-memory")
	}
	cfg := Config{ClusterID: 1, Replicas: addrs}
	c, err := NewClient(cfg, ClientOptions{Sessions: 6})
	require.NoError(t, err)
	defer c.Close()
	waitFor(t, "a primary", 15*time.Second, func() bool { return primaryOf(c.StatusWithoutDigest(time.Second)) >= 0 })

	w, stop := startWorkload(t, c)
	p := primaryOf(c.StatusWithoutDigest(time.Second))
	require.GreaterOrEqual(t, p, 0)
	procs[p].kill9()
	killed := time.Now()
	waitFor(t, "another primary", 20*time.Second, func() bool {
		q := primaryOf(c.StatusWithoutDigest(500 * time.Millisecond))
		return q >= 0 && q != p
	})
	w.await(t, "operations after the kill", 20)
	t.Logf("new primary within %s of kill -9", time.Since(killed).Round(time.Millisecond))

	procs[p] = startNodeProc(t, nil, replicas, p, filepath.Join(dir, fmt.Sprint(p)), "-memory")
	waitFor(t, "the restarted node to recover", 20*time.Second, func() bool {
		s := c.StatusWithoutDigest(time.Second)[p]
		return s != nil && s.Status == "normal"
	})
	w.await(t, "operations after the restart", 100)
	stop()
	waitFor(t, "the replicas to converge", 20*time.Second, func() bool { return converged(c) })
	require.Contains(t, procs[p].out.String(), "recovering from its peers", "the restarted node ran recovery")
	w.check(t)
}

// freePort asks the kernel for a free TCP port on host.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("vsr: no free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
