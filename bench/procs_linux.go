package main

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel SIGKILL the child when this process
// dies, even by SIGKILL, when no cleanup of ours runs. (Strictly, when the
// OS thread that started the child exits; Go keeps its threads unless a
// goroutine locked to one exits, which nothing in this program does.)
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
