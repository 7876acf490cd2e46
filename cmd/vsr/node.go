package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/cluster"
	"github.com/vsrgo/vsr/metrics"
	"github.com/vsrgo/vsr/statemachine/kv"
	"github.com/vsrgo/vsr/vsr"
)

const nodeUsage = `usage: vsr node -replicas A0,A1,A2 -index I [flags]
       vsr node -config cluster.json -index I [flags]

Runs replica I of a group of key-value stores, one replica per node. Every
node of the group gets the same replica list (host:port, in index order) and
its own index. Example, three terminals on one machine:

  vsr node -replicas 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 -index 0
  vsr node -replicas 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 -index 1
  vsr node -replicas 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 -index 2

A node keeps its replica's log, view and checkpoints in its data directory,
each record checksummed and synced before the replica acknowledges it. The
first start, on an empty directory, joins a new group; every later start
(after a clean stop, kill -9, a reboot or a power cut of the whole group)
comes back from the directory and rejoins its view. A node whose directory
was damaged keeps what it can trust and recovers the rest from its peers.
A directory of another cluster, replica index or group size is refused and
left untouched. To replace a lost disk, start the node on an empty
directory with -recover: it recovers everything from its peers. Back up a
node by copying its directory while the node is stopped.
It stops on SIGINT or SIGTERM, and exits with an error if its disk fails a
write.

flags:
`

func nodeCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vsr node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, nodeUsage); fs.PrintDefaults() }
	var cf clusterFlags
	cf.register(fs)
	index := fs.Int("index", -1, "this node's replica index (0..n-1)")
	listen := fs.String("listen", "", "host:port to bind, if not this replica's own address (e.g. 0.0.0.0:7001)")
	dataDir := fs.String("data-dir", "", "directory for the replica's log and checkpoints (default vsr-data-<cluster>-<index>)")
	memory := fs.Bool("memory", false, "keep the replica's state in memory only (a restart recovers from peers; losing more than f nodes at once loses data)")
	recoverFlag := fs.Bool("recover", false, "the data directory was lost: on an empty directory, recover from the peers instead of joining as a new member")
	join := fs.Bool("join", false, "start, on an empty directory, as a new member of the configuration given: it takes part once the group commits that configuration (vsr admin reconfigure)")
	verbose := fs.Bool("verbose", false, "log Proto.Actor's own messages (at INFO) to stderr")
	noHints := fs.Bool("no-hints", false, "detect a lost primary by the inactivity timeout only, not by the transport's endpoint events")
	pprofAddr := fs.String("pprof", "", "serve Go's profiles (net/http/pprof) at host:port, e.g. 127.0.0.1:6060, or at the -metrics address to share its port; keep it off public interfaces")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://host:port/metrics, with /healthz and /readyz (ready = normal in the current view), e.g. 127.0.0.1:9090")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := cf.load()
	if err == nil && *index < 0 {
		err = fmt.Errorf("-index is required")
	}
	if err != nil {
		fmt.Fprintf(stderr, "vsr node: %v\n", err)
		return 2
	}
	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	start := time.Now()
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, "%8.3fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	failed := make(chan error, 1)
	left := make(chan actors.Event, 1)
	var observer actors.Observer
	var registry *prometheus.Registry
	if *metricsAddr != "" {
		// Labelled by address: the node's index changes with reconfigurations.
		m := metrics.ForReplica(cfg.Replicas[*index])
		registry = prometheus.NewRegistry()
		registry.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		observer = m
	}
	node, err := cluster.StartNode(cluster.NodeConfig{
		Observer: observer,
		Config:   cfg, Index: *index, Listen: *listen, DataDir: *dataDir, Memory: *memory, Recover: *recoverFlag,
		Join: *join, NewStateMachine: kv.New, Logger: logger, DisableHints: *noHints,
		OnEvent: func(e actors.Event) {
			switch {
			case e.Failed != nil:
				select {
				case failed <- e.Failed:
				default:
				}
				return
			case e.Left:
				select {
				case left <- e:
				default:
				}
			}
			say("%s", describeEvent(e))
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "vsr node: %v\n", err)
		return 1
	}
	say("replica %d of %d listening at %s (cluster %d)", *index, len(cfg.Replicas), node.Address(), cfg.ClusterID)
	if *metricsAddr != "" {
		srv, err := metrics.Serve(*metricsAddr, metrics.HandlerConfig{Gatherer: registry, Ready: node.Ready,
			Health: func(ctx context.Context) error { _, err := node.Status(ctx); return err },
			Pprof:  *pprofAddr == *metricsAddr})
		if err != nil {
			fmt.Fprintf(stderr, "vsr node: -metrics: %v\n", err)
			_ = node.Stop()
			return 2
		}
		defer srv.Close()
		say("metrics at http://%s/metrics, health at /healthz and /readyz", srv.Addr())
	}
	if *pprofAddr != "" && *pprofAddr != *metricsAddr {
		at, stop, err := servePprof(*pprofAddr)
		if err != nil {
			fmt.Fprintf(stderr, "vsr node: %v\n", err)
			_ = node.Stop()
			return 2
		}
		defer stop()
		say("profiles at http://%s/debug/pprof/", at)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-failed:
		fmt.Fprintf(stderr, "vsr node: %v\n", err)
		_ = node.Stop()
		return 1
	case <-left:
		// Removed from the group: the new configuration holds the state,
		// and this node has nothing left to do. It is not a failure (a
		// service manager must not restart it), so the exit status is 0.
		fmt.Fprintf(stderr, "vsr node: %s is not a member of the group any more: it was removed by a reconfiguration\n",
			cfg.Replicas[*index])
	}
	say("stopping")
	if err := node.Stop(); err != nil {
		fmt.Fprintf(stderr, "vsr node: stopping: %v\n", err)
		return 1
	}
	return 0
}

