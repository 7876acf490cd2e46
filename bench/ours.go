package main

import (
	"fmt"

	"github.com/vsrgo/vsr/messages"
	"github.com/vsrgo/vsr/storage"
)

// oursName is the name of our engine, storage.FileStore, in the table.
const oursName = "vsr FileStore"

func init() {
	engines = append([]engineDef{{oursName, openOurs}}, engines...)
}

// oursEngine writes a group as a replica's persister would: one Save of G
// batches, each the durable change of one step of the core (one appended
// entry and the hard state), made durable with one sync.
type oursEngine struct {
	s       *storage.FileStore
	batches []storage.Batch
	hs      []storage.HardState
}

func openOurs(dir string) (engine, error) {
	s, err := storage.Open(storage.OSFS{}, dir, storage.Identity{ClusterID: 1, ReplicaIndex: 0, ReplicaCount: 3}, storage.Options{})
	if err != nil {
		return nil, err
	}
	st, err := s.Load()
	if err == nil && !st.IsNew() {
		err = fmt.Errorf("new store is not empty")
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return &oursEngine{s: s}, nil
}

func (e *oursEngine) commit(first uint64, ops []*op) error {
	e.batches = e.batches[:0]
	e.hs = e.hs[:0]
	for i := range ops {
		// Filled first, so that the pointers below stay valid.
		e.hs = append(e.hs, storage.HardState{View: 1, LastNormalView: 1, CommitNumber: first + uint64(i) - 1})
	}
	for i, o := range ops {
		n := first + uint64(i)
		e.batches = append(e.batches, storage.Batch{LogFrom: n, Entries: []*messages.Entry{entryOf(n, o)}, HardState: &e.hs[i]})
	}
	return e.s.Save(e.batches)
}

func (e *oursEngine) close() error { return e.s.Close() }
