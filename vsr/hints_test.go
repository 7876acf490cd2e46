package vsr

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/messages"
)

// A backup told that its primary is down probes for a view change at once; a
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
	require.Equal(t, StatusNormal, r.Status(), "a hint probes, as a timeout does")
	require.Len(t, out.Messages, 2)
	require.IsType(t, &messages.ViewChangeProbe{}, out.Messages[0].Msg)

	// Replica 2 still hears the primary: it does not agree, and nothing changes.
	nw.take(1, out)
	nw.deliver()
	require.Equal(t, uint64(0), r.View())

	// Told too, replica 2 probes; 1 has lost the primary by then, and so the view changes.
	r.primaryHeardAt -= DefaultInactivityTicks
	nw.replicas[2].primaryHeardAt -= DefaultInactivityTicks
	nw.take(2, nw.replicas[2].SuspectDown(0))
	nw.deliver()
	nw.deliver()
	require.Equal(t, uint64(1), r.View())
	require.True(t, r.IsPrimary(), "1 is the primary of view 1")
}
