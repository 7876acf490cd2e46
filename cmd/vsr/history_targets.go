package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/cluster"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/supervisor"
	"github.com/vsrgo/vsr/vsr"
)

// The groups vsr history runs against: in this process, or node processes on
// loopback.

type inprocTarget struct {
	g    *supervisor.Group
	c, p *actors.Client
}

func startInproc(o historyOptions, factory statemachine.Factory) (*inprocTarget, error) {
	g, err := supervisor.StartGroup(supervisor.GroupConfig{ClusterID: 1, Replicas: 3, NewStateMachine: factory, Timing: o.timing()})
	if err != nil {
		return nil, err
	}
	t := &inprocTarget{g: g}
	if t.c, err = g.NewClient(o.clients); err == nil {
		t.p, err = g.NewClient(1)
	}
	if err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

func (t *inprocTarget) writer() historyWriter { return t.c }
func (t *inprocTarget) probe() historyWriter  { return t.p }
func (t *inprocTarget) heapPerReplica() bool  { return false }
func (t *inprocTarget) kill(i int) error      { return t.g.Kill(i) }
func (t *inprocTarget) restart(i int) error   { return t.g.Restart(i) }

func (t *inprocTarget) figures(withMemory, withDigest bool, timeout time.Duration) []replicaFigures {
	var heap uint64
	if withMemory {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapInuse
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var st []supervisor.ReplicaStatus
	if withDigest {
		st = t.g.Status(ctx)
	} else {
		st = t.g.StatusWithoutDigest(ctx)
	}
	out := make([]replicaFigures, len(st))
	for i, s := range st {
		if s.Down {
			continue
		}
		out[i] = replicaFigures{Up: true, Normal: s.Status == vsr.StatusNormal, View: s.View, Primary: s.Primary,
			Op: s.OpNumber, Commit: s.CommitNumber, LogBase: s.LogBase, Checkpoint: s.CheckpointOpNumber,
			Largest: s.LargestMessage, Heap: heap, Installed: s.CheckpointsInstalled, Oversized: s.Oversized,
			CPFailures: s.CheckpointFailures, Sessions: s.Sessions}
		if withDigest {
			out[i].Digest = append([]byte(nil), s.Digest[:]...)
		}
	}
	return out
}

func (t *inprocTarget) stop() {
	if t.c != nil {
		t.c.Close()
	}
	if t.p != nil {
		t.p.Close()
	}
	t.g.Stop()
}

type loopbackTarget struct {
	bin   string
	addrs []string
	root  string
	extra []string
	mu    sync.Mutex
	procs []*exec.Cmd
	outs  []*historyBuffer
	marks []int // each node's output length at its latest start
	c, p  *cluster.Client
	sig   chan os.Signal
}

// historyBuffer keeps a node's output for when something goes wrong.
type historyBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *historyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *historyBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startLoopback(o historyOptions) (*loopbackTarget, error) {
	bin := o.nodeBinary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	root, err := os.MkdirTemp("", "vsr-history-")
	if err != nil {
		return nil, err
	}
	t := &loopbackTarget{bin: bin, root: root, procs: make([]*exec.Cmd, 3), outs: make([]*historyBuffer, 3), marks: make([]int, 3)}
	// A Ctrl-C must not leave the nodes running.
	t.sig = make(chan os.Signal, 1)
	signal.Notify(t.sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		if _, ok := <-t.sig; ok {
			t.stop()
			os.Exit(130)
		}
	}()
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.stop()
			return nil, err
		}
		t.addrs = append(t.addrs, l.Addr().String())
		_ = l.Close()
	}
	if o.checkpointInterval != 0 {
		t.extra = append(t.extra, "-checkpoint-interval", fmt.Sprint(o.checkpointInterval))
	}
	if o.trailingOps != 0 {
		t.extra = append(t.extra, "-trailing-ops", fmt.Sprint(o.trailingOps))
	}
	if o.pipelineMax != 0 {
		t.extra = append(t.extra, "-pipeline-max", fmt.Sprint(o.pipelineMax))
	}
	for i := range 3 {
		if err := t.restart(i); err != nil {
			t.stop()
			return nil, err
		}
	}
	cfg := cluster.Config{ClusterID: 1, Replicas: t.addrs}
	if t.c, err = cluster.NewClient(cfg, cluster.ClientOptions{Sessions: o.clients}); err == nil {
		t.p, err = cluster.NewClient(cfg, cluster.ClientOptions{Sessions: 1})
	}
	if err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

func (t *loopbackTarget) writer() historyWriter { return t.c }
func (t *loopbackTarget) probe() historyWriter  { return t.p }
func (t *loopbackTarget) heapPerReplica() bool  { return true }

// restart starts node i, the first time or again on the same address and
// data directory. The nodes keep no disk (-memory), so that a restarted
// node recovers from its peers: vsr history measures that recovery, and
// the checkpoint transfer it needs, as the history grows.
func (t *loopbackTarget) restart(i int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	args := append([]string{"node", "-replicas", strings.Join(t.addrs, ","), "-index", fmt.Sprint(i),
		"-data-dir", filepath.Join(t.root, fmt.Sprint(i)), "-memory"}, t.extra...)
	cmd := exec.Command(t.bin, args...)
	if t.outs[i] == nil {
		t.outs[i] = &historyBuffer{}
	}
	cmd.Stdout, cmd.Stderr = t.outs[i], t.outs[i]
	t.marks[i] = len(t.outs[i].String())
	if err := cmd.Start(); err != nil {
		return err
	}
	t.procs[i] = cmd
	return nil
}

// kill kills node i with SIGKILL, as a crash would, and reaps it.
func (t *loopbackTarget) kill(i int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	cmd := t.procs[i]
	if cmd == nil {
		return fmt.Errorf("node %d is not running", i)
	}
	t.procs[i] = nil
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_ = cmd.Wait()
	return nil
}

func (t *loopbackTarget) figures(withMemory, withDigest bool, timeout time.Duration) []replicaFigures {
	var st []*actors.StatusReply
	switch {
	case withDigest:
		st = t.c.Status(timeout)
	case withMemory:
		st = t.c.StatusWithMemory(timeout)
	default:
		st = t.c.StatusWithoutDigest(timeout)
	}
	out := make([]replicaFigures, len(st))
	for i, s := range st {
		if s == nil {
			continue
		}
		out[i] = replicaFigures{Up: true, Normal: s.Status == vsr.StatusNormal.String(), View: s.View, Primary: int(s.Primary),
			Op: s.OpNumber, Commit: s.CommitNumber, LogBase: s.LogBase, Checkpoint: s.CheckpointOpNumber,
			Largest: int(s.LargestMessage), Heap: s.HeapInUse, Installed: s.CheckpointsInstalled, Oversized: s.Oversized,
			CPFailures: s.CheckpointFailures, Sessions: int(s.Sessions), Digest: s.Digest}
	}
	return out
}

func (t *loopbackTarget) stop() {
	if t.c != nil {
		t.c.Close()
	}
	if t.p != nil {
		t.p.Close()
	}
	for i := range t.procs {
		_ = t.kill(i)
	}
	if t.sig != nil {
		signal.Stop(t.sig)
		close(t.sig)
		t.sig = nil
	}
	_ = os.RemoveAll(t.root)
}

// timeline is what node i has printed since its latest start, on its own
// clock (seconds since its main began), one event per line.
func (t *loopbackTarget) timeline(i int) string {
	t.mu.Lock()
	from := t.marks[i]
	t.mu.Unlock()
	var parts []string
	for _, line := range strings.Split(t.outs[i].String()[from:], "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			parts = append(parts, fmt.Sprintf("%s %s", f[0], strings.Join(f[1:], " ")))
		}
	}
	return strings.Join(parts, "; ")
}

// nodeOutput is the tail of every node's output, for an error report.
func (t *loopbackTarget) nodeOutput() string {
	var b strings.Builder
	for i, o := range t.outs {
		if o == nil {
			continue
		}
		s := o.String()
		if len(s) > 2000 {
			s = "..." + s[len(s)-2000:]
		}
		fmt.Fprintf(&b, "--- node %d ---\n%s", i, s)
	}
	return b.String()
}
