package sigstoretest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// startProc runs bin with args and exactly env, logging to dir/name.log. A
// Cleanup stops it (SIGTERM, SIGKILL after grace) and, when the test
// failed, prints the end of its log.
func startProc(t testing.TB, dir, name, bin string, args, env []string, grace time.Duration) *testproc.Proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	p, err := testproc.Start(testproc.Spec{
		Name:  name,
		Bin:   bin,
		Args:  args,
		Env:   env,
		Dir:   dir,
		Log:   logPath,
		Grace: grace,
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

// childEnv is the environment of every server: nothing inherited, so a
// variable of the test process cannot change their behaviour. HOME and
// TMPDIR keep Go's runtime and the libraries from guessing.
func childEnv(dir string) []string {
	return []string{"HOME=" + dir, "TMPDIR=" + dir, "PATH=/usr/bin:/bin"}
}

// waitFor calls check every 50 ms until it reports done, p exits or the
// deadline passes. check's last error explains a timeout.
func waitFor(p *testproc.Proc, timeout time.Duration, check func() (bool, error)) error {
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

// freePorts returns n distinct loopback ports that were free a moment ago.
// They are held open together so that no two are the same; another
// process could still take one before the child binds it, an acceptable
// race on a loopback interface.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		defer ln.Close()
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return ports
}

// httpGet returns the body of a 200 answer to GET url.
func httpGet(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
	}
	return body, nil
}

// writeFile writes b to dir/name and returns the path.
func writeFile(dir, name string, b []byte) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", err
	}
	return path, nil
}
