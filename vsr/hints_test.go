package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
)

// A backup told that its primary is down starts the view change at once; a
// hint about anyone else, or at a replica that is not a normal backup,
// changes nothing.
func TestSuspectDownStartsViewChangeOnlyForTheCurrentPrimary(t *testing.T) {
	nw := newNetwork(t, 3)
	r := nw.replicas[1]

	out := r.SuspectDown(2)
	require.True(t, out.IsEmpty(), "2 is not the primary")
	require.Equal(t, StatusNormal, r.Status())

	out = nw.replicas[0].SuspectDown(0)
	require.True(t, out.IsEmpty(), "the primary does not suspect itself")

	out = r.SuspectDown(0)
	require.Equal(t, StatusViewChange, r.Status())
	require.Equal(t, uint64(1), r.View())
	require.Len(t, out.Messages, 2)
	require.IsType(t, &messages.StartViewChange{}, out.Messages[0].Msg)

	out = r.SuspectDown(0)
	require.Empty(t, out.Messages, "already changing views: the hint is ignored")
	require.Equal(t, uint64(1), r.View())
}
