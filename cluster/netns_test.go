package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The partition test puts each node in a network namespace of its own, on
// a bridge in the test's namespace:
//
//	vsrt-ns0 (10.77.0.1) --veth-- vsrt-br (10.77.0.254, the client) --veth-- vsrt-ns1 (10.77.0.2) ...
//
// and cuts the primary off by taking its link down. It needs root and
// iproute2 (CI runs as root, and .ci/run installs iproute2).

const (
	nsPrefix   = "vsrt-ns"
	bridge     = "vsrt-br"
	bridgeAddr = "10.77.0.254"
)

func nsAddr(i int) string { return fmt.Sprintf("10.77.0.%d", i+1) }

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%s: %s", strings.Join(args, " "), out)
}

// setUpNamespaces makes n namespaces on a bridge; cleanup removes them.
func setUpNamespaces(t *testing.T, n int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces need iproute2's ip")
	}
	tearDownNamespaces(n) // left over from an interrupted run
	t.Cleanup(func() { tearDownNamespaces(n) })
	run(t, "ip", "link", "add", bridge, "type", "bridge")
	run(t, "ip", "addr", "add", bridgeAddr+"/24", "dev", bridge)
	run(t, "ip", "link", "set", bridge, "up")
	for i := 0; i < n; i++ {
		ns, host, peer := fmt.Sprintf("%s%d", nsPrefix, i), fmt.Sprintf("vsrt-h%d", i), fmt.Sprintf("vsrt-p%d", i)
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
		run(t, "ip", "link", "set", peer, "netns", ns)
		run(t, "ip", "link", "set", host, "master", bridge)
		run(t, "ip", "link", "set", host, "up")
		run(t, "ip", "netns", "exec", ns, "ip", "addr", "add", nsAddr(i)+"/24", "dev", peer)
		run(t, "ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
		run(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	}
}

func tearDownNamespaces(n int) {
	for i := 0; i < n; i++ {
		_ = exec.Command("ip", "netns", "del", fmt.Sprintf("%s%d", nsPrefix, i)).Run()
		_ = exec.Command("ip", "link", "del", fmt.Sprintf("vsrt-h%d", i)).Run()
	}
	_ = exec.Command("ip", "link", "del", bridge).Run()
}

// setLink takes replica i's link to the bridge down (cut off) or up.
func setLink(t *testing.T, i int, up bool) {
	state := map[bool]string{true: "up", false: "down"}[up]
	run(t, "ip", "link", "set", fmt.Sprintf("vsrt-h%d", i), state)
}

// Three nodes, each in its own network namespace, serve a concurrent
// workload; the primary is cut off from everyone (its process keeps
// running, unaware), the majority elects another primary and keeps serving;
// then the partition heals, the old primary rejoins, and the whole history
// must be linearizable and the replicas must converge.
func TestPartitionIsolatingThePrimaryInNetworkNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces")
	}
	setUpNamespaces(t, 3)
	var addrs []string
	for i := 0; i < 3; i++ {
		addrs = append(addrs, nsAddr(i)+":7000")
	}
	replicas := strings.Join(addrs, ",")
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		startNodeProc(t, []string{"ip", "netns", "exec", fmt.Sprintf("%s%d", nsPrefix, i)},
			replicas, i, filepath.Join(dir, fmt.Sprint(i)))
	}
	c, err := NewClient(Config{ClusterID: 1, Replicas: addrs}, ClientOptions{Bind: bridgeAddr + ":0", Sessions: 6})
	require.NoError(t, err)
	defer c.Close()
	waitFor(t, "a primary", 20*time.Second, func() bool { return primaryOf(c.StatusWithoutDigest(time.Second)) >= 0 })

	w, stop := startWorkload(t, c)
	p := primaryOf(c.StatusWithoutDigest(time.Second))
	require.GreaterOrEqual(t, p, 0)
	setLink(t, p, false)
	cutAt := time.Now()
	waitFor(t, "a primary on the majority side", 20*time.Second, func() bool {
		q := primaryOf(c.StatusWithoutDigest(500 * time.Millisecond))
		return q >= 0 && q != p
	})
	t.Logf("majority elected a new primary within %s of the partition", time.Since(cutAt).Round(time.Millisecond))
	w.await(t, "operations on the majority side", 20)

	setLink(t, p, true)
	w.await(t, "operations after healing", 100)
	stop()
	waitFor(t, "the replicas to converge after healing", 30*time.Second, func() bool { return converged(c) })
	w.check(t)
}
