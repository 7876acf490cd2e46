// Package latency holds the histogram that `vsr bench` and the comparative
// benchmark in bench/ both record latencies in, so that quantiles from
// either round the same way.
package latency

import (
	"math"
	"math/bits"
)

// Hist is a fixed-size HDR-style histogram of latencies in
// nanoseconds: values below 64 are counted exactly, and every power of two
// above is split into 64 equal sub-buckets, so a bucket's width is at most
// 1/64 of its lower bound (a relative error under 1.6%). It covers every
// uint64 in 3776 buckets, whatever the number of values recorded.
type Hist struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64
	min, max uint64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits + 1) * histSub
)

// histBucket is the index of v's bucket.
func histBucket(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits - 1 // v>>e is in [64, 128)
	return (e+1)*histSub + int(v>>e) - histSub
}

// histBounds is the smallest and largest value of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	e := uint(i/histSub - 1)
	lo = uint64(i%histSub+histSub) << e
	return lo, lo + (uint64(1)<<e - 1)
}

// Record adds one value.
func (h *Hist) Record(v uint64) {
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.counts[histBucket(v)]++
}

// Merge adds every value o recorded.
func (h *Hist) Merge(o *Hist) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// Quantile is the value at or below which a fraction q of the recorded
// values lie: the upper bound of the bucket holding the value of rank
// ceil(q*n), clamped to the recorded minimum and maximum. 0 if empty.
func (h *Hist) Quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	rank = min(rank, h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := histBounds(i)
			return max(min(hi, h.max), h.min)
		}
	}
	return h.max
}

// Row is one row of a printed histogram: the latencies in
// [LowUs, HighUs) microseconds.
type Row struct {
	LowUs  uint64 `json:"low_us"`
	HighUs uint64 `json:"high_us"`
	Count  uint64 `json:"count"`
}

// Rows folds the fine buckets into powers of two in microseconds (row 0 is
// under 1 µs); a fine bucket goes to the row holding its midpoint.
func (h *Hist) Rows() []Row {
	var byRow [65]uint64
	first, last := len(byRow), -1
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		lo, hi := histBounds(i)
		r := bits.Len64((lo + (hi-lo)/2) / 1000)
		byRow[r] += c
		first, last = min(first, r), max(last, r)
	}
	var out []Row
	for r := first; r <= last; r++ {
		row := Row{Count: byRow[r]}
		if r > 0 {
			row.LowUs = 1 << (r - 1)
		}
		row.HighUs = 1 << r
		out = append(out, row)
	}
	return out
}

// Count is the number of values recorded.
func (h *Hist) Count() uint64 { return h.n }

// Max is the largest value recorded, 0 if none.
func (h *Hist) Max() uint64 { return h.max }

// Mean is the mean of the values recorded, 0 if none.
func (h *Hist) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}
