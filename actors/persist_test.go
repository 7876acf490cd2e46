package actors

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/storage"
)

// recordingStore is a MemStore that logs each Save and can be made to fail.
type recordingStore struct {
	*storage.MemStore
	mu     sync.Mutex
	events []string
	fail   error
}

func (s *recordingStore) Save(batches []storage.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.events = append(s.events, "save")
	return s.MemStore.Save(batches)
}

func (s *recordingStore) note(e string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func hardStateJob(view uint64, send func()) persistJob {
	return persistJob{change: storage.Change{Batch: storage.Batch{HardState: &storage.HardState{View: view}}}, send: send}
}

// A job's sends run only after its change was saved, and in the order the
// jobs were submitted.
func TestPersisterSendsOnlyAfterTheChangeIsDurableInOrder(t *testing.T) {
	store := &recordingStore{MemStore: storage.NewMemStore()}
	_, err := store.Load()
	require.NoError(t, err)
	p := newPersister(store, func(err error) { t.Errorf("unexpected failure: %v", err) })
	defer p.stop()
	for _, name := range []string{"a", "b", "c"} {
		p.submit(hardStateJob(1, func() { store.note(name) }))
	}
	require.Eventually(t, p.idle, 5*time.Second, time.Millisecond)
	store.mu.Lock()
	defer store.mu.Unlock()
	require.Equal(t, "save", store.events[0], "the first send waited for a save")
	var sends []string
	for _, e := range store.events {
		if e != "save" {
			sends = append(sends, e)
		}
	}
	require.Equal(t, []string{"a", "b", "c"}, sends)
}

// After a failed write nothing queued is sent, and submitting more jobs
// than the queue holds does not block the replica (it must stay free to
// hear that its storage failed and stop).
func TestPersisterNeverBlocksOrSendsAfterAFailedWrite(t *testing.T) {
	store := &recordingStore{MemStore: storage.NewMemStore(), fail: errors.New("disk full")}
	_, err := store.Load()
	require.NoError(t, err)
	failed := make(chan error, 1)
	p := newPersister(store, func(err error) { failed <- err })
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		for range 2 * persistQueue {
			p.submit(hardStateJob(1, func() { sent.Add(1) }))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("submit blocked after a failed write")
	}
	require.ErrorContains(t, <-failed, "disk full")
	p.stop()
	require.Zero(t, sent.Load(), "nothing is acknowledged after a failed write")
}
