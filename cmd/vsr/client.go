package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vsrgo/vsr/actors"
	"github.com/vsrgo/vsr/cluster"
	"github.com/vsrgo/vsr/statemachine/kv"
)

const clientUsage = `usage: vsr client -replicas A0,A1,A2 [flags] COMMAND
       vsr client -config cluster.json [flags] COMMAND

Talks to a group of key-value stores by address. Commands:

  put KEY VALUE        write KEY (through the log)
  get KEY              linearizable read of KEY (add -stale for a possibly stale one)
  cas KEY OLD NEW      set KEY to NEW if it holds OLD
  status               each replica's status, view, op and commit numbers
                       (add -digest for a digest of each replica's state)

flags:
`

func clientCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vsr client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clientUsage); fs.PrintDefaults() }
	var cf clusterFlags
	cf.register(fs)
	bind := fs.String("bind", "127.0.0.1:0", "host:port the client listens on for replies; the replicas must reach it")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	stale := fs.Bool("stale", false, "get: read from any replica, possibly stale")
	digest := fs.Bool("digest", false, "status: also show a digest of each replica's state (each replica encodes its whole state machine for it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := cf.load()
	if err != nil {
		fmt.Fprintf(stderr, "vsr client: %v\n", err)
		return 2
	}
	rest := fs.Args()
	want := map[string]int{"put": 3, "get": 2, "cas": 4, "status": 1}
	if len(rest) == 0 || want[rest[0]] != len(rest) {
		fs.Usage()
		return 2
	}
	c, err := cluster.NewClient(cfg, cluster.ClientOptions{Bind: *bind})
	if err != nil {
		fmt.Fprintf(stderr, "vsr client: %v\n", err)
		return 1
	}
	defer c.Close()
	if rest[0] == "status" {
		// The digest costs every replica an encoding of its whole state
		// machine, so it is asked for only on request.
		if *digest {
			return printStatus(c.Status(*timeout), cfg, true, stdout)
		}
		return printStatus(c.StatusWithoutDigest(*timeout), cfg, false, stdout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var res []byte
	switch rest[0] {
	case "put":
		res, err = c.Execute(ctx, kv.PutOp(rest[1], []byte(rest[2])))
	case "get":
		if *stale {
			res, err = c.ReadStale(ctx, kv.GetOp(rest[1]))
		} else {
			res, err = c.Read(ctx, kv.GetOp(rest[1]))
		}
	case "cas":
		res, err = c.Execute(ctx, kv.CASOp(rest[1], []byte(rest[2]), []byte(rest[3])))
	}
	if err != nil {
		fmt.Fprintf(stderr, "vsr client: %s: %v\n", rest[0], err)
		return 1
	}
	r, err := kv.DecodeResult(res)
	if err != nil {
		fmt.Fprintf(stderr, "vsr client: %v\n", err)
		return 1
	}
	switch rest[0] {
	case "put":
		fmt.Fprintln(stdout, "ok")
	case "get":
		if !r.Found {
			fmt.Fprintln(stdout, "(absent)")
			return 0
		}
		fmt.Fprintln(stdout, string(r.Value))
	case "cas":
		if !r.Swapped {
			fmt.Fprintf(stdout, "not swapped (found: %t, value: %q)\n", r.Found, r.Value)
			return 1
		}
		fmt.Fprintln(stdout, "swapped")
	}
	return 0
}

func printStatus(st []*actors.StatusReply, cfg cluster.Config, digest bool, w io.Writer) int {
	code := 0
	defer printMembers(st, w)
	for j, s := range st {
		if s == nil {
			fmt.Fprintf(w, "replica %d  %-21s  down or unreachable\n", j, cfg.Replicas[j])
			code = 1
			continue
		}
		role := "backup"
		if s.Status == "normal" && s.Primary == s.Replica {
			role = "primary"
		}
		state := ""
		if digest && len(s.Digest) >= 6 {
			state = fmt.Sprintf("  state %x", s.Digest[:6])
		}
		fmt.Fprintf(w, "replica %d  %-21s  %-11s %-7s epoch %d  view %d  op %d  commit %d%s  dropped %d\n",
			j, cfg.Replicas[j], s.Status, role, s.Epoch, s.View, s.OpNumber, s.CommitNumber, state, s.Dropped+s.Foreign)
	}
	return code
}

// printMembers names the configuration of the latest epoch any replica
// reported: after a reconfiguration, the addresses asked may not be the
// members any more.
func printMembers(st []*actors.StatusReply, w io.Writer) {
	var latest *actors.StatusReply
	for _, s := range st {
		if s != nil && len(s.Members) > 0 && (latest == nil || s.Epoch > latest.Epoch) {
			latest = s
		}
	}
	if latest != nil {
		fmt.Fprintf(w, "epoch %d members: %s\n", latest.Epoch, strings.Join(latest.Members, ", "))
	}
}
