package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// printReport prints the table of medians over rounds, the durable ratios,
// the idle resident sets and, last, the four headline ratios.
func printReport(cc *compareConfig, results map[resultKey][]measurement, started time.Time) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setting\tclients\tsystem\tops/s\tp50\tp99\tallocs/op\tB/op\tpeak RSS MB per process\tround ops/s\tround spread\terrors\telections\t")
	var failures []string
	for _, st := range cc.settings {
		for _, c := range cc.clients {
			for _, sys := range []string{vsrName, raftName} {
				rs := results[resultKey{st.name, c, sys}]
				ok := succeeded(rs)
				var per []string
				var errs, elections uint64
				for r, m := range rs {
					if m.err != nil {
						per = append(per, "fail")
						failures = append(failures, fmt.Sprintf("round %d %s %s %d: %v", r+1, st.name, sys, c, m.err))
						continue
					}
					per = append(per, fmt.Sprintf("%.0f", m.opsPerSec))
					errs += m.errors
					elections += m.elections
				}
				if len(ok) == 0 {
					fmt.Fprintf(tw, "%s\t%d\t%s\t-\t-\t-\t-\t-\t-\t%s\t-\t-\t-\t\n", st.name, c, sys, strings.Join(per, " "))
					continue
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%s\t%s\t%.1f\t%.0f\t%s\t%s\t%s\t%d\t%d\t\n", st.name, c, sys,
					medianOf(ok, func(m measurement) float64 { return m.opsPerSec }),
					fmtDur(time.Duration(medianOf(ok, func(m measurement) float64 { return float64(m.p50) }))),
					fmtDur(time.Duration(medianOf(ok, func(m measurement) float64 { return float64(m.p99) }))),
					medianOf(ok, func(m measurement) float64 { return m.allocsPerOp }),
					medianOf(ok, func(m measurement) float64 { return m.bytesPerOp }),
					peakRSSColumn(ok), strings.Join(per, " "), spreadOf(ok), errs, elections)
			}
		}
	}
	tw.Flush()
	fmt.Println("(ops/s, p50, p99, allocs/op, B/op and peak RSS are medians over rounds; p50 and p99: one write, call to acknowledgement;")
	fmt.Println(" allocs/op, B/op: heap allocations per acknowledged write, in-process over the measured window, loopback over warm-up and window")
	fmt.Println(" summed over every process of the system; peak RSS: VmHWM of each process (leader+load: raft's leader, which runs the load);")
	fmt.Println(" errors: failed writes in the windows; elections: view (vsr) or term (raft) changes, all rounds)")
	if len(failures) > 0 {
		fmt.Println("\nfailed measurements:")
		for _, f := range failures {
			fmt.Println("  " + f)
		}
	}

	fmt.Println()
	fmt.Printf("durable throughput ratio vsr/hashicorp-raft (in-process, 64 clients): %s\n", roundRatio(results, "durable-inproc", 64, opsOf))
	fmt.Printf("durable throughput ratio vsr/hashicorp-raft (loopback, 64 clients): %s\n", roundRatio(results, "durable-loopback", 64, opsOf))
	fmt.Printf("durable p99 ratio vsr/hashicorp-raft (in-process, 1 client): %s\n", roundRatio(results, "durable-inproc", 1, p99Of))
	fmt.Printf("durable p99 ratio vsr/hashicorp-raft (loopback, 1 client): %s\n", roundRatio(results, "durable-loopback", 1, p99Of))
	for _, st := range cc.settings {
		if st.loopback {
			fmt.Println(idleLine(cc, results, st.name))
		}
	}
	built := ""
	if cc.vsrBin != "" {
		built = " (building cmd/vsr included)"
	}
	fmt.Printf("wall time %v%s\n", time.Since(started).Round(time.Second), built)
	fmt.Println()
	fmt.Printf("throughput ratio vsr/hashicorp-raft (in-process, 64 clients): %s\n", roundRatio(results, "inproc", 64, opsOf))
	fmt.Printf("throughput ratio vsr/hashicorp-raft (loopback, 64 clients): %s\n", roundRatio(results, "loopback", 64, opsOf))
	fmt.Printf("p99 ratio vsr/hashicorp-raft (in-process, 1 client): %s\n", roundRatio(results, "inproc", 1, p99Of))
	fmt.Printf("p99 ratio vsr/hashicorp-raft (loopback, 1 client): %s\n", roundRatio(results, "loopback", 1, p99Of))
}

