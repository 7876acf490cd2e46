// Command vsr is the project's one program. Subcommands:
//
//	vsr demo   a replicated group in one process surviving the loss of its primary
//	vsr node   run one replica of a group across machines
//	vsr client put/get/cas/status against a group by address
//	vsr admin  reconfigure a running group: replace, add or remove members
//	vsr certs  make a test CA and certificates for mutual TLS
//	vsr sim    run the deterministic simulator over many seeds
//	vsr bench  throughput and latency of a group, by address or in this process
//	vsr history show that memory, message sizes and failover stay flat as history grows
//
// Run `vsr <subcommand> -h` for a subcommand's flags.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: vsr <command> [flags]

commands:
  demo    start 3 replicas in one process, kill the primary, watch the view
          change and the recovery, check that nothing acknowledged was lost
  node    run one replica of a group, one per machine (vsr node -h)
  client  put, get, cas and status against a group by address (vsr client -h)
  admin   reconfigure a running group: replace, add or remove members
          (vsr admin reconfigure -h)
  certs   make a test CA and certificates for mutual TLS (vsr certs -h)
  sim     run the deterministic simulator: seeded faults, safety and
          linearizability checks (vsr sim -h for flags)
  bench   throughput and latency histogram of a group by address, or of 3
          replicas started in this process (vsr bench -h)
  history write millions of ops and print heap, largest message and failover
          time as the history grows, in one process and over loopback
  failover measure ticks to a new primary and to the first write after the primary crashes (vsr failover -h)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "demo":
		return demoCommand(args[1:], stdout, stderr)
	case "sim":
		return simCommand(args[1:], stdout, stderr)
	case "node":
		return nodeCommand(args[1:], stdout, stderr)
	case "client":
		return clientCommand(args[1:], stdout, stderr)
	case "bench":
		return benchCommand(args[1:], stdout, stderr)
	case "history":
		return historyCommand(args[1:], stdout, stderr)
	case "failover":
		return failoverCommand(args[1:], stdout, stderr)
	case "certs":
		return certsCommand(args[1:], stdout, stderr)
	case "admin":
		return adminCommand(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vsr: unknown command %q\n\n%s", args[0], usage)
	return 2
}
