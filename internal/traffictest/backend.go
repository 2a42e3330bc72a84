package traffictest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/promtest"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// BackendPort is the port every backend listens on. Each backend has an
// address of its own, so they can share it, and all backends of a Service
// then match its one target port.
const BackendPort = 8080

// Backend is one instance of the sample app (testdata/app) running inside
// a Network, reachable from the host at Addr.
type Backend struct {
	// Version is the app's APP_VERSION, which it reports at /api/version:
	// how Tally tells backends apart.
	Version string
	// Addr is the backend's address inside the network, port BackendPort.
	Addr netip.AddrPort
	// URL is http://Addr.
	URL  string
	proc *testproc.Proc
}

// StartApp runs the sample app inside the network on a new address with
// APP_VERSION=version and env (ERROR_RATE, EXTRA_LATENCY, ... as in
// testdata/app/README.md; nothing else is inherited), and waits up to 10 s
// until its /readyz answers 200 from the host. The app is built once per
// test process (promtest.AppBinary) and stopped in Cleanup; when the test
// failed, its log is printed.
//
// The app serves /api/* and /metrics, so a Backend is also a scrape
// target for promtest.StartPrometheus (Backend.Target).
func (n *Network) StartApp(t testing.TB, version string, env map[string]string) *Backend {
	t.Helper()
	if version == "" {
		t.Fatal("traffictest: StartApp needs a version: backends are told apart by the version they report")
	}
	bin := promtest.AppBinary(t)
	addr, err := n.addAddr()
	if err != nil {
		t.Fatalf("traffictest: %v", err)
	}
	ap := netip.AddrPortFrom(addr, BackendPort)
	vars := []string{"LISTEN_ADDR=" + ap.String(), "APP_VERSION=" + version}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if k == "LISTEN_ADDR" || k == "APP_VERSION" {
			t.Fatalf("traffictest: StartApp chooses %s; leave it out of env", k)
		}
		vars = append(vars, k+"="+env[k])
	}
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		t.Fatalf("traffictest: %v", err)
	}
	name := "app-" + version + "-" + addr.String()
	dir := t.TempDir() // registered before the Cleanup below, so removed after it
	logPath := filepath.Join(dir, name+".log")
	// `ip netns exec` enters the namespace and execs the app, so the pid
	// (and testproc's death signal) is the app's own.
	p, err := testproc.Start(testproc.Spec{
		Name: name,
		Bin:  ipBin,
		Args: []string{"netns", "exec", n.name, bin},
		Env:  vars,
		Dir:  dir,
		Log:  logPath,
	})
	if err != nil {
		t.Fatalf("traffictest: %v", err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("traffictest: %s log (last lines of %s):\n%s", name, logPath, p.Tail(20))
		}
	})
	b := &Backend{Version: version, Addr: ap, URL: "http://" + ap.String(), proc: p}

	client := directClient(2 * time.Second)
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(b.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b
			}
			err = fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		if p.Exited() {
			t.Fatalf("traffictest: %s exited early (%v); see its log below", name, p.Wait())
		}
		if time.Now().After(deadline) {
			t.Fatalf("traffictest: %s in namespace %s did not come up within 10 s: %v", name, n.name, err)
		}
		select {
		case <-p.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the backend now (SIGTERM, then SIGKILL), e.g. to make an
// endpoint fail mid-test. Cleanup calls it too; calling both is fine.
func (b *Backend) Stop() { b.proc.Stop() }

// Target returns the backend as a scrape target for
// promtest.StartPrometheus, with labels on every series scraped from it
// (e.g. {"track": "canary"}).
func (b *Backend) Target(labels map[string]string) promtest.Target {
	return promtest.Target{Addr: b.Addr.String(), Labels: labels}
}

// Pid is the backend process's id, for tests that check it is gone.
func (b *Backend) Pid() int { return b.proc.Pid() }

// Tally counts n sequential GET requests to base+"/api/version" by the
// version of the backend that answered ("v1": 360, "v2": 40). An answer
// other than 200 counts under "HTTP <code>" (e.g. "HTTP 404" until Traefik
// routes a new HTTPRoute), a request without an answer under "error", so a
// caller that expects only versions sees everything else as a failure.
// Requests are sequential on purpose: a weighted round robin then splits
// them deterministically.
func Tally(t testing.TB, base string, n int) map[string]int {
	t.Helper()
	// A fresh client per call, so no connection outlives a configuration
	// change.
	client := directClient(5 * time.Second)
	defer client.CloseIdleConnections()
	counts := make(map[string]int)
	var firstErr error
	for range n {
		resp, err := client.Get(strings.TrimSuffix(base, "/") + "/api/version")
		if err != nil {
			counts["error"]++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		var v struct {
			Version string `json:"version"`
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK:
			counts["HTTP "+strconv.Itoa(resp.StatusCode)]++
		case err != nil || v.Version == "":
			counts["error"]++
			if firstErr == nil {
				firstErr = fmt.Errorf("decoding /api/version: %v", err)
			}
		default:
			counts[v.Version]++
		}
	}
	if firstErr != nil {
		t.Logf("traffictest: Tally %s: %d of %d requests failed, first: %v", base, counts["error"], n, firstErr)
	}
	return counts
}

// directClient never uses a proxy: HTTP_PROXY in a CI environment would
// otherwise catch the requests to the test network's addresses (Go skips
// proxies for loopback only).
func directClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
}
