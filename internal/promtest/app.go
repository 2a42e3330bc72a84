// Package promtest provides the real parts that canary-analysis tests run
// against: the sample app (testdata/app) built and started as processes, a
// real Prometheus server scraping them, a bounded load generator, and PromQL
// queries over Prometheus' HTTP API.
//
// Helpers that take a testing.TB fail the test (never skip it) when
// something is missing, and stop what they started in t.Cleanup. Prometheus
// is found at $PROMETHEUS, else bin/prometheus in the repository (`make
// tools` installs it from Debian's package).
package promtest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

var (
	appOnce sync.Once
	appPath string
	appErr  error
)

// AppBinary builds testdata/app once per test process and returns the
// binary's path. The binary lives in a process-wide temporary directory, not
// in a t.TempDir, because it outlives the test that built it.
func AppBinary(t testing.TB) string {
	t.Helper()
	appOnce.Do(func() { appPath, appErr = buildApp() })
	if appErr != nil {
		t.Fatal(appErr)
	}
	return appPath
}

func buildApp() (string, error) {
	root, err := testproc.RepoRoot()
	if err != nil {
		return "", err
	}
	// Nothing runs when a test process ends, so each run removes the
	// builds of the earlier ones.
	testproc.RemoveStaleDirs(buildDirPrefix)
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", buildDirPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("building the sample app: %w", err)
	}
	bin := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(root, "testdata", "app")
	// testdata/app is its own module: no workspace may pull it into another.
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("building the sample app in %s: %v\n%s", cmd.Dir, err, out)
	}
	return bin, nil
}

// buildDirPrefix names the directories AppBinary builds into; the owning
// test process's pid follows it.
const buildDirPrefix = "gantry-promtest-app-"

// App is a running instance of the sample app.
type App struct {
	Addr string // 127.0.0.1:PORT
	URL  string // http://127.0.0.1:PORT
	proc *testproc.Proc
}

// StartApp runs the sample app with LISTEN_ADDR on a free loopback port plus
// env (ERROR_RATE, EXTRA_LATENCY, BUCKETS, ...; nothing else is inherited
// from the test's environment) and waits up to 10 s until /healthz answers
// 200 (/readyz when env sets HEALTHY=false, since /healthz then answers 503
// by design). The app is stopped in Cleanup.
func StartApp(t testing.TB, env map[string]string) *App {
	t.Helper()
	bin := AppBinary(t)
	addr := freePort(t)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vars := []string{"LISTEN_ADDR=" + addr}
	for _, k := range keys {
		if k == "LISTEN_ADDR" {
			t.Fatalf("StartApp: LISTEN_ADDR is chosen by StartApp; leave it out of env")
		}
		vars = append(vars, k+"="+env[k])
	}
	p := startProc(t, "app-"+addr, bin, nil, vars)
	probe := "/healthz"
	if healthy, err := strconv.ParseBool(env["HEALTHY"]); err == nil && !healthy {
		probe = "/readyz"
	}
	return waitApp(t, &App{Addr: addr, URL: "http://" + addr, proc: p}, probe, env)
}

// StartNodeApp runs the Node sample app (testdata/node-app: express with
// express-prom-bundle on prom-client, their defaults) with node from PATH,
// LISTEN_ADDR on a free loopback port plus env (ERROR_RATE, EXTRA_LATENCY,
// LATENCY_RATE, BUCKETS, as the Go app takes them), and waits until
// /healthz answers. Its packages must be installed (`make tools` runs npm
// ci there); a missing node or package fails the test.
func StartNodeApp(t testing.TB, env map[string]string) *App {
	t.Helper()
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "node-app")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "express-prom-bundle")); err != nil {
		t.Fatalf("the Node sample app's packages are not installed in %s: run `make tools` (npm ci there)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH (%v): the Node sample app needs Node.js 18 or later", err)
	}
	addr := freePort(t)
	vars := []string{"LISTEN_ADDR=" + addr}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vars = append(vars, k+"="+env[k])
	}
	p := startProc(t, "node-app-"+addr, node, []string{filepath.Join(dir, "server.js")}, vars)
	return waitApp(t, &App{Addr: addr, URL: "http://" + addr, proc: p}, "/healthz", env)
}

// waitApp waits up to 10 s until probe answers 200.
func waitApp(t testing.TB, a *App, probe string, env map[string]string) *App {
	t.Helper()
	addr, p := a.Addr, a.proc
	client := &http.Client{Timeout: 2 * time.Second}
	err := waitFor(p, 10*time.Second, func() (bool, error) {
		resp, err := client.Get(a.URL + probe)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET %s = %s", probe, resp.Status)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("sample app on %s with %v did not come up: %v", addr, env, err)
	}
	return a
}

// Stop stops the app now (SIGTERM, SIGKILL after 5 s), e.g. to make a
// target go down mid-test. Cleanup calls it too; calling both is fine.
func (a *App) Stop() { a.proc.Stop() }

// Target returns the app as a scrape target with labels.
func (a *App) Target(labels map[string]string) Target {
	return Target{Addr: a.Addr, Labels: labels}
}
