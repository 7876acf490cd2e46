package main

import (
	"math"
	"math/bits"
	"time"
)

// latencyHist is a copy of cmd/vsr's fixed-size HDR-style histogram of
// latencies in nanoseconds (that one is in package main, so it cannot be
// imported). Every latency this benchmark reports, for either system, goes
// through the same buckets as `vsr bench -json`, so quantiles from a vsr
// client process and from this program round the same way: values below 64
// are exact, and every power of two above is split into 64 sub-buckets, so a
// reported quantile (a bucket's upper bound) is at most 1/64 above the true
// value.
type latencyHist struct {
	counts   [histBuckets]uint64
	n        uint64
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

// histUpper is the largest value of bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	e := uint(i/histSub - 1)
	lo := uint64(i%histSub+histSub) << e
	return lo + (uint64(1)<<e - 1)
}

func (h *latencyHist) record(d time.Duration) {
	v := uint64(max(d, 0))
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
	h.counts[histBucket(v)]++
}

func (h *latencyHist) merge(o *latencyHist) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// quantile is the upper bound of the bucket holding the value of rank
// ceil(q*n), clamped to the recorded minimum and maximum, as in cmd/vsr; 0
// if empty.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := min(max(uint64(math.Ceil(q*float64(h.n))), 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(max(min(histUpper(i), h.max), h.min))
		}
	}
	return time.Duration(h.max)
}
