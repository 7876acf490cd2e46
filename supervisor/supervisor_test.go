package supervisor_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/supervisor"
)

// A Supervisor used after Stop answers with an error and does not hang.
// (Proto.Actor fails the request to a stopped actor's future, so spawnedErr's
// check of the answer's type guards a case that does not arise today.)
func TestAStoppedSupervisorAnswersWithAnError(t *testing.T) {
	system, _ := actors.NewActorSystem(nil)
	t.Cleanup(system.Shutdown)
	sup, err := supervisor.StartSupervisor(system, "stopped", nil, 0, 0)
	require.NoError(t, err)
	require.NoError(t, sup.Stop())
	require.Error(t, sup.Spawn(0))
	require.Error(t, sup.Host(0, nil))
}
