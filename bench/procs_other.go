//go:build !linux

package main

import "os/exec"

// setParentDeathSignal has no equivalent outside Linux: there the
// interrupt handler and the deferred cleanup are all that stop children.
func setParentDeathSignal(*exec.Cmd) {}
