package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/vsrgo/vsr/cluster"
)

// clusterFlags are the flags that name a group: a config file, or the
// cluster ID and replica addresses given inline.
type clusterFlags struct {
	config, replicas, tlsCA, tlsCert, tlsKey string
	clusterID                                uint64
	tick                                     time.Duration
	history                                  cluster.History
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "cluster configuration file (JSON: cluster_id, replicas, tls); or use -cluster-id and -replicas")
	fs.Uint64Var(&c.clusterID, "cluster-id", 1, "the group's cluster ID")
	fs.StringVar(&c.replicas, "replicas", "", "comma-separated host:port of every replica, in index order (the same on every node)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "CA certificate (PEM): turns on mutual TLS")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "this member's certificate (PEM)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "this member's private key (PEM)")
	fs.DurationVar(&c.tick, "tick", 0, "the core's tick (default 10ms)")
	fs.IntVar(&c.history.CheckpointInterval, "checkpoint-interval", 0, "committed ops between checkpoints (default 16384)")
	fs.IntVar(&c.history.TrailingOps, "trailing-ops", 0, "log entries kept below the latest checkpoint (default 4096; negative: none)")
	fs.IntVar(&c.history.PipelineMax, "pipeline-max", 0, "most uncommitted ops the primary holds before answering busy (default 1024)")
	fs.IntVar(&c.history.MaxMessageBytes, "max-message-bytes", 0, "bound on every protocol message (default 1 MiB; the transport allows more)")
	fs.Uint64Var(&c.history.SessionIdleOps, "session-idle-ops", 0, "committed ops after which an idle client session expires (default 16777216)")
	fs.IntVar(&c.history.MaxSessions, "max-sessions", 0, "most client sessions kept (default 65536)")
}

// load builds the configuration from the file or the inline flags; inline
// TLS flags override the file's.
func (c *clusterFlags) load() (cluster.Config, error) {
	var cfg cluster.Config
	switch {
	case c.config != "" && c.replicas != "":
		return cfg, fmt.Errorf("give -config or -replicas, not both")
	case c.config != "":
		var err error
		if cfg, err = cluster.Load(c.config); err != nil {
			return cfg, err
		}
	case c.replicas != "":
		cfg = cluster.Config{ClusterID: c.clusterID, Replicas: cluster.ParseReplicas(c.replicas)}
	default:
		return cfg, fmt.Errorf("no cluster given: use -config FILE, or -replicas host:port,host:port,host:port")
	}
	if c.tlsCA != "" || c.tlsCert != "" || c.tlsKey != "" {
		cfg.TLS = &cluster.TLSFiles{CA: c.tlsCA, Cert: c.tlsCert, Key: c.tlsKey}
	}
	if c.tick != 0 {
		cfg.Tick = cluster.Duration(c.tick)
	}
	cfg.History = mergeHistory(cfg.History, c.history)
	return cfg, cfg.Validate()
}

// mergeHistory lets each history flag that was given override the file.
func mergeHistory(file, flags cluster.History) cluster.History {
	if flags.CheckpointInterval != 0 {
		file.CheckpointInterval = flags.CheckpointInterval
	}
	if flags.TrailingOps != 0 {
		file.TrailingOps = flags.TrailingOps
	}
	if flags.PipelineMax != 0 {
		file.PipelineMax = flags.PipelineMax
	}
	if flags.MaxMessageBytes != 0 {
		file.MaxMessageBytes = flags.MaxMessageBytes
	}
	if flags.SessionIdleOps != 0 {
		file.SessionIdleOps = flags.SessionIdleOps
	}
	if flags.MaxSessions != 0 {
		file.MaxSessions = flags.MaxSessions
	}
	return file
}
