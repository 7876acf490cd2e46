// Command bench holds the project's comparative benchmarks. It is a module
// of its own so that the library's go.mod never depends on the engines it is
// compared against.
//
// Usage:
//
//	go -C bench run . storage [flags]
//	go -C bench run . raft [flags]
package main

import (
	"fmt"
	"os"
	"sort"
)

// subcommands maps a subcommand's name to its entry point, which gets the
// arguments after the name and returns the process's exit code.
var subcommands = map[string]struct {
	run  func(args []string) int
	help string
}{
	"raft":    {runRaft, "a durable 3-replica vsr group against a durable 3-node hashicorp/raft cluster, in one process"},
	"storage": {runStorage, "fsync'd append throughput with group commit: our FileStore against bbolt, pebble, raft-wal, raft-boltdb"},
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "help" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: unknown subcommand %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Exit(cmd.run(os.Args[2:]))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bench <subcommand> [flags]\n\nsubcommands:")
	names := make([]string, 0, len(subcommands))
	for name := range subcommands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", name, subcommands[name].help)
	}
	fmt.Fprintln(os.Stderr, "\nbench <subcommand> -h lists its flags.")
}
