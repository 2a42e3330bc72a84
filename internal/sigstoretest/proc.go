package sigstoretest

import (
	"bytes"
	"context"
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

// startProc runs bin with args and exactly env, logging to dir/name.log,
// stopped (SIGTERM, SIGKILL after grace) by a Cleanup that shows the end of
// its log when the test failed.
func startProc(t testing.TB, dir, name, bin string, args, env []string, grace time.Duration) *testproc.Proc {
	t.Helper()
	return testproc.StartTest(t, testproc.Spec{Name: name, Bin: bin, Args: args, Env: env, Dir: dir, Grace: grace})
}

// childEnv is the environment of every server: nothing inherited, so a
// variable of the test process cannot change their behaviour. HOME and
// TMPDIR keep Go's runtime and the libraries from guessing.
func childEnv(dir string) []string {
	return []string{"HOME=" + dir, "TMPDIR=" + dir, "PATH=/usr/bin:/bin"}
}

// waitFor is testproc.WaitFor.
func waitFor(p *testproc.Proc, timeout time.Duration, check func() (bool, error)) error {
	return testproc.WaitFor(p, timeout, check)
}

// waitRestarting is waitFor on *p, restarted (restart sets *p anew, on new
// ports) when it exited because one of its ports was taken meanwhile: a
// free port is only free until somebody else binds it, and the tests start
// many servers at once. The check reads the new address through its
// closure.
func waitRestarting(p **testproc.Proc, restart func(), timeout time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for tries := 1; ; tries++ {
		err := waitFor(*p, max(time.Until(deadline), 5*time.Second), check)
		if err == nil || tries == 5 || !portTaken(*p) {
			return err
		}
		restart()
	}
}

// portTaken reports whether p exited because an address it was to listen
// on was taken.
func portTaken(p *testproc.Proc) bool {
	if !p.Exited() {
		return false
	}
	log, err := os.ReadFile(p.LogPath())
	return err == nil && bytes.Contains(log, []byte("bind: address already in use"))
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
