package main

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
	"time"
)

// latencyHist is a fixed-size HDR-style histogram of latencies in
// nanoseconds: values below 64 are counted exactly, and every power of two
// above is split into 64 equal sub-buckets, so a bucket's width is at most
// 1/64 of its lower bound (a relative error under 1.6%). It covers every
// uint64 in 3776 buckets, whatever the number of values recorded.
type latencyHist struct {
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

func (h *latencyHist) record(v uint64) {
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

func (h *latencyHist) merge(o *latencyHist) {
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

// quantile is the value at or below which a fraction q of the recorded
// values lie: the upper bound of the bucket holding the value of rank
// ceil(q*n), clamped to the recorded minimum and maximum. 0 if empty.
func (h *latencyHist) quantile(q float64) uint64 {
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

// histRow is one row of the printed histogram: the latencies in
// [LowUs, HighUs) microseconds.
type histRow struct {
	LowUs  uint64 `json:"low_us"`
	HighUs uint64 `json:"high_us"`
	Count  uint64 `json:"count"`
}

// rows folds the fine buckets into powers of two in microseconds (row 0 is
// under 1 µs); a fine bucket goes to the row holding its midpoint.
func (h *latencyHist) rows() []histRow {
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
	var out []histRow
	for r := first; r <= last; r++ {
		row := histRow{Count: byRow[r]}
		if r > 0 {
			row.LowUs = 1 << (r - 1)
		}
		row.HighUs = 1 << r
		out = append(out, row)
	}
	return out
}

// latencyReport is what is reported for one kind of operation (or all).
type latencyReport struct {
	Ops       uint64    `json:"ops"`
	OpsPerSec float64   `json:"ops_per_sec"`
	Errors    uint64    `json:"errors"`
	MeanUs    float64   `json:"mean_us"`
	P50Us     float64   `json:"p50_us"`
	P99Us     float64   `json:"p99_us"`
	P999Us    float64   `json:"p999_us"`
	MaxUs     float64   `json:"max_us"`
	Histogram []histRow `json:"histogram"`
}

func makeLatencyReport(h *latencyHist, errs uint64, seconds float64) latencyReport {
	us := func(ns uint64) float64 { return float64(ns) / 1e3 }
	r := latencyReport{Ops: h.n, Errors: errs, P50Us: us(h.quantile(0.5)), P99Us: us(h.quantile(0.99)),
		P999Us: us(h.quantile(0.999)), MaxUs: us(h.max), Histogram: h.rows()}
	if seconds > 0 {
		r.OpsPerSec = float64(h.n) / seconds
	}
	if h.n > 0 {
		r.MeanUs = h.sum / float64(h.n) / 1e3
	}
	return r
}

// benchReport is the whole result; the overall figures are inline, and
// writes and reads are broken out when both were run.
type benchReport struct {
	Target       string  `json:"target"`
	Clients      int     `json:"clients"`
	ValueSize    int     `json:"value_size"`
	Keys         int     `json:"keys"`
	ReadFraction float64 `json:"read_fraction"`
	WarmupSec    float64 `json:"warmup_sec"`
	DurationSec  float64 `json:"duration_sec"`
	latencyReport
	ErrorMessages []string `json:"error_messages,omitempty"`
	// TotalOps counts every operation that succeeded, warm-up included;
	// ProcessAllocs and ProcessAllocBytes are this process's heap
	// allocations (objects, bytes) over the same time, from the workers'
	// start to their end. Together they give the client's allocations per
	// operation.
	TotalOps          uint64 `json:"total_ops"`
	ProcessAllocs     uint64 `json:"process_allocs"`
	ProcessAllocBytes uint64 `json:"process_alloc_bytes"`
	// ProcessPeakRSS is this process's peak resident set at the end of
	// the run, in bytes (Linux only: omitted elsewhere).
	ProcessPeakRSS uint64         `json:"process_peak_rss_bytes,omitempty"`
	Writes         *latencyReport `json:"writes,omitempty"`
	Reads          *latencyReport `json:"reads,omitempty"`
}

func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "target %s; %d clients, %d-byte values, %d keys, %.0f%% linearizable reads; %gs after %gs warmup\n",
		r.Target, r.Clients, r.ValueSize, r.Keys, 100*r.ReadFraction, r.DurationSec, r.WarmupSec)
	if r.Writes != nil && r.Reads != nil {
		printLatency(w, "all", &r.latencyReport, false)
		printLatency(w, "writes", r.Writes, true)
		printLatency(w, "reads", r.Reads, true)
	} else {
		name := "writes"
		if r.ReadFraction == 1 {
			name = "reads"
		}
		printLatency(w, name, &r.latencyReport, true)
	}
	if len(r.ErrorMessages) > 0 {
		fmt.Fprintln(w, "first errors:")
		for _, m := range r.ErrorMessages {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
}

func printLatency(w io.Writer, name string, r *latencyReport, histogram bool) {
	fmt.Fprintf(w, "%-6s %d ops, %.0f ops/s, %d errors; latency mean %s p50 %s p99 %s p99.9 %s max %s\n",
		name, r.Ops, r.OpsPerSec, r.Errors, fmtUs(r.MeanUs), fmtUs(r.P50Us), fmtUs(r.P99Us), fmtUs(r.P999Us), fmtUs(r.MaxUs))
	if !histogram || len(r.Histogram) == 0 {
		return
	}
	var most uint64
	for _, row := range r.Histogram {
		most = max(most, row.Count)
	}
	const width = 50
	for _, row := range r.Histogram {
		bar := int((row.Count*width + most - 1) / most)
		fmt.Fprintf(w, "  %8d - %8d us %10d  %s\n", row.LowUs, row.HighUs, row.Count, strings.Repeat("#", bar))
	}
}

// fmtUs prints a latency in microseconds, or milliseconds from 10 ms.
func fmtUs(us float64) string {
	if us >= 10000 {
		return fmt.Sprintf("%.1fms", us/1e3)
	}
	return fmt.Sprintf("%.0fus", us)
}

// progress prints a line a second until stop is closed.
func (r *benchRun) progress(w io.Writer, start, from time.Time, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := uint64(0), start
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			ops := r.ops.Load()
			phase := "run"
			if lastAt.Before(from) { // the second just ended began in the warmup
				phase = "warmup"
			}
			rate := float64(ops-last) / now.Sub(lastAt).Seconds()
			fmt.Fprintf(w, "vsr bench: %6s %-6s %10d ops %9.0f ops/s %6d errors\n",
				now.Sub(start).Round(time.Second), phase, ops, rate, r.errs.Load())
			last, lastAt = ops, now
		}
	}
}
