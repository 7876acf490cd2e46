package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vsrgo/vsr/internal/latency"
)

// latencyReport is what is reported for one kind of operation (or all).
type latencyReport struct {
	Ops       uint64        `json:"ops"`
	OpsPerSec float64       `json:"ops_per_sec"`
	Errors    uint64        `json:"errors"`
	MeanUs    float64       `json:"mean_us"`
	P50Us     float64       `json:"p50_us"`
	P99Us     float64       `json:"p99_us"`
	P999Us    float64       `json:"p999_us"`
	MaxUs     float64       `json:"max_us"`
	Histogram []latency.Row `json:"histogram"`
}

func makeLatencyReport(h *latency.Hist, errs uint64, seconds float64) latencyReport {
	us := func(ns uint64) float64 { return float64(ns) / 1e3 }
	r := latencyReport{Ops: h.Count(), Errors: errs, P50Us: us(h.Quantile(0.5)), P99Us: us(h.Quantile(0.99)),
		P999Us: us(h.Quantile(0.999)), MaxUs: us(h.Max()), Histogram: h.Rows(), MeanUs: h.Mean() / 1e3}
	if seconds > 0 {
		r.OpsPerSec = float64(h.Count()) / seconds
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
