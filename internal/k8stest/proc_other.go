//go:build !linux

package k8stest

import "os/exec"

// setDeathSignal has no portable equivalent outside Linux; Main still stops
// the shared control plane when the tests end normally.
func setDeathSignal(*exec.Cmd) {}

// detachProcess: elsewhere a child already outlives its parent.
func detachProcess(*exec.Cmd) {}

// processAlive cannot tell elsewhere; assuming alive keeps every directory.
func processAlive(int) bool { return true }
