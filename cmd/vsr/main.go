// Command vsr is the project's one program. Subcommands:
//
//	vsr demo   a replicated group in one process surviving the loss of its primary
//	vsr sim    run the deterministic simulator over many seeds
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
  sim     run the deterministic simulator: seeded faults, safety and
          linearizability checks (vsr sim -h for flags)
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
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vsr: unknown command %q\n\n%s", args[0], usage)
	return 2
}
