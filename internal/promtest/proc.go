package promtest

import (
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// stopGrace is how long a process gets between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// startProc runs bin with args and exactly env (nothing is inherited, so a
// variable set for the test process cannot change the child's behaviour),
// stopped by a Cleanup that shows its log when the test failed.
//
// The child runs at a higher scheduling priority than the tests and the
// compilers around it (nice -10, when this process may raise it, as root
// in CI): the canary analysis judges the latency the sample apps and
// Prometheus measure, and a cold `make test` compiles test binaries while
// they serve. One instance stalled for two seconds by the compilers then
// looks like a slower version (seen once: 13 of 177 canary requests over
// 2 s in the first window, stable unaffected, a good version failed).
func startProc(t testing.TB, name, bin string, args, env []string) *testproc.Proc {
	t.Helper()
	// Through nice(1), so every thread of the child has the priority
	// (Linux keeps a nice value per thread; the Go runtime and Prometheus
	// start threads before a setpriority from here could reach them).
	// Not root: nice says it cannot and runs the program as it is.
	if nice, err := exec.LookPath("nice"); err == nil {
		args = append([]string{"-n", "-10", bin}, args...)
		bin = nice
	}
	return testproc.StartTest(t, testproc.Spec{Name: name, Bin: bin, Args: args, Env: env, Grace: stopGrace})
}

// waitFor is testproc.WaitFor.
func waitFor(p *testproc.Proc, timeout time.Duration, check func() (bool, error)) error {
	return testproc.WaitFor(p, timeout, check)
}

// freePort returns 127.0.0.1:<port> for a port that was free a moment ago.
// Another process could take it before the child binds it; for tests on a
// loopback interface that race is acceptable.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
