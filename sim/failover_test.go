package sim

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A crashed primary of 3 is replaced, and a write invoked after the crash is
// served, well within 400 ticks, on a reliable network and on a lossy one;
// the crashed replica stays down throughout. Also with the per-seed history
// bounds of the random driver.
func TestFailoverElectsAPrimaryAndServesAWrite(t *testing.T) {
	const bound = 400
	for _, o := range []FailoverOptions{{}, {Drop: 0.05, MaxDelay: 3}, {DrawnBounds: true}} {
		for seed := uint64(1); seed <= 10; seed++ {
			r, err := MeasureFailover(seed, 3, o)
			require.NoError(t, err)
			require.True(t, r.Elected, "seed %d %+v: no new primary within %d ticks: %+v", seed, o, DefaultFailoverLimit, r)
			require.True(t, r.Served, "seed %d %+v: no write served within %d ticks: %+v", seed, o, DefaultFailoverLimit, r)
			require.NotEqual(t, r.Crashed, r.NewPrimary)
			require.Greater(t, r.NewView, r.OldView)
			require.Positive(t, r.NewPrimaryTicks)
			require.LessOrEqual(t, r.NewPrimaryTicks, bound, "seed %d %+v: %+v", seed, o, r)
			require.LessOrEqual(t, r.FirstWriteTicks, bound, "seed %d %+v: %+v", seed, o, r)
			require.GreaterOrEqual(t, r.FirstWriteTicks, r.NewPrimaryTicks,
				"a write needs the new primary (the old one is down)")
		}
	}
}

// The measurement is deterministic: the same seed gives the same figures.
func TestFailoverIsDeterministic(t *testing.T) {
	a, err := MeasureFailover(7, 5, FailoverOptions{Drop: 0.05})
	require.NoError(t, err)
	b, err := MeasureFailover(7, 5, FailoverOptions{Drop: 0.05})
	require.NoError(t, err)
	require.Equal(t, a, b)
}

// Replica counts with no failover to measure, and bad rates, are refused.
func TestFailoverRefusesBadOptions(t *testing.T) {
	_, err := MeasureFailover(1, 1, FailoverOptions{})
	require.Error(t, err)
	_, err = MeasureFailover(1, 4, FailoverOptions{})
	require.Error(t, err)
	_, err = MeasureFailover(1, 3, FailoverOptions{Drop: 0.5})
	require.ErrorIs(t, err, ErrFaults)
}
