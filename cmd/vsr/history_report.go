package main

import (
	"fmt"
	"strings"
)

func orDefault(v, def int) string {
	if v == 0 {
		return fmt.Sprint(def)
	}
	return fmt.Sprint(v)
}

func statusWord(s replicaFigures) string {
	switch {
	case !s.Up:
		return "down"
	case s.Normal:
		return "normal"
	}
	return "not-normal"
}

func first6(b []byte) []byte {
	if len(b) > 6 {
		return b[:6]
	}
	return b
}

func kib(b int) float64    { return float64(b) / 1024 }
func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func describeFigures(st []replicaFigures) string {
	var parts []string
	for i, s := range st {
		parts = append(parts, fmt.Sprintf("r%d %s view %d primary %d op %d commit %d", i, statusWord(s), s.View, s.Primary, s.Op, s.Commit))
	}
	return strings.Join(parts, "; ")
}

// The columns of a report line: the cells of each group are joined by a
// space, and a header names each group over its cells.
func rowGroups(r historyRow, heapCols int) []string {
	var heap, largest, commit, base, cp []string
	for i, s := range r.st {
		if i < heapCols {
			heap = append(heap, cell(s.Up, fmt.Sprintf("%7.1f", mib(s.Heap))))
		}
		largest = append(largest, cell(s.Up, fmt.Sprintf("%8d", s.Largest)))
		commit = append(commit, cell(s.Up, fmt.Sprintf("%8d", s.Commit)))
		base = append(base, cell(s.Up, fmt.Sprintf("%8d", s.LogBase)))
		cp = append(cp, cell(s.Up, fmt.Sprintf("%8d", s.Checkpoint)))
	}
	return []string{fmt.Sprintf("%9d %8.0f", r.ops, r.rate), strings.Join(heap, " "), strings.Join(largest, " "),
		strings.Join(commit, " "), strings.Join(base, " "), strings.Join(cp, " ")}
}

var rowTitles = []string{"", "heap MiB", "largest msg B", "commit", "log base", "checkpoint"}

func formatRow(mode string, r historyRow, heapCols int) string {
	return mode + ": " + strings.Join(rowGroups(r, heapCols), " | ")
}

func formatHeader(mode string, heapCols int) string {
	st := make([]replicaFigures, 3)
	for i := range st {
		st[i].Up = true
	}
	groups := rowGroups(historyRow{st: st}, heapCols)
	titles := []string{fmt.Sprintf("%9s %8s", "ops", "ops/s")}
	for i, g := range groups[1:] {
		titles = append(titles, fmt.Sprintf("%*s", len(g), rowTitles[i+1]))
	}
	return mode + ": " + strings.Join(titles, " | ")
}

func cell(up bool, s string) string {
	if up {
		return s
	}
	return fmt.Sprintf("%*s", len(s), "-")
}

// waitPrimary waits until some replica other than not is the normal primary.
