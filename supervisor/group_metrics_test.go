package supervisor_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vsrgo/vsr/metrics"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/supervisor"
)

// gauges is the value of every sample of family name, by replica label.
func byReplica(t *testing.T, reg *prometheus.Registry, name string) map[int]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[int]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "replica" {
					i, err := strconv.Atoi(l.GetValue())
					require.NoError(t, err)
					out[i] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// An in-process group registers the metrics on the user's own registry:
// they count every replica's committed ops, name the same primary as the
// group does, and count the view change after the primary is killed.
func TestGroupMetricsOnTheUsersRegistry(t *testing.T) {
	reg, m := prometheus.NewRegistry(), metrics.New()
	require.NoError(t, reg.Register(m))
	g := startGroup(t, 3, func(c *supervisor.GroupConfig) { c.Observer = m })
	c := newClient(t, g, 1)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for i := range 20 {
		_, err := c.Execute(ctx, kv.PutOp("k", []byte(strconv.Itoa(i))))
		require.NoError(t, err)
	}
	old := g.Primary(ctx)
	require.Eventually(t, func() bool {
		committed := byReplica(t, reg, "vsr_ops_committed_total")
		return len(committed) == 3 && committed[0] >= 20 && committed[1] >= 20 && committed[2] >= 20
	}, waitFor, pollEvery, "every replica's metrics count the 20 writes")
	require.Equal(t, map[int]float64{old: 1}, only(byReplica(t, reg, "vsr_is_primary"), 1))

	require.NoError(t, g.Kill(old))
	_, err := c.Execute(ctx, kv.PutOp("k", []byte("after")))
	require.NoError(t, err)
	next := g.Primary(ctx)
	require.NotEqual(t, old, next)
	require.Eventually(t, func() bool {
		return only(byReplica(t, reg, "vsr_is_primary"), 1)[next] == 1
	}, waitFor, pollEvery, "the metrics name the new primary")
	completed := byReplica(t, reg, "vsr_view_changes_completed_total")
	require.GreaterOrEqual(t, completed[next], 1.0)
	// The killed replica's actor reported that it stopped: it is neither
	// up nor primary any more, and has no status.
	require.Equal(t, 0.0, byReplica(t, reg, "vsr_replica_up")[old])
	require.Equal(t, 1.0, byReplica(t, reg, "vsr_replica_up")[next])
	require.Equal(t, 0.0, byReplica(t, reg, "vsr_is_primary")[old])
}

// only keeps the entries whose value is v.
func only(m map[int]float64, v float64) map[int]float64 {
	out := map[int]float64{}
	for k, x := range m {
		if x == v {
			out[k] = x
		}
	}
	return out
}
