package promtest

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// stopGrace is how long a process gets between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// startProc runs bin with args and exactly env (nothing is inherited, so a
// variable set for the test process cannot change the child's behaviour).
// The log lives in a t.TempDir(); a Cleanup stops the process and, when the
// test failed, prints the log's tail.
func startProc(t testing.TB, name, bin string, args, env []string) *testproc.Proc {
	t.Helper()
	dir := t.TempDir() // registered before our Cleanup, so removed after it
	logPath := filepath.Join(dir, name+".log")
	p, err := testproc.Start(testproc.Spec{
		Name:  name,
		Bin:   bin,
		Args:  args,
		Env:   env,
		Dir:   dir,
		Log:   logPath,
		Grace: stopGrace,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s log (last lines of %s):\n%s", name, logPath, p.Tail(40))
		}
	})
	return p
}

// exitError describes how the process ended. Its log is printed by the
// Cleanup of the test that is about to fail.
func exitError(p *testproc.Proc) error {
	status := "exit status 0"
	if err := p.Wait(); err != nil {
		status = err.Error()
	}
	return fmt.Errorf("%s exited early (%s); see its log below", p.Name(), status)
}

// waitFor calls check every 50 ms until it reports done, p exits or
// timeout passes. check's last error explains a timeout.
func waitFor(p *testproc.Proc, timeout time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := check()
		if ok {
			return nil
		}
		if p.Exited() {
			return exitError(p)
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("condition not met")
			}
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		select {
		case <-p.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
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