func describeEvent(e actors.Event) string {
	switch {
	case e.Left:
		return fmt.Sprintf("replica left the group: the reconfiguration that ended epoch %d removed it, and the new members hold the state; stopping",
			e.Epoch)
	case e.Status == vsr.StatusJoining && e.Epoch == 0:
		return "replica waits to join: it takes part once the group commits its configuration and it holds the state"
	case e.Status == vsr.StatusJoining:
		return fmt.Sprintf("replica joins epoch %d: fetching the state", e.Epoch)
	case e.Status == vsr.StatusLeaving:
		return fmt.Sprintf("replica is leaving: the reconfiguration that ended epoch %d removed it; it stops once the new members hold the state", e.Epoch)
	case e.Restarted:
		return fmt.Sprintf("replica %d restarted without its state: recovering from its peers", e.Replica)
	case e.FromDisk && e.Status == vsr.StatusRecovering:
		return fmt.Sprintf("replica %d restarted from disk but cannot trust all of it: recovering the rest from its peers", e.Replica)
	case e.FromDisk:
		return fmt.Sprintf("replica %d restarted from disk: %s in view %d", e.Replica, e.Status, e.View)
	case e.Status == vsr.StatusNormal && e.Primary:
		return fmt.Sprintf("replica %d is the primary of view %d%s", e.Replica, e.View, inEpoch(e.Epoch))
	case e.Status == vsr.StatusNormal:
		return fmt.Sprintf("replica %d is a backup in view %d%s", e.Replica, e.View, inEpoch(e.Epoch))
	case e.Status == vsr.StatusViewChange:
		return fmt.Sprintf("replica %d starts a view change to view %d", e.Replica, e.View)
	}
	return fmt.Sprintf("replica %d is %s in view %d", e.Replica, e.Status, e.View)
}

// inEpoch names an epoch after the first.
func inEpoch(e uint64) string {
	if e == 0 {
		return ""
	}
	return fmt.Sprintf(" of epoch %d", e)
}
