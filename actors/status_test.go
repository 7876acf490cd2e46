package actors_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

// gatedSM is a kv store whose checkpoint encodings wait for release and are
// counted, so a test can hold a digest computation open.
type gatedSM struct {
	*kv.Store
	captures *atomic.Int32
	release  chan struct{}
}

func (s gatedSM) Checkpoint() func() ([]byte, error) {
	s.captures.Add(1)
	encode := s.Store.Checkpoint()
	return func() ([]byte, error) {
		<-s.release
		return encode()
	}
}

// Status queries with a digest that arrive while one digest is being
// computed share it: a flood of them costs one encoding of the state, not
// one each, and every asker gets a digest that matches the commit number it
// is told.
func TestDigestQueriesShareOneEncoding(t *testing.T) {
	system := newSystem(t)
	var captures atomic.Int32
	release := make(chan struct{})
	pid := system.Root.Spawn(actors.NewReplicaProps(actors.ReplicaConfig{
		Core: vsr.Config{ClusterID: clusterID, ReplicaCount: 1, ReplicaIndex: 0},
		NewStateMachine: func() statemachine.StateMachine {
			return gatedSM{Store: kv.NewStore(), captures: &captures, release: release}
		},
		Peers: []*actor.PID{system.NewLocalPID("unused")},
	}))
	const queries = 20
	futures := make([]*actor.Future, queries)
	for k := range futures {
		futures[k] = system.Root.RequestFuture(pid, &actors.StatusQuery{WithDigest: true}, 5*time.Second)
	}
	// A status without a digest is answered at once, behind the held ones.
	res, err := system.Root.RequestFuture(pid, &actors.StatusQuery{}, 5*time.Second).Result()
	require.NoError(t, err)
	require.Equal(t, [32]byte{}, res.(actors.ReplicaStatus).Digest)
	close(release)
	var first actors.ReplicaStatus
	for k, f := range futures {
		res, err := f.Result()
		require.NoError(t, err, "query %d", k)
		s := res.(actors.ReplicaStatus)
		require.NotEqual(t, [32]byte{}, s.Digest, "query %d", k)
		if k == 0 {
			first = s
		}
		assert.Equal(t, first.Digest, s.Digest)
		assert.Equal(t, first.CommitNumber, s.CommitNumber)
	}
	assert.Equal(t, int32(1), captures.Load(), "one encoding for all the queries")
}
