package sim

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireClean fails the test with the replay command and the trace tail of
// a run that found a violation.
func requireClean(t *testing.T, r Result) {
	t.Helper()
	if r.Violation == nil && r.Linearizable {
		return
	}
	tail := r.Trace
	if len(tail) > 40 {
		tail = tail[len(tail)-40:]
	}
	t.Fatalf("violation: %v (linearizable=%t inconclusive=%t)\nreplay: %s\n%s",
		r.Violation, r.Linearizable, r.Inconclusive, r.Options.Command(), strings.Join(tail, "\n"))
}

// The fixed seed set: 120 seeds each for 3 and 5 replicas (and a few for 1
// and 7) under DefaultFaults, each checked for safety at every step,
// liveness during the faults and after they heal, and linearizability of the
// whole history. It is a smoke test under the race detector, sized to keep the
// test command within minutes; breadth comes from `vsr sim -seeds 10000`.
func TestSeedsHoldSafetyLivenessAndLinearizability(t *testing.T) {
	for _, tc := range []struct{ n, seeds int }{{3, 120}, {5, 120}, {1, 20}, {7, 20}} {
		t.Run(fmt.Sprintf("n=%d", tc.n), func(t *testing.T) {
			t.Parallel()
			ops := 0
			for seed := 1; seed <= tc.seeds; seed++ {
				o := DefaultOptions(uint64(seed))
				o.Replicas = tc.n
				r := Run(o)
				requireClean(t, r)
				ops += r.Stats.OpsOK
			}
			require.Greater(t, ops, 100*tc.seeds, "the workload really ran")
		})
	}
}

// The same options give the same run: same history, same statistics, same
// trace. This is what makes a failing seed replayable.
func TestSameSeedSameRun(t *testing.T) {
	o := DefaultOptions(42)
	o.Replicas = 5
	a, b := Run(o), Run(o)
	require.Equal(t, a.Stats, b.Stats)
	require.Equal(t, a.History.Operations(), b.History.Operations())
	c := Run(DefaultOptions(43))
	require.NotEqual(t, a.History.Operations(), c.History.Operations(), "another seed, another run")
}

// Every seed in testdata/regressions.txt passes.
func TestRegressionSeeds(t *testing.T) {
	f, err := os.Open("testdata/regressions.txt")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	count := 0
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		require.Len(t, fields, 2, "line %q", sc.Text())
		n, err1 := strconv.Atoi(fields[0])
		seed, err2 := strconv.ParseUint(fields[1], 10, 64)
		require.NoError(t, err1)
		require.NoError(t, err2)
		o := DefaultOptions(seed)
		o.Replicas = n
		requireClean(t, Run(o))
		count++
	}
	require.NoError(t, sc.Err())
	require.Positive(t, count)
}

// Bad options are refused with a clear error, not run.
func TestBadOptionsAreRefused(t *testing.T) {
	for name, mutate := range map[string]func(*Options){
		"even replicas": func(o *Options) { o.Replicas = 4 },
		"no clients":    func(o *Options) { o.Clients = 0 },
		"drop > 0.3":    func(o *Options) { o.Faults.Drop = 0.5 },
		"dup > 0.5":     func(o *Options) { o.Faults.Duplicate = 0.6 },
		"zero delay":    func(o *Options) { o.Faults.MaxDelay = 0 },
	} {
		o := DefaultOptions(1)
		mutate(&o)
		r := Run(o)
		require.Error(t, r.Violation, name)
		require.Zero(t, r.Stats.Ticks, name)
	}
}

// A build without the vsrbugs tag cannot inject a bug.
func TestBugsNeedTheBuildTag(t *testing.T) {
	if newReplicaHasBugs {
		t.Skip("built with -tags vsrbugs")
	}
	o := DefaultOptions(1)
	o.Bugs = 1
	require.ErrorIs(t, Run(o).Violation, ErrBugsNeedTag)
}
