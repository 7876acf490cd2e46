package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/cluster"
	"github.com/vsrgo/vsr/vsr"
)

// The vsr side of the loopback settings: three `vsr node` processes, one
// replica each, and one `vsr bench -json` client process, all on 127.0.0.1.

// findRepoRoot is the vsr checkout: -repo if given, else the first of the
// working directory and its parents whose go.mod is module
// github.com/vsrgo/vsr (`go -C bench run .` works in bench/, so that is
// its parent).
func findRepoRoot(flagDir string) (string, error) {
	isRoot := func(dir string) bool {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
				return f[1] == "github.com/vsrgo/vsr"
			}
		}
		return false
	}
	if flagDir != "" {
		if !isRoot(flagDir) {
			return "", fmt.Errorf("-repo %s: no go.mod of module github.com/vsrgo/vsr there", flagDir)
		}
		return filepath.Abs(flagDir)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module github.com/vsrgo/vsr in the working directory or its parents; give -repo")
		}
		dir = parent
	}
}

// buildVSR builds cmd/vsr of the checkout at repo into out, once per run,
// so that every loopback measurement runs the same binary.
func buildVSR(repo, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building cmd/vsr: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "-C", repo, "build", "-o", out, "./cmd/vsr")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go -C %s build ./cmd/vsr: %w\n%s", repo, err, b)
	}
	return nil
}

// gitDescribe names the checkout's commit, "-dirty" if it has changes.
func gitDescribe(repo string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, "git", "-C", repo, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown commit"
	}
	return strings.TrimSpace(string(b))
}

// vsrGroup is three running `vsr node` processes and a client that asks
// them for their status.
type vsrGroup struct {
	nodes    []*child
	replicas string
	status   *cluster.Client
}

