package supervisor_test

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/statemachine/kv"
)

func TestSuspectedBugNoSuchGroupIsReportedAsTimeout(t *testing.T) {
	g := startGroup(t, 3)
	nobody := []*actor.PID{
		g.System().NewLocalPID("nobody-0"),
		g.System().NewLocalPID("nobody-1"),
		g.System().NewLocalPID("nobody-2"),
	}
	c, err := actors.NewClient(g.System(), actors.ClientConfig{ClusterID: testClusterID, Replicas: nobody})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Execute(ctx, kv.PutOp("k", []byte("v")))
	require.ErrorIs(t, err, actors.ErrNoSuchGroup)
}
