package main

import (
	"os"
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

// childPeakRSS is an exited child's peak resident set, from the rusage of
// wait4 (ru_maxrss, in kB on Linux): VmHWM of a process that has gone.
func childPeakRSS(ps *os.ProcessState) (uint64, bool) {
	if ps == nil {
		return 0, false
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru.Maxrss <= 0 {
		return 0, false
	}
	return uint64(ru.Maxrss) << 10, true
}