func opsOf(m measurement) float64 { return m.opsPerSec }
func p99Of(m measurement) float64 { return float64(m.p99) }

// roundRatio is the median over rounds of vsr's figure over raft's in the
// same round (the two ran back to back, so they share that round's machine
// noise), or "n/a" if the setting or client count was not run or no round
// has both.
func roundRatio(results map[resultKey][]measurement, setting string, clients int, f func(measurement) float64) string {
	v, r := results[resultKey{setting, clients, vsrName}], results[resultKey{setting, clients, raftName}]
	var ratios []float64
	for i := range min(len(v), len(r)) {
		if v[i].err == nil && r[i].err == nil && f(r[i]) > 0 {
			ratios = append(ratios, f(v[i])/f(r[i]))
		}
	}
	if len(ratios) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", median(ratios))
}

// idleLine gives one node's idle resident set for each system in a
// loopback setting: the median over the rounds and client counts.
func idleLine(cc *compareConfig, results map[resultKey][]measurement, setting string) string {
	idle := map[string]float64{}
	for _, sys := range []string{vsrName, raftName} {
		var all []measurement
		for _, c := range cc.clients {
			all = append(all, succeeded(results[resultKey{setting, c, sys}])...)
		}
		if len(all) > 0 {
			idle[sys] = medianOf(all, func(m measurement) float64 { return float64(m.idleRSS) })
		}
	}
	v, r := idle[vsrName], idle[raftName]
	if v == 0 || r == 0 {
		return fmt.Sprintf("idle RSS of one node process (%s): n/a", setting)
	}
	return fmt.Sprintf("idle RSS of one node process (%s, %v after start): vsr %.1f MB, hashicorp-raft %.1f MB, ratio vsr/hashicorp-raft %.2f",
		setting, idleSettle, v/(1<<20), r/(1<<20), v/r)
}

// peakRSSColumn is each process's peak resident set in MB, the median over
// rounds slot by slot, or "-" for in-process settings.
func peakRSSColumn(ms []measurement) string {
	if len(ms[0].peakRSS) == 0 {
		return "-"
	}
	var parts []string
	for i, p := range ms[0].peakRSS {
		var v []float64
		for _, m := range ms {
			if i < len(m.peakRSS) {
				v = append(v, float64(m.peakRSS[i].bytes))
			}
		}
		parts = append(parts, p.name+" "+mb(uint64(median(v))))
	}
	return strings.Join(parts, " ")
}

// succeeded is the measurements that did not fail.
func succeeded(ms []measurement) []measurement {
	var ok []measurement
	for _, m := range ms {
		if m.err == nil {
			ok = append(ok, m)
		}
	}
	return ok
}

func medianOf(ms []measurement, f func(measurement) float64) float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	return median(v)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spreadOf is (max-min)/mean of the rounds' throughput.
func spreadOf(ms []measurement) string {
	if len(ms) < 2 {
		return "-"
	}
	var v []float64
	var sum float64
	for _, m := range ms {
		v = append(v, m.opsPerSec)
		sum += m.opsPerSec
	}
	return fmt.Sprintf("%.0f%%", 100*(slices.Max(v)-slices.Min(v))/(sum/float64(len(v))))
}

// depVersion is the version of module path this binary was built with.
func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				return m.Version
			}
		}
	}
	return "(unknown version)"
}
