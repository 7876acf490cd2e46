package main

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/vsrgo/vsr/messages"
)

// op is one client operation that a writer hands to the commit loop.
type op struct {
	clientID uint64
	request  uint64
	value    []byte // 16 bytes
	done     chan error
}

// engine makes a group of ops durable with one sync. The ops of a group
// take the op numbers first, first+1, ... in order.
type engine interface {
	commit(first uint64, ops []*op) error
	close() error
}

// engineDef names an engine and opens it on an empty directory.
type engineDef struct {
	name string
	open func(dir string) (engine, error)
}

// engines lists the candidates in their default order; ours comes first
// (see ours.go).
var engines = []engineDef{
	{"bbolt", openBbolt},
	{"pebble", openPebble},
	{"raft-wal", openRaftWAL},
	{"raft-boltdb", openRaftBolt},
}

// entryOf is the log entry a replica would write for o at op number n.
func entryOf(n uint64, o *op) *messages.Entry {
	return &messages.Entry{OpNumber: n, View: 1, ClientId: o.clientID, RequestNumber: o.request, Operation: o.value}
}

// encodeEntry returns the proto encoding of o's entry at op number n.
func encodeEntry(n uint64, o *op) ([]byte, error) {
	return proto.Marshal(entryOf(n, o))
}

func opKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}

// bbolt: one Update transaction per group; bbolt fsyncs on commit.

var logBucket = []byte("log")

type bboltEngine struct{ db *bolt.DB }

func openBbolt(dir string) (engine, error) {
	db, err := bolt.Open(filepath.Join(dir, "log.db"), 0o600, nil)
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(logBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &bboltEngine{db}, nil
}

func (e *bboltEngine) commit(first uint64, ops []*op) error {
	return e.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(logBucket)
		for i, o := range ops {
			v, err := encodeEntry(first+uint64(i), o)
			if err != nil {
				return err
			}
			if err := b.Put(opKey(first+uint64(i)), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *bboltEngine) close() error { return e.db.Close() }

// pebble: one Batch per group, committed with pebble.Sync.

type pebbleEngine struct{ db *pebble.DB }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Errorf(f string, a ...any) { fmt.Printf("pebble: "+f+"\n", a...) }
func (quietLogger) Fatalf(f string, a ...any) { panic(fmt.Sprintf("pebble: "+f, a...)) }

func openPebble(dir string) (engine, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, err
	}
	return &pebbleEngine{db}, nil
}

func (e *pebbleEngine) commit(first uint64, ops []*op) error {
	b := e.db.NewBatch()
	defer b.Close()
	for i, o := range ops {
		v, err := encodeEntry(first+uint64(i), o)
		if err != nil {
			return err
		}
		if err := b.Set(opKey(first+uint64(i)), v, nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

func (e *pebbleEngine) close() error { return e.db.Close() }

// raft-wal and raft-boltdb: hashicorp/raft LogStores, StoreLogs of a group.

type raftStore interface {
	raft.LogStore
	Close() error
}

type raftEngine struct {
	s    raftStore
	logs []*raft.Log
}

func openRaftWAL(dir string) (engine, error) {
	w, err := wal.Open(dir)
	if err != nil {
		return nil, err
	}
	return &raftEngine{s: w}, nil
}

func openRaftBolt(dir string) (engine, error) {
	s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, err
	}
	return &raftEngine{s: s}, nil
}

func (e *raftEngine) commit(first uint64, ops []*op) error {
	e.logs = e.logs[:0]
	now := time.Now()
	for i, o := range ops {
		v, err := encodeEntry(first+uint64(i), o)
		if err != nil {
			return err
		}
		e.logs = append(e.logs, &raft.Log{Index: first + uint64(i), Term: 1, Type: raft.LogCommand, Data: v, AppendedAt: now})
	}
	return e.s.StoreLogs(e.logs)
}

func (e *raftEngine) close() error { return e.s.Close() }
