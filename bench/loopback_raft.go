package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The hashicorp/raft side of the loopback settings: three raftnode
// processes (this program run again, see raftproc.go) on TCP on 127.0.0.1,
// the load generator running inside the leader's process.

// raftProcs is three running raftnode processes.
type raftProcs struct {
	nodes []*child
	seq   int
}

// request sends one line to node c and waits up to timeout for the answer
// carrying its sequence number.
func (p *raftProcs) request(c *child, line string, timeout time.Duration) (raftReply, error) {
	p.seq++
	seq := p.seq
	if _, err := fmt.Fprintf(c.stdin, "%d %s\n", seq, line); err != nil {
		return raftReply{}, fmt.Errorf("%s: %q: %w%s", c.name, line, err, c.logTail())
	}
	return p.answer(c, seq, timeout)
}

// answer waits for node c's answer numbered seq, skipping late answers to
// earlier requests.
func (p *raftProcs) answer(c *child, seq int, timeout time.Duration) (raftReply, error) {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return raftReply{}, fmt.Errorf("%s exited%s", c.name, c.logTail())
			}
			var rep raftReply
			if json.Unmarshal([]byte(l), &rep) != nil || rep.Seq != seq {
				continue
			}
			return rep, nil
		case <-deadline:
			return raftReply{}, fmt.Errorf("%s did not answer request %d within %v%s", c.name, seq, timeout, c.logTail())
		}
	}
}

// startRaftProcs starts three nodes under dir and returns them with the
// index of a leader that has committed a barrier. Like the vsr nodes, a
// start is tried three times, on new ports and directories.
func startRaftProcs(cc *compareConfig, dir string, durable bool) (*raftProcs, int, error) {
	var errs []error
	for attempt := range 3 {
		p, leader, err := tryStartRaftProcs(cc, filepath.Join(dir, fmt.Sprintf("try-%d", attempt)), durable)
		if err == nil {
			return p, leader, nil
		}
		errs = append(errs, err)
	}
	return nil, -1, errors.Join(errs...)
}

func tryStartRaftProcs(cc *compareConfig, dir string, durable bool) (*raftProcs, int, error) {
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, -1, err
	}
	store, cache := "mem", 0
	if durable {
		store, cache = cc.raftStore, cc.raftCache
	}
	p := &raftProcs{}
	for i := range addrs {
		ndir := filepath.Join(dir, fmt.Sprintf("node-%d", i))
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			p.stop()
			return nil, -1, err
		}
		c, err := startChild(fmt.Sprintf("raft node %d", i), ndir+".log", childOptions{protocol: true}, cc.benchBin,
			"raftnode", "-id", strconv.Itoa(i), "-peers", strings.Join(addrs, ","), "-dir", ndir, "-store", store,
			"-cache", strconv.Itoa(cache), "-timeout", cc.raftTimeout.String(), "-keys", strconv.Itoa(cc.keys))
		if err != nil {
			p.stop()
			return nil, -1, err
		}
		p.nodes = append(p.nodes, c)
	}
	for _, c := range p.nodes {
		if _, err := p.answer(c, 0, 20*time.Second); err != nil {
			p.stop()
			return nil, -1, err
		}
	}
	leader, err := p.findLeader(20 * time.Second)
	if err != nil {
		p.stop()
		return nil, -1, err
	}
	return p, leader, nil
}

// findLeader polls the nodes until one says it leads and commits a
// barrier.
func (p *raftProcs) findLeader(within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	for {
		for i, c := range p.nodes {
			rep, err := p.request(c, "stats", 5*time.Second)
			if err != nil {
				return -1, err
			}
			if rep.State != "Leader" {
				continue
			}
			if rep, err := p.request(c, "barrier", 15*time.Second); err != nil {
				return -1, err
			} else if rep.OK {
				return i, nil
			}
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no raft leader within %v%s", within, p.nodes[0].logTail())
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// stats asks every node for its stats.
func (p *raftProcs) stats() ([]raftReply, error) {
	var out []raftReply
	for _, c := range p.nodes {
		rep, err := p.request(c, "stats", 5*time.Second)
		if err != nil {
			return nil, err
		}
		out = append(out, rep)
	}
	return out, nil
}

// stop ends the nodes' input, which makes each shut down, and SIGTERMs
// them.
func (p *raftProcs) stop() error { return stopChildren(p.nodes) }

// measureRaftLoopback starts three nodes, reads one node's idle resident
// set, has the leader run the load and stops them. Allocations are every
// process's over the whole run (warm-up included): the followers' from
// their stats before and after the run, the leader's as counted by its
// load generator around the run, divided by the writes acknowledged over
// the run.
func measureRaftLoopback(cc *compareConfig, durable bool, clients int, dir string, round int) (m measurement, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	p, leader, err := startRaftProcs(cc, dir, durable)
	if err != nil {
		return m, err
	}
	defer func() {
		if stopErr := p.stop(); stopErr != nil && err == nil {
			warn("raft loopback: %v", stopErr)
		}
	}()
	if m.idleRSS, err = idleRSS(p.nodes); err != nil {
		return m, err
	}
	before, err := p.stats()
	if err != nil {
		return m, err
	}
	if before[leader].State != "Leader" {
		// Leadership moved while the cluster idled: find the leader again.
		if leader, err = p.findLeader(10 * time.Second); err != nil {
			return m, err
		}
	}
	run := fmt.Sprintf("run clients=%d warmup=%v duration=%v seed=%d", clients, cc.warmup, cc.duration, round)
	res, err := p.request(p.nodes[leader], run, cc.warmup+cc.duration+time.Minute)
	if err != nil {
		return m, err
	}
	if !res.OK {
		return m, fmt.Errorf("raft node %d: %s", leader, res.Error)
	}
	after, err := p.stats()
	if err != nil {
		return m, err
	}
	allocs, allocBytes := res.RunAllocs, res.RunAllocBytes
	var termBefore, termAfter uint64
	for i := range p.nodes {
		termBefore, termAfter = max(termBefore, before[i].Term), max(termAfter, after[i].Term)
		if i != leader {
			allocs += after[i].Allocs - before[i].Allocs
			allocBytes += after[i].AllocBytes - before[i].AllocBytes
		}
	}
	// The leader first: its process also runs the load.
	order := []int{leader}
	for i := range p.nodes {
		if i != leader {
			order = append(order, i)
		}
	}
	for k, i := range order {
		_, hwm, err := procMemory(p.nodes[i].pid())
		if err != nil {
			return m, err
		}
		name := "follower"
		if k == 0 {
			name = "leader+load"
		}
		m.peakRSS = append(m.peakRSS, procRSS{name, hwm})
	}
	m.opsPerSec = float64(res.WindowOps) / cc.duration.Seconds()
	m.p50, m.p99 = time.Duration(res.P50Ns), time.Duration(res.P99Ns)
	m.allocsPerOp = float64(allocs) / float64(max(res.TotalOps, 1))
	m.bytesPerOp = float64(allocBytes) / float64(max(res.TotalOps, 1))
	m.errors = res.Errors
	m.elections = termAfter - termBefore
	if res.FirstError != "" {
		warn("raft loopback, %d clients: first error: %s", clients, res.FirstError)
	}
	return m, nil
}
