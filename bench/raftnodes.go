package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

// The hashicorp/raft side of the in-process settings: three nodes in this
// process on raft's InmemTransport, applying puts to a map[string][]byte.
// The configuration and the stores are shared with the node processes of
// the loopback settings (raftproc.go).

// raftTimeout bounds one Apply.
const raftTimeout = 10 * time.Second

// raftIDs are the servers' IDs, by index.
func raftID(i int) raft.ServerID { return raft.ServerID(fmt.Sprintf("node%d", i)) }

// raftConfig is the configuration of node i: defaults but for the timeouts
// (heartbeat, election and leader lease all set to timeout), batching of
// the apply channel and up to 64 entries per AppendEntries.
func raftConfig(i int, timeout time.Duration) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = raftID(i)
	conf.HeartbeatTimeout = timeout
	conf.ElectionTimeout = timeout
	conf.LeaderLeaseTimeout = timeout // at most HeartbeatTimeout
	conf.MaxAppendEntries = 64
	conf.BatchApplyCh = true
	// Snapshots stay on at their defaults (SnapshotThreshold 8192,
	// SnapshotInterval 120 s, TrailingLogs 10240).
	conf.LogOutput = io.Discard
	conf.LogLevel = "off"
	return conf
}

// raftStores are one node's log, stable and snapshot stores.
type raftStores struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	close  func() error
}

// openRaftStores opens a node's stores in dir: "mem" keeps everything in
// memory (InmemStore, InmemSnapshotStore); "boltdb" (raft-boltdb/v2) and
// "wal" (raft-wal) are durable, with a FileSnapshotStore. cache > 0 wraps
// the log store in a write-through raft.LogCache of that many entries.
func openRaftStores(kind, dir string, cache int) (*raftStores, error) {
	s := &raftStores{close: func() error { return nil }}
	switch kind {
	case "mem":
		mem := raft.NewInmemStore()
		s.logs, s.stable, s.snaps = mem, mem, raft.NewInmemSnapshotStore()
	case "boltdb", "wal":
		var st interface {
			raft.LogStore
			raft.StableStore
			io.Closer
		}
		var err error
		if kind == "boltdb" {
			// NoSync is false by default: every StoreLogs commit is fsynced.
			st, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		} else if err = os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err == nil {
			// raft-wal fsyncs every StoreLogs append.
			st, err = wal.Open(filepath.Join(dir, "wal"))
		}
		if err != nil {
			return nil, err
		}
		snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
		if err != nil {
			st.Close()
			return nil, err
		}
		s.logs, s.stable, s.snaps, s.close = st, st, snaps, st.Close
	default:
		return nil, fmt.Errorf("unknown raft store %q (have mem, boltdb, wal)", kind)
	}
	if cache > 0 {
		c, err := raft.NewLogCache(cache, s.logs)
		if err != nil {
			s.close()
			return nil, err
		}
		s.logs = c
	}
	return s, nil
}

// raftTerm is the node's current term.
func raftTerm(r *raft.Raft) uint64 {
	t, _ := strconv.ParseUint(r.Stats()["term"], 10, 64)
	return t
}

// startRaft starts an in-process cluster as a system under test.
func startRaft(dir, storeKind string, cache int, timeout time.Duration) (*sut, error) {
	c, err := startRaftCluster(dir, storeKind, cache, timeout)
	if err != nil {
		return nil, err
	}
	var cur atomic.Pointer[raft.Raft]
	return &sut{
		encode: raftPut,
		do:     func(_ context.Context, op []byte) error { return c.apply(&cur, op) },
		elections: func() uint64 {
			var term uint64
			for _, r := range c.nodes {
				term = max(term, raftTerm(r))
			}
			return term
		},
		stop: c.stop,
	}, nil
}

// raftCluster is three raft nodes connected by in-memory transports.
type raftCluster struct {
	nodes  []*raft.Raft
	stores []*raftStores
}

// startRaftCluster bootstraps a three-node cluster in dir and waits for a
// leader that has committed an entry of its term.
func startRaftCluster(dir, storeKind string, cache int, timeout time.Duration) (*raftCluster, error) {
	const n = 3
	c := &raftCluster{}
	trans := make([]*raft.InmemTransport, n)
	var servers []raft.Server
	for i := range n {
		var addr raft.ServerAddress
		addr, trans[i] = raft.NewInmemTransport("")
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raftID(i), Address: addr})
	}
	for i := range n {
		for j := range n {
			if i != j {
				trans[i].Connect(trans[j].LocalAddr(), trans[j])
			}
		}
	}
	for i := range n {
		ndir := filepath.Join(dir, fmt.Sprintf("node-%d", i))
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			c.stop()
			return nil, err
		}
		st, err := openRaftStores(storeKind, ndir, cache)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.stores = append(c.stores, st)
		conf := raftConfig(i, timeout)
		if err := raft.BootstrapCluster(conf, st.logs, st.stable, st.snaps, trans[i], raft.Configuration{Servers: servers}); err != nil {
			c.stop()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		r, err := raft.NewRaft(conf, newKVFSM(), st.logs, st.stable, st.snaps, trans[i])
		if err != nil {
			c.stop()
			return nil, err
		}
		c.nodes = append(c.nodes, r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l := c.leader(); l != nil && l.Barrier(raftTimeout).Error() == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, errors.New("no raft leader within 10s")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// leader is the node that believes it leads, or nil.
func (c *raftCluster) leader() *raft.Raft {
	for _, r := range c.nodes {
		if r.State() == raft.Leader {
			return r
		}
	}
	return nil
}

// apply makes one put through the current leader, finding it again if
// leadership moved.
func (c *raftCluster) apply(cur *atomic.Pointer[raft.Raft], data []byte) error {
	r := cur.Load()
	if r == nil {
		if r = c.leader(); r == nil {
			return raft.ErrNotLeader
		}
		cur.Store(r)
	}
	err := r.Apply(data, raftTimeout).Error()
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		cur.Store(nil)
	}
	return err
}

func (c *raftCluster) stop() error {
	var errs []error
	for _, r := range c.nodes {
		errs = append(errs, r.Shutdown().Error())
	}
	for _, s := range c.stores {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}
