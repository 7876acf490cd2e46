package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vsrgo/vsr/internal/procstats"
)

// The hidden raftnode subcommand: one hashicorp/raft node of a loopback
// cluster, in a process of its own, on raft's TCP transport (a
// NetworkTransport over TCP on 127.0.0.1). The benchmark starts three and
// drives them over a line protocol, one request a line on standard input
// and one JSON answer a line on standard output, each carrying the
// request's sequence number (so that an answer that comes too late is never
// taken for the answer to a later request):
//
//	<seq> stats                 state, term, cumulative heap allocations, RSS
//	<seq> barrier               a leader commits a barrier (raft.Barrier)
//	<seq> run clients=64 warmup=1s duration=4s seed=3
//	                            the leader runs the closed-loop load on itself
//	                            (as hashicorp/raft users call Apply on the
//	                            leader) and answers with the result; a
//	                            follower answers that it is not the leader
//	<seq> quit                  shut down and exit
//
// Once the node is up it prints {"seq":0,"ready":true}. It also shuts down
// at the end of its input (its parent has gone) and on SIGINT or SIGTERM.

// raftReply is one answer of a raftnode.
type raftReply struct {
	Seq   int    `json:"seq"`
	Ready bool   `json:"ready,omitempty"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// stats
	State      string `json:"state,omitempty"`
	Term       uint64 `json:"term,omitempty"`
	Allocs     uint64 `json:"allocs,omitempty"`
	AllocBytes uint64 `json:"alloc_bytes,omitempty"`
	RSS        uint64 `json:"rss,omitempty"`
	HWM        uint64 `json:"hwm,omitempty"`
	// run
	WindowOps     uint64 `json:"window_ops,omitempty"`
	TotalOps      uint64 `json:"total_ops,omitempty"`
	Errors        uint64 `json:"errors,omitempty"`
	FirstError    string `json:"first_error,omitempty"`
	P50Ns         int64  `json:"p50_ns,omitempty"`
	P99Ns         int64  `json:"p99_ns,omitempty"`
	Elections     uint64 `json:"elections,omitempty"`
	RunAllocs     uint64 `json:"run_allocs,omitempty"`
	RunAllocBytes uint64 `json:"run_alloc_bytes,omitempty"`
}

func runRaftNode(args []string) int {
	fl := flag.NewFlagSet("raftnode", flag.ContinueOnError)
	id := fl.Int("id", -1, "this node's index in -peers")
	peers := fl.String("peers", "", "comma-separated host:port of every node, by index")
	dir := fl.String("dir", "", "directory for a durable store and its snapshots")
	store := fl.String("store", "mem", "log and stable store: mem, boltdb or wal")
	cache := fl.Int("cache", 0, "if > 0, a write-through raft.LogCache of this many entries")
	timeout := fl.Duration("timeout", 100*time.Millisecond, "heartbeat, election and leader-lease timeouts")
	keys := fl.Int("keys", 65536, "distinct keys, written uniformly at random")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	addrs := strings.Split(*peers, ",")
	if *id < 0 || *id >= len(addrs) || *keys < 1 {
		fmt.Fprintln(os.Stderr, "raftnode: bad -id, -peers or -keys")
		return 2
	}
	n, err := startRaftNode(*id, addrs, *dir, *store, *cache, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftnode:", err)
		return 1
	}
	n.keys = keyNames(*keys)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		os.Exit(n.shutdown())
	}()
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(raftReply{Ready: true, OK: true}); err != nil {
		return n.shutdown()
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		seq, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		if f[1] == "quit" {
			break
		}
		rep := n.handle(f[1], f[2:])
		rep.Seq = seq
		if err := out.Encode(rep); err != nil {
			break
		}
	}
	return n.shutdown()
}

// raftNode is this process's node.
type raftNode struct {
	r      *raft.Raft
	trans  *raft.NetworkTransport
	stores *raftStores
	keys   []string
	// The end of input and a signal can both shut the node down: once.
	once sync.Once
	code int
}

func startRaftNode(id int, addrs []string, dir, store string, cache int, timeout time.Duration) (*raftNode, error) {
	st, err := openRaftStores(store, dir, cache)
	if err != nil {
		return nil, err
	}
	// A pool of 3 connections per peer and a 10s I/O timeout, as Consul and
	// Nomad use; log output goes to standard error, our log file.
	trans, err := raft.NewTCPTransport(addrs[id], nil, 3, 10*time.Second, os.Stderr)
	if err != nil {
		st.close()
		return nil, err
	}
	var servers []raft.Server
	for i, a := range addrs {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raftID(i), Address: raft.ServerAddress(a)})
	}
	conf := raftConfig(id, timeout)
	// Every node bootstraps the same configuration, which raft allows.
	if err := raft.BootstrapCluster(conf, st.logs, st.stable, st.snaps, trans, raft.Configuration{Servers: servers}); err != nil {
		trans.Close()
		st.close()
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	r, err := raft.NewRaft(conf, newKVFSM(), st.logs, st.stable, st.snaps, trans)
	if err != nil {
		trans.Close()
		st.close()
		return nil, err
	}
	return &raftNode{r: r, trans: trans, stores: st}, nil
}

// shutdown stops the node, waiting at most 10s for raft, and gives the
// process's exit code.
func (n *raftNode) shutdown() int {
	n.once.Do(func() { n.code = n.doShutdown() })
	return n.code
}

func (n *raftNode) doShutdown() int {
	done := make(chan error, 1)
	go func() { done <- n.r.Shutdown().Error() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		err = errors.New("raft did not shut down within 10s")
	}
	err = errors.Join(err, n.trans.Close(), n.stores.close())
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftnode:", err)
		return 1
	}
	return 0
}

func (n *raftNode) handle(cmd string, args []string) raftReply {
	switch cmd {
	case "stats":
		rep := raftReply{OK: true, State: n.r.State().String(), Term: raftTerm(n.r)}
		rep.Allocs, rep.AllocBytes = procstats.Allocs()
		rep.RSS, rep.HWM, _ = procMemory(os.Getpid())
		return rep
	case "barrier":
		if err := n.r.Barrier(raftTimeout).Error(); err != nil {
			return raftReply{Error: err.Error()}
		}
		return raftReply{OK: true}
	case "run":
		return n.run(args)
	}
	return raftReply{Error: fmt.Sprintf("unknown command %q", cmd)}
}

// run runs the load on this node if it leads.
func (n *raftNode) run(args []string) raftReply {
	p := loadParams{keys: n.keys}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "clients":
			p.clients, err = strconv.Atoi(v)
		case "warmup":
			p.warmup, err = time.ParseDuration(v)
		case "duration":
			p.duration, err = time.ParseDuration(v)
		case "seed":
			p.seed, err = strconv.ParseUint(v, 10, 64)
		default:
			err = errors.New("unknown argument")
		}
		if err != nil {
			return raftReply{Error: fmt.Sprintf("run: %s: %v", a, err)}
		}
	}
	if p.clients < 1 || p.duration <= 0 || p.warmup < 0 {
		return raftReply{Error: "run: needs clients >= 1, duration > 0, warmup >= 0"}
	}
	if s := n.r.State(); s != raft.Leader {
		return raftReply{Error: "not the leader (" + s.String() + ")"}
	}
	if err := n.r.Barrier(raftTimeout).Error(); err != nil {
		return raftReply{Error: "barrier: " + err.Error()}
	}
	res := runLoad(&sut{
		encode:    raftPut,
		do:        func(_ context.Context, op []byte) error { return n.r.Apply(op, raftTimeout).Error() },
		elections: func() uint64 { return raftTerm(n.r) },
	}, p)
	rep := raftReply{OK: true, WindowOps: res.window.Count(), TotalOps: res.totalOps, Errors: res.errors,
		P50Ns: int64(res.window.Quantile(0.50)), P99Ns: int64(res.window.Quantile(0.99)),
		Elections: res.elections, RunAllocs: res.runAllocs, RunAllocBytes: res.runAllocBytes}
	if res.firstErr != nil {
		rep.FirstError = res.firstErr.Error()
	}
	if err := res.check(); err != nil {
		rep.OK, rep.Error = false, err.Error()
	}
	return rep
}
