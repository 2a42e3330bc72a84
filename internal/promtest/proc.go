package promtest

import (
	"net"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// stopGrace is how long a process gets between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// startProc runs bin with args and exactly env (nothing is inherited, so a
// variable set for the test process cannot change the child's behaviour),
// stopped by a Cleanup that shows its log when the test failed.
func startProc(t testing.TB, name, bin string, args, env []string) *testproc.Proc {
	t.Helper()
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