// startVSRNodes starts a group under dir and waits until every replica is
// normal in one view. A start can fail because another process took a
// port between freeAddrs and the node's bind, so it is tried three times,
// on new ports and new directories.
func startVSRNodes(bin, dir string, durable bool) (*vsrGroup, error) {
	var errs []error
	for attempt := range 3 {
		g, err := tryStartVSRNodes(bin, filepath.Join(dir, fmt.Sprintf("try-%d", attempt)), durable)
		if err == nil {
			return g, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func tryStartVSRNodes(bin, dir string, durable bool) (*vsrGroup, error) {
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, err
	}
	g := &vsrGroup{replicas: strings.Join(addrs, ",")}
	for i := range addrs {
		ndir := filepath.Join(dir, fmt.Sprintf("node-%d", i))
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			g.stop()
			return nil, err
		}
		args := []string{"node", "-cluster-id", "1", "-replicas", g.replicas, "-index", strconv.Itoa(i), "-data-dir", ndir}
		if !durable {
			args = append(args, "-memory")
		}
		c, err := startChild(fmt.Sprintf("vsr node %d", i), ndir+".log", childOptions{}, bin, args...)
		if err != nil {
			g.stop()
			return nil, err
		}
		g.nodes = append(g.nodes, c)
	}
	// Proto.Actor's remoting backs off from an endpoint it could not reach,
	// so the status client is started only once every node listens.
	if err := waitListening(addrs, g.nodes, 20*time.Second); err != nil {
		g.stop()
		return nil, err
	}
	if g.status, err = cluster.NewClient(cluster.Config{ClusterID: 1, Replicas: addrs}, cluster.ClientOptions{}); err != nil {
		g.stop()
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := g.exitedNode(); err != nil {
			g.stop()
			return nil, err
		}
		if st := g.status.StatusWithoutDigest(500 * time.Millisecond); agreeNormal(st) {
			return g, nil
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("the vsr nodes did not agree on a normal view within 20s%s", g.nodes[0].logTail())
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// agreeNormal reports whether every replica answered, normal in one view.
func agreeNormal(st []*actors.StatusReply) bool {
	for _, s := range st {
		if s == nil || s.Status != vsr.StatusNormal.String() || s.View != st[0].View {
			return false
		}
	}
	return len(st) > 0
}

// exitedNode is an error if a node has died.
func (g *vsrGroup) exitedNode() error {
	for _, c := range g.nodes {
		if c.exited() {
			return fmt.Errorf("%s exited (%v)%s", c.name, c.waitErr, c.logTail())
		}
	}
	return nil
}

// counters reads every node's cumulative process allocations and the
// highest view, asking up to three times for replicas that do not answer.
func (g *vsrGroup) counters() (allocs, allocBytes, view uint64, err error) {
	for range 3 {
		st := g.status.StatusWithoutDigest(2 * time.Second)
		allocs, allocBytes, view = 0, 0, 0
		complete := true
		for _, s := range st {
			if s == nil {
				complete = false
				break
			}
			allocs += s.Allocs
			allocBytes += s.AllocBytes
			view = max(view, s.View)
		}
		if complete {
			return allocs, allocBytes, view, nil
		}
	}
	return 0, 0, 0, fmt.Errorf("a vsr node did not answer its status three times in 2s")
}

// stop closes the status client and stops the nodes (SIGTERM, which a node
// answers with a clean stop).
func (g *vsrGroup) stop() error {
	var err error
	if g.status != nil {
		err = within(10*time.Second, "closing the status client", func() error { g.status.Close(); return nil })
	}
	return errors.Join(err, stopChildren(g.nodes))
}

// vsrBenchJSON is the part of `vsr bench -json` this benchmark reads.
type vsrBenchJSON struct {
	Ops               uint64   `json:"ops"`
	Errors            uint64   `json:"errors"`
	P50Us             float64  `json:"p50_us"`
	P99Us             float64  `json:"p99_us"`
	TotalOps          uint64   `json:"total_ops"`
	ProcessAllocs     uint64   `json:"process_allocs"`
	ProcessAllocBytes uint64   `json:"process_alloc_bytes"`
	ProcessPeakRSS    uint64   `json:"process_peak_rss_bytes"`
	ErrorMessages     []string `json:"error_messages"`
}

// measureVSRLoopback starts a group, reads one node's idle resident set,
// runs `vsr bench` against it and stops it. Allocations are every
// process's over the whole run (warm-up included): the nodes' from their
// status before and after the client ran, the client's from its report,
// divided by the writes the client had acknowledged over that run.
func measureVSRLoopback(cc *compareConfig, durable bool, clients int, dir string) (m measurement, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	g, err := startVSRNodes(cc.vsrBin, dir, durable)
	if err != nil {
		return m, err
	}
	defer func() {
		if stopErr := g.stop(); stopErr != nil && err == nil {
			warn("vsr loopback: %v", stopErr)
		}
	}()
	if m.idleRSS, err = idleRSS(g.nodes); err != nil {
		return m, err
	}
	a0, b0, v0, err := g.counters()
	if err != nil {
		return m, err
	}
	var out bytes.Buffer
	cl, err := startChild("vsr bench", filepath.Join(dir, "client.log"), childOptions{stdout: &out}, cc.vsrBin,
		"bench", "-replicas", g.replicas, "-clients", strconv.Itoa(clients), "-keys", strconv.Itoa(cc.keys),
		"-warmup", cc.warmup.String(), "-duration", cc.duration.String(), "-json")
	if err != nil {
		return m, err
	}
	if err := cl.wait(cc.warmup + cc.duration + time.Minute); err != nil {
		cl.stop(time.Second)
		return m, fmt.Errorf("vsr bench: %w%s", err, cl.logTail())
	}
	var rep vsrBenchJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return m, fmt.Errorf("vsr bench printed no JSON report: %w: %q", err, out.String())
	}
	if rep.TotalOps == 0 || rep.ProcessAllocs == 0 {
		return m, fmt.Errorf("vsr bench reported no total_ops or process_allocs (is cmd/vsr older than this benchmark?)")
	}
	a1, b1, v1, err := g.counters()
	if err != nil {
		return m, err
	}
	if err := g.exitedNode(); err != nil {
		return m, err
	}
	for i, c := range g.nodes {
		_, hwm, err := procMemory(c.pid())
		if err != nil {
			return m, err
		}
		m.peakRSS = append(m.peakRSS, procRSS{fmt.Sprintf("n%d", i), hwm})
	}
	// The client exits by itself, so it reports its own VmHWM at the end
	// of its run.
	if rep.ProcessPeakRSS > 0 {
		m.peakRSS = append(m.peakRSS, procRSS{"client", rep.ProcessPeakRSS})
	}
	m.opsPerSec = float64(rep.Ops) / cc.duration.Seconds()
	m.p50 = time.Duration(rep.P50Us * 1e3)
	m.p99 = time.Duration(rep.P99Us * 1e3)
	m.allocsPerOp = float64(a1-a0+rep.ProcessAllocs) / float64(rep.TotalOps)
	m.bytesPerOp = float64(b1-b0+rep.ProcessAllocBytes) / float64(rep.TotalOps)
	m.errors = rep.Errors
	m.elections = v1 - v0
	if len(rep.ErrorMessages) > 0 {
		warn("vsr loopback, %d clients: client errors: %s", clients, strings.Join(rep.ErrorMessages, "; "))
	}
	return m, nil
}
