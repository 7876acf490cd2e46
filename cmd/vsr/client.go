package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/vsrgo/vsr/cluster"
	"github.com/vsrgo/vsr/statemachine/kv"
)

const clientUsage = `usage: vsr client -replicas A0,A1,A2 [flags] COMMAND
       vsr client -config cluster.json [flags] COMMAND

Talks to a group of key-value stores by address. Commands:

  put KEY VALUE        write KEY (through the log)
  get KEY              linearizable read of KEY (add -stale for a possibly stale one)
  cas KEY OLD NEW      set KEY to NEW if it holds OLD
  status               a table of each replica's status, role, epoch, view, op and
                       commit numbers, and how many ops it is behind the primary
                       (add -digest for a digest of each replica's state, -json
                       for one JSON document instead of the table); exits 1 if
                       any replica did not answer

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
	asJSON := fs.Bool("json", false, "status: print one JSON document instead of the table")
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
		f := statusFormat{digest: *digest, json: *asJSON}
		if *digest {
			return printStatus(c.Status(*timeout), cfg, f, stdout)
		}
		return printStatus(c.StatusWithoutDigest(*timeout), cfg, f, stdout)
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
