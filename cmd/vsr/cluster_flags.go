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
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "cluster configuration file (JSON: cluster_id, replicas, tls); or use -cluster-id and -replicas")
	fs.Uint64Var(&c.clusterID, "cluster-id", 1, "the group's cluster ID")
	fs.StringVar(&c.replicas, "replicas", "", "comma-separated host:port of every replica, in index order (the same on every node)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "CA certificate (PEM): turns on mutual TLS")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "this member's certificate (PEM)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "this member's private key (PEM)")
	fs.DurationVar(&c.tick, "tick", 0, "the core's tick (default 10ms)")
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
	return cfg, cfg.Validate()
}
