package testproc

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// StartTest starts s for a test. The log goes to s.Log, or to
// <s.Dir>/<s.Name>.log when s.Log is empty (s.Dir defaults to a
// t.TempDir()). A Cleanup stops the process and, when the test failed,
// prints the end of its log. A process that cannot start fails the test.
func StartTest(t testing.TB, s Spec) *Proc {
	t.Helper()
	if s.Dir == "" {
		s.Dir = t.TempDir() // registered before our Cleanup, so removed after it
	}
	if s.Log == "" {
		s.Log = filepath.Join(s.Dir, s.Name+".log")
	}
	p, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s log (last lines of %s):\n%s", s.Name, s.Log, p.Tail(40))
		}
	})
	return p
}

// WaitFor calls check every 50 ms until it reports done, p exits or
// timeout passes. An early exit names the exit status and shows the end of
// the log; a timeout is explained by check's last error.
func WaitFor(p *Proc, timeout time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := check()
		if ok {
			return nil
		}
		if p.Exited() {
			status := "exit status 0"
			if werr := p.Wait(); werr != nil {
				status = werr.Error()
			}
			return fmt.Errorf("%s exited early (%s); last lines of %s:\n%s", p.Name(), status, p.LogPath(), p.Tail(20))
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("condition not met")
			}
			return fmt.Errorf("%s not ready after %v: %w", p.Name(), timeout, err)
		}
		select {
		case <-p.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
