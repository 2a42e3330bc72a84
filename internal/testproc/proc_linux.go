package testproc

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the child when this process dies (a panic, a
// `go test -timeout`), so no control plane, Prometheus or app is left
// running.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// detachProcess puts the child in its own session, so it survives the
// process that started it and the terminal's signals (make k8s-up).
func detachProcess(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

// processAlive reports whether pid exists (signal 0 checks without sending).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
