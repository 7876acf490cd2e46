package cluster

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scrape fetches a Prometheus text page and returns each sample by its
// series as printed (name{label="value",...}); nil if the page cannot be
// fetched.
func scrape(url string) map[string]float64 {
	body, code, err := get(url)
	if err != nil || code != http.StatusOK {
		return nil
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			samples[line[:i]] = v
		}
	}
	return samples
}

// get fetches url with a short timeout.
func get(url string) (string, int, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// metricsPrimary is the replica whose own metrics say it is the primary, of
// those scraped, and its view; -1 if none or more than one does. A node
// labels its series with its address.
func metricsPrimary(pages map[int]map[string]float64, addrs []string) (int, float64) {
	primary, view := -1, 0.0
	for i, page := range pages {
		label := fmt.Sprintf("{replica=%q}", addrs[i])
		if page["vsr_is_primary"+label] == 1 {
			if primary >= 0 {
				return -1, 0
			}
			primary, view = i, page["vsr_view"+label]
		}
	}
	return primary, view
}

// Three node processes serve /metrics, /healthz and /readyz (vsr node
// -metrics). Scraped over HTTP while a workload runs, the metrics name one
// primary; after a kill -9 of that primary, the survivors' metrics show the
// view change, a new primary in a later view, that primary's lag count for
// the dead replica growing, and both survivors ready; the dead node's
// endpoint is gone.
func TestProcessesServeMetricsThroughAKill9Failover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	addrs, web := freeAddrs(t, 3), freeAddrs(t, 3)
	replicas := strings.Join(addrs, ",")
	dir := t.TempDir()
	procs := make([]*nodeProc, 3)
	for i := range procs {
		procs[i] = startNodeProc(t, nil, replicas, i, filepath.Join(dir, fmt.Sprint(i)), "-memory", "-metrics", web[i])
	}
	url := func(i int, path string) string { return "http://" + web[i] + path }
	c, err := NewClient(Config{ClusterID: 1, Replicas: addrs}, ClientOptions{Sessions: 6})
	require.NoError(t, err)
	defer c.Close()
	waitFor(t, "every node ready", 15*time.Second, func() bool {
		for i := range procs {
			if _, code, err := get(url(i, "/readyz")); err != nil || code != http.StatusOK {
				return false
			}
		}
		return true
	})
	for i := range procs {
		body, code, err := get(url(i, "/healthz"))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, body)
	}

	w, stop := startWorkload(t, c)
	defer stop()
	all := func(ids ...int) map[int]map[string]float64 {
		pages := map[int]map[string]float64{}
		for _, i := range ids {
			if page := scrape(url(i, "/metrics")); page != nil {
				pages[i] = page
			}
		}
		return pages
	}
	var old int
	var oldView float64
	waitFor(t, "the metrics to name one primary that has committed ops", 10*time.Second, func() bool {
		pages := all(0, 1, 2)
		old, oldView = metricsPrimary(pages, addrs)
		return len(pages) == 3 && old >= 0 && pages[old][fmt.Sprintf("vsr_ops_committed_total{replica=%q}", addrs[old])] > 0
	})
	require.Equal(t, old, primaryOf(c.StatusWithoutDigest(time.Second)), "the metrics and the status agree on the primary")
	page := scrape(url(old, "/metrics"))
	require.NotZero(t, page[fmt.Sprintf("vsr_commit_latency_seconds_count{replica=%q}", addrs[old])])
	require.NotZero(t, page[fmt.Sprintf("vsr_messages_sent_total{replica=%q,type=\"prepare\"}", addrs[old])])
	require.Contains(t, page, "go_goroutines", "the node serves the Go runtime's metrics too")

	procs[old].kill9()
	survivors := []int{(old + 1) % 3, (old + 2) % 3}
	var next int
	var nextView float64
	waitFor(t, "a survivor's metrics to name a new primary in a later view", 20*time.Second, func() bool {
		next, nextView = metricsPrimary(all(survivors...), addrs)
		return next >= 0 && nextView > oldView
	})
	w.await(t, "operations after the kill", 20)
	for _, i := range survivors {
		page := scrape(url(i, "/metrics"))
		label := fmt.Sprintf("{replica=%q}", addrs[i])
		require.GreaterOrEqual(t, page["vsr_view_changes_completed_total"+label], 1.0, "replica %d saw the view change", i)
		require.Equal(t, nextView, page["vsr_view"+label], "replica %d is in the new view", i)
		require.Equal(t, 1.0, page[fmt.Sprintf("vsr_status{replica=%q,status=\"normal\"}", addrs[i])])
		body, code, err := get(url(i, "/readyz"))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, body)
	}
	// The backup label is an index in the configuration, which here is
	// the index the test started the node with.
	lag := fmt.Sprintf("vsr_backup_lag_ops{backup=%q,replica=%q}", fmt.Sprint(old), addrs[next])
	waitFor(t, "the new primary's metrics to show the dead replica falling behind", 10*time.Second, func() bool {
		return scrape(url(next, "/metrics"))[lag] > 0
	})
	_, _, err = get(url(old, "/metrics"))
	require.Error(t, err, "the killed node serves nothing")
	t.Logf("primary %d (view %v) killed; new primary %d in view %v; dead replica's lag %v ops",
		old, oldView, next, nextView, scrape(url(next, "/metrics"))[lag])
}
