package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vsrgo/vsr/cluster"
)

const adminUsage = `usage: vsr admin reconfigure -config new.json [flags]

Changes a running group's members to the replicas of new.json (the same
cluster ID; the addresses of the new configuration, in index order). The
change goes through the group's log: it is executed once, and the group
refuses it, changing nothing, if the new configuration is not valid (an even
count, a duplicate address), adds a majority of new members (replace or add
members a few at a time: one of 3, two of 5), or comes while another change
is under way.

Start every new member first, with the same file:

  vsr node -config new.json -index J -join

It waits, holding no vote, until the group commits the change, then fetches
the state and takes part. Members that the change removes stop once the new
configuration holds the state. The command reaches the group at the
addresses in new.json, so most of them must be members today; it prints the
new epoch, to put in new.json as "epoch" for nodes and clients started
later.

flags:
`

func adminCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "reconfigure" {
		fmt.Fprint(stderr, adminUsage)
		return 2
	}
	fs := flag.NewFlagSet("vsr admin reconfigure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage); fs.PrintDefaults() }
	var cf clusterFlags
	cf.register(fs)
	bind := fs.String("bind", "127.0.0.1:0", "host:port the command listens on for replies; the replicas must reach it")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long (the change may still take effect)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintf(stderr, "vsr admin: %v\n", err)
		return 2
	}
	c, err := cluster.NewClient(cfg, cluster.ClientOptions{Bind: *bind})
	if err != nil {
		fmt.Fprintf(stderr, "vsr admin: %v\n", err)
		return 1
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := c.Reconfigure(ctx, cfg.Replicas); err != nil {
		fmt.Fprintf(stderr, "vsr admin: reconfigure: %v\n", err)
		return 1
	}
	epoch, ok := awaitEpoch(ctx, c, cfg.Replicas)
	if !ok {
		fmt.Fprintf(stdout, "committed: the group now has members %s (no member reported its epoch yet)\n",
			strings.Join(cfg.Replicas, ", "))
		return 0
	}
	fmt.Fprintf(stdout, "committed: epoch %d, members %s\nput \"epoch\": %d in the configuration file\n",
		epoch, strings.Join(cfg.Replicas, ", "), epoch)
	return 0
}

// awaitEpoch asks the members for their status until one reports members as
// its configuration, and returns its epoch.
func awaitEpoch(ctx context.Context, c *cluster.Client, members []string) (uint64, bool) {
	for {
		for _, s := range c.StatusWithoutDigest(time.Second) {
			if s != nil && slices.Equal(s.Members, members) && (s.Status == "normal" || s.Status == "view-change") {
				return s.Epoch, true
			}
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(100 * time.Millisecond):
		}
	}
}
