package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// The state machine hashicorp/raft applies in every setting: the same puts
// as vsr's kv state machine, into a map[string][]byte, with snapshots (a
// uvarint-framed key and value per entry) so that raft's log compaction
// runs as it would in a real service.

// raftPut encodes a put as a log entry: the 16-byte value, then the key.
func raftPut(key string, value []byte) []byte {
	return append(append(make([]byte, 0, len(value)+len(key)), value...), key...)
}

// kvFSM is a map[string][]byte of puts.
type kvFSM struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newKVFSM() *kvFSM { return &kvFSM{m: map[string][]byte{}} }

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
	return &kvSnapshot{m: cp}, nil
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
	m map[string][]byte
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
	return sink.Close()
}

func (s *kvSnapshot) Release() {}
