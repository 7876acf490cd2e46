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
		if b.Bug&reconfigurationBugs != 0 {
			continue // TestReconfigurationRunsCatchEveryInjectedBug
		}
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= budget; seed++ {
				o := DefaultOptions(seed)
				o.Bugs = b.Bug
				o.Faults.Durable = seedDisks(b.Bug, seed)
				if r := Run(o); r.Violation != nil {
					t.Logf("%s caught at seed %d: %v", b.Name, seed, firstLine(r.Violation.Error()))
					return
				}
			}
			t.Fatalf("bug %s survived %d seeds", b.Name, budget)
		})
	}
}

// seedDisks gives the share of disk seeds for bug b at seed: always disks
// for the bugs that act on them, and for the core's bugs every other seed
// without, since replicas restarted from their disks rejoin with their logs
// where replicas without one recover, and some core bugs show far more
// often on the second path (log-by-opnumber: 5 seeds in 200 without disks,
// none in 200 with them, at n=3).
func seedDisks(b vsr.Bug, seed uint64) float64 {
	switch {
	case b&(vsr.BugAckBeforeDurable|vsr.BugVoteBeforeDurable|vsr.BugUseCorruptRecord) != 0:
		return 1
	case seed%2 == 1:
		return 0
	}
	return DefaultFaults.Durable
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// reconfigurationBugs act only when a group is reconfigured.
const reconfigurationBugs = vsr.BugOldMemberVotes | vsr.BugJoinBeforeUpToDate | vsr.BugReconfigureTwice

// The reconfiguration bugs are caught by the reconfiguration runs.
func TestReconfigurationRunsCatchEveryInjectedBug(t *testing.T) {
	const budget = 300
	for _, b := range []vsr.Bug{vsr.BugOldMemberVotes, vsr.BugJoinBeforeUpToDate, vsr.BugReconfigureTwice} {
		name := bugName(b)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= budget; seed++ {
				o := DefaultOptions(seed)
				o.Replicas = 3 + 2*int(seed%2)
				o.Bugs = b
				if r := RunReconfig(o); r.Violation != nil || (!r.Linearizable && !r.Inconclusive) {
					t.Logf("%s caught at seed %d: %v", name, seed, r.Violation)
					return
				}
			}
			t.Fatalf("bug %s survived %d seeds", name, budget)
		})
	}
}

func bugName(b vsr.Bug) string {
	for _, x := range vsr.AllBugs {
		if x.Bug == b {
			return x.Name
		}
	}
	return "unknown"
}
