package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

// The hashicorp/raft side of the raft subcommand: three nodes in this
// process on raft's InmemTransport, each with a durable log and stable store
// (raft-boltdb/v2 or raft-wal) and a FileSnapshotStore, applying puts to a
// map[string][]byte.

// raftTimeout bounds one Apply.
const raftTimeout = 10 * time.Second

// raftConfig is the configuration of node i: defaults but for timeouts
// suited to an in-memory transport, and batching of the apply channel.
func raftConfig(i int, timeout time.Duration) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(fmt.Sprintf("node%d", i))
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

// raftStore is a durable LogStore and StableStore.
type raftNodeStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

func openRaftNodeStore(kind, dir string) (raftNodeStore, error) {
	switch kind {
	case "boltdb":
		// NoSync is false by default: every StoreLogs commit is fsynced.
		return raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	case "wal":
		// raft-wal fsyncs every StoreLogs append.
		if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
			return nil, err
		}
		return wal.Open(filepath.Join(dir, "wal"))
	}
	return nil, fmt.Errorf("unknown raft store %q (have boltdb, wal)", kind)
}

// startRaft starts a cluster as a system under test.
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
				t, _ := strconv.ParseUint(r.Stats()["term"], 10, 64)
				term = max(term, t)
			}
			return term
		},
		snapshots: c.snapshots,
		stop:      c.stop,
	}, nil
}

// raftCluster is three raft nodes connected by in-memory transports.
type raftCluster struct {
	nodes  []*raft.Raft
	stores []raftNodeStore
	fsms   []*kvFSM
}

// startRaftCluster bootstraps a three-node cluster in dir and waits for a
// leader that has committed its first entry. cache > 0 wraps each log store
// in a write-through raft.LogCache of that many entries.
func startRaftCluster(dir, storeKind string, cache int, timeout time.Duration) (*raftCluster, error) {
	const n = 3
	c := &raftCluster{}
	trans := make([]*raft.InmemTransport, n)
	var servers []raft.Server
	for i := range n {
		var addr raft.ServerAddress
		addr, trans[i] = raft.NewInmemTransport("")
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raftConfig(i, timeout).LocalID, Address: addr})
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
		store, err := openRaftNodeStore(storeKind, ndir)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.stores = append(c.stores, store)
		var logs raft.LogStore = store
		if cache > 0 {
			if logs, err = raft.NewLogCache(cache, store); err != nil {
				c.stop()
				return nil, err
			}
		}
		snaps, err := raft.NewFileSnapshotStore(ndir, 2, io.Discard)
		if err != nil {
			c.stop()
			return nil, err
		}
		conf := raftConfig(i, timeout)
		if err := raft.BootstrapCluster(conf, logs, store, snaps, trans[i], raft.Configuration{Servers: servers}); err != nil {
			c.stop()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		fsm := &kvFSM{m: map[string][]byte{}}
		r, err := raft.NewRaft(conf, fsm, logs, store, snaps, trans[i])
		if err != nil {
			c.stop()
			return nil, err
		}
		c.nodes = append(c.nodes, r)
		c.fsms = append(c.fsms, fsm)
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
		time.Sleep(10 * time.Millisecond)
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

// snapshots is how many FSM snapshots the nodes have persisted.
func (c *raftCluster) snapshots() int64 {
	var n int64
	for _, f := range c.fsms {
		n += f.persisted.Load()
	}
	return n
}

func (c *raftCluster) stop() error {
	var errs []error
	for _, r := range c.nodes {
		errs = append(errs, r.Shutdown().Error())
	}
	for _, s := range c.stores {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// raftPut encodes a put as a log entry: the 16-byte value, then the key.
func raftPut(key string, value []byte) []byte {
	return append(append(make([]byte, 0, len(value)+len(key)), value...), key...)
}

// kvFSM is a map[string][]byte of puts.
type kvFSM struct {
	mu        sync.Mutex
	m         map[string][]byte
	persisted atomic.Int64
}

func (f *kvFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) < 16 {
		return nil
	}
	v := append([]byte(nil), l.Data[:16]...)
	k := string(l.Data[16:])
	f.mu.Lock()
	f.m[k] = v
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := make(map[string][]byte, len(f.m))
	for k, v := range f.m { // values are never modified in place
		cp[k] = v
	}
	return &kvSnapshot{m: cp, count: &f.persisted}, nil
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	m := map[string][]byte{}
	br := bufio.NewReader(rc)
	for {
		k, err := readChunk(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		v, err := readChunk(br)
		if err != nil {
			return err
		}
		m[string(k)] = v
	}
	f.mu.Lock()
	f.m = m
	f.mu.Unlock()
	return nil
}

func readChunk(br *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	_, err = io.ReadFull(br, b)
	return b, err
}

type kvSnapshot struct {
	m     map[string][]byte
	count *atomic.Int64
}

func (s *kvSnapshot) Persist(sink raft.SnapshotSink) error {
	bw := bufio.NewWriter(sink)
	var buf []byte
	for k, v := range s.m {
		buf = binary.AppendUvarint(buf[:0], uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
		if _, err := bw.Write(buf); err != nil {
			sink.Cancel()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		sink.Cancel()
		return err
	}
	s.count.Add(1)
	return sink.Close()
}

func (s *kvSnapshot) Release() {}
