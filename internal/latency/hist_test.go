package latency

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Every value falls in a bucket whose bounds hold it, the buckets are
// contiguous, and a bucket is at most 1/64 of its lower bound wide.
func TestHistBucketsCoverEveryValue(t *testing.T) {
	prevHi := uint64(0)
	for i := range histBuckets {
		lo, hi := histBounds(i)
		if i > 0 {
			require.Equal(t, prevHi+1, lo, "bucket %d", i)
		}
		require.LessOrEqual(t, hi-lo, lo/histSub, "bucket %d", i)
		require.Equal(t, i, histBucket(lo))
		require.Equal(t, i, histBucket(hi))
		prevHi = hi
	}
	require.Equal(t, ^uint64(0), prevHi)
}

func TestHistQuantilesOnKnownInputs(t *testing.T) {
	var h Hist
	require.Zero(t, h.Quantile(0.5))

	// Small values are exact.
	for v := uint64(1); v <= 50; v++ {
		h.Record(v)
	}
	require.Equal(t, uint64(25), h.Quantile(0.5))
	require.Equal(t, uint64(50), h.Quantile(0.99))
	require.Equal(t, uint64(1), h.Quantile(0))
	require.Equal(t, uint64(50), h.Quantile(1))

	// 1..100000: quantiles within the buckets' 1/64 relative error, never
	// below the true value, and the maximum exact.
	h = Hist{}
	for v := uint64(1); v <= 100000; v++ {
		h.Record(v)
	}
	for _, c := range []struct {
		q    float64
		want uint64
	}{{0.5, 50000}, {0.9, 90000}, {0.99, 99000}, {0.999, 99900}} {
		got := h.Quantile(c.q)
		require.GreaterOrEqual(t, got, c.want, "q=%v", c.q)
		require.LessOrEqual(t, float64(got), float64(c.want)*(1+1.0/64), "q=%v", c.q)
	}
	require.Equal(t, uint64(100000), h.Quantile(1))
	require.Equal(t, uint64(100000), h.max)
	require.InDelta(t, 50000.5, h.sum/float64(h.n), 1e-6)

	// A skewed distribution: 990 at 100 µs, 10 at 50 ms.
	h = Hist{}
	for range 990 {
		h.Record(100_000)
	}
	for range 10 {
		h.Record(50_000_000)
	}
	require.InEpsilon(t, 100_000, float64(h.Quantile(0.5)), 1.0/64)
	require.InEpsilon(t, 100_000, float64(h.Quantile(0.99)), 1.0/64)
	require.Equal(t, uint64(50_000_000), h.Quantile(0.999))

	// Merging two halves gives the same as recording everything in one.
	var a, b, whole Hist
	for v := uint64(1); v <= 10000; v += 7 {
		whole.Record(v * 1000)
		if v%2 == 0 {
			a.Record(v * 1000)
		} else {
			b.Record(v * 1000)
		}
	}
	a.Merge(&b)
	require.Equal(t, whole, a)

	// The printed rows are powers of two in microseconds holding every value.
	rows := h.Rows()
	var total uint64
	for _, r := range rows {
		total += r.Count
		require.Equal(t, r.HighUs, max(2*r.LowUs, 1))
	}
	require.Equal(t, uint64(1000), total)
	require.Equal(t, uint64(64), rows[0].LowUs)
	require.Equal(t, uint64(65536), rows[len(rows)-1].HighUs)
}
