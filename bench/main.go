// Command bench holds the project's comparative benchmarks. It is a module
// of its own so that the library's go.mod never depends on the engines it is
// compared against.
//
// Usage:
//
//	go -C bench run . [flags]            vsr against hashicorp/raft, four settings
//	go -C bench run . storage [flags]
//	go -C bench run . raft [flags]       the durable in-process part of the first
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// subcommands maps a subcommand's name to its entry point, which gets the
// arguments after the name and returns the process's exit code.
var subcommands = map[string]struct {
	run  func(args []string) int
	help string
}{
	"raft":    {runRaft, "the durable in-process setting of the default run alone (5s windows)"},
	"storage": {runStorage, "fsync'd append throughput with group commit: our FileStore against bbolt, pebble, raft-wal, raft-boltdb"},
}

// hidden are subcommands this program runs itself in its child processes.
var hidden = map[string]func(args []string) int{
	"raftnode": runRaftNode,
}

func main() {
	args := os.Args[1:]
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		usage()
		runCompare([]string{"-h"}) // lists the default run's flags
		return
	}
	// Without a subcommand (or with flags first) the default comparison runs.
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		os.Exit(runCompare(args))
	}
	if run, ok := hidden[args[0]]; ok {
		os.Exit(run(args[1:]))
	}
	cmd, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: unknown subcommand %q\n", args[0])
		usage()
		os.Exit(2)
	}
	os.Exit(cmd.run(args[1:]))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bench [flags]                 a 3-replica vsr group against a 3-node hashicorp/raft cluster,")
	fmt.Fprintln(os.Stderr, "                                     in process and on loopback, in memory and durable")
	fmt.Fprintln(os.Stderr, "       bench <subcommand> [flags]\n\nsubcommands:")
	names := make([]string, 0, len(subcommands))
	for name := range subcommands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", name, subcommands[name].help)
	}
	fmt.Fprintln(os.Stderr, "\nbench <subcommand> -h lists its flags. The default run's flags:")
}
