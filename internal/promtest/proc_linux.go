package promtest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the child when the test process dies (a panic, a
// `go test -timeout`), so no Prometheus or app is left running.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// processAlive reports whether pid exists (signal 0 checks without sending).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
