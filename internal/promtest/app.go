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
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const modulePath = "github.com/gantry-ci/gantry"

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
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	sweepStaleBuilds()
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

// sweepStaleBuilds removes build directories of test processes that have
// exited: nothing runs when a test process ends, so each run cleans up after
// the earlier ones.
func sweepStaleBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), buildDirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), buildDirPrefix)
		pid, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '-'), 0)])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(d)
	}
}

// repoRoot finds the checkout: from this source file when the package was
// built without -trimpath, else by walking up from the working directory
// (a test's working directory is its package directory).
func repoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if isRepoRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("cannot find the repository root (a go.mod with module %s) above %s", modulePath, strings.Join(starts, " or "))
}

func isRepoRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// App is a running instance of the sample app.
type App struct {
	Addr string // 127.0.0.1:PORT
	URL  string // http://127.0.0.1:PORT
	proc *proc
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
	a := &App{Addr: addr, URL: "http://" + addr, proc: p}

	probe := "/healthz"
	if healthy, err := strconv.ParseBool(env["HEALTHY"]); err == nil && !healthy {
		probe = "/readyz"
	}
	client := &http.Client{Timeout: 2 * time.Second}
	err := p.waitFor(10*time.Second, func() (bool, error) {
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
func (a *App) Stop() { a.proc.stop() }

// Target returns the app as a scrape target with labels.
func (a *App) Target(labels map[string]string) Target {
	return Target{Addr: a.Addr, Labels: labels}
}
