//go:build vsrbugs

package sim

import (
	"testing"

	"github.com/vsrgo/vsr/vsr"
)

// The simulator's self-test: each known bug, re-introduced into the core, is
// caught within the seed budget. Run with: go test -tags vsrbugs ./sim/
func TestSimulatorCatchesEveryInjectedBug(t *testing.T) {
	const budget = 200
	for _, b := range vsr.AllBugs {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= budget; seed++ {
				o := DefaultOptions(seed)
				o.Bugs = b.Bug
				if r := Run(o); r.Violation != nil {
					t.Logf("%s caught at seed %d: %v", b.Name, seed, firstLine(r.Violation.Error()))
					return
				}
			}
			t.Fatalf("bug %s survived %d seeds", b.Name, budget)
		})
	}
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
