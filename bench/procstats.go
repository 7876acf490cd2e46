package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// procMemory reads a process's resident set from /proc/<pid>/status:
// VmRSS (now) and VmHWM (its peak since it started), in bytes.
func procMemory(pid int) (rss, hwm uint64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	var haveRSS, haveHWM bool
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		// The kernel prints these in kB: "VmHWM:	   48604 kB".
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			rss, haveRSS = kb<<10, true
		} else {
			hwm, haveHWM = kb<<10, true
		}
	}
	if !haveRSS || !haveHWM {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS or VmHWM", pid)
	}
	return rss, hwm, nil
}

// idleSettle is how long a freshly started group runs before its idle
// resident set is read: long enough for start-up garbage to be collected
// and for the transports' connections to be set up, short next to a run.
const idleSettle = time.Second

// idleRSS waits idleSettle for a freshly started group to settle and
// reads its nodes' resident sets: the middle one is the idle resident set
// of one node.
func idleRSS(nodes []*child) (uint64, error) {
	time.Sleep(idleSettle) // a fixed point of the measurement, not a wait for an event
	var rss []uint64
	for _, c := range nodes {
		r, _, err := procMemory(c.pid())
		if err != nil {
			return 0, fmt.Errorf("%s: %w", c.name, err)
		}
		rss = append(rss, r)
	}
	slices.Sort(rss)
	return rss[len(rss)/2], nil
}

// procRSS is one process's peak resident set in a loopback measurement.
type procRSS struct {
	name  string
	bytes uint64
}

// mb formats bytes as whole MB of 2^20 bytes (the kernel's kB are 2^10).
func mb(b uint64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }
