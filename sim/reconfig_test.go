package sim

import (
	"strings"
	"testing"
)

// Reconfiguration runs: a few hundred seeds from groups of three and five,
// each with one to three changes under faults, pass every check.
func TestReconfigurationRunsPass(t *testing.T) {
	seeds := uint64(150)
	if testing.Short() {
		seeds = 30
	}
	changes := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		o := DefaultOptions(seed)
		o.Replicas = 3 + 2*int(seed%2)
		r := RunReconfig(o)
		if r.Violation != nil {
			t.Fatalf("seed %d (n=%d): %v\n%s", seed, o.Replicas, r.Violation, strings.Join(tail(r.Trace, 40), "\n"))
		}
		if !r.Linearizable && !r.Inconclusive {
			t.Fatalf("seed %d: history not linearizable", seed)
		}
		changes += r.Stats.Faults["reconfigure-grow"] + r.Stats.Faults["reconfigure-shrink"] + r.Stats.Faults["reconfigure-replace"]
	}
	if changes < int(seeds) {
		t.Fatalf("only %d reconfigurations in %d seeds: the runs do not exercise the change", changes, seeds)
	}
}

func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}
