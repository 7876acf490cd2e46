//go:build !linux

package main

import (
	"os"
	"os/exec"
)

// setParentDeathSignal has no equivalent outside Linux: there the
// interrupt handler and the deferred cleanup are all that stop children.
func setParentDeathSignal(*exec.Cmd) {}

// childPeakRSS is not read outside Linux.
func childPeakRSS(*os.ProcessState) (uint64, bool) { return 0, false }
