package sigstoretest

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// timestampPath is the timestamp endpoint of the timestamp authority.
const timestampPath = "/api/v1/timestamp"

// tsaSockDirPrefix starts the name of the directories of the authorities'
// sockets in os.TempDir(), followed by the pid of the test process.
const tsaSockDirPrefix = "sigstoretest-tsa-"

// tsa is a timestamp authority (timestamp-server with an in-memory signer
// and chain).
type tsa struct {
	url  string // http://127.0.0.1:PORT, without timestampPath
	proc *testproc.Proc
	// restart starts it again, without a network namespace of its own
	// only, for when another one holds :2112.
	restart func() *testproc.Proc
}

// startTSA starts the timestamp authority without waiting for it.
//
// timestamp-server always serves metrics on :2112 and exits when that port
// is taken, so a second one (another Sigstore, Fulcio's or anybody's
// default metrics port) would die. Where Linux lets us, it therefore runs
// in a network namespace of its own, serving on a unix socket (sockets in
// the file system cross namespaces) that a loopback proxy in this process
// forwards to. Elsewhere it runs on a loopback port and waits for :2112:
// timestamp authorities then run one at a time.
func startTSA(t testing.TB, bin, dir string) *tsa {
	t.Helper()
	args := []string{
		"serve",
		"--timestamp-signer=memory",
		"--disable-ntp-monitoring",
		"--graceful-timeout=1s",
	}
	unshare, nsArgs := netnsWrapper()
	if unshare == "" {
		port := freePorts(t, 1)[0]
		args = append(args, "--scheme=http", "--host=127.0.0.1", "--port="+port)
		t.Logf("sigstoretest: no network namespace for the timestamp authority; it needs :2112")
		start := func() *testproc.Proc {
			return startProc(t, dir, "tsa", bin, args, childEnv(dir), 3*time.Second)
		}
		return &tsa{url: "http://127.0.0.1:" + port, proc: start(), restart: start}
	}

	// A unix socket path has at most 107 bytes and t.TempDir() can be
	// long. Nothing removes the directory when the test process is killed,
	// so each start removes those of dead processes.
	testproc.RemoveStaleDirs(tsaSockDirPrefix)
	sockDir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", tsaSockDirPrefix, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "tsa.sock")
	args = append(args, "--scheme=unix", "--socket-path="+sock)
	p := startProc(t, dir, "tsa", unshare, append(append(nsArgs, bin), args...), childEnv(dir), 3*time.Second)

	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "tsa"})
		},
		// Not logged: the readiness wait meets a missing socket first.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "timestamp authority: "+err.Error(), http.StatusBadGateway)
		},
		Transport: transport,
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() {
		srv.Close()
		transport.CloseIdleConnections()
	})
	return &tsa{url: srv.URL, proc: p}
}

// netnsWrapper returns unshare and its arguments when they can run a
// program in a new network namespace here: with a user namespace, so that
// no privilege is needed, else (as root) without.
func netnsWrapper() (string, []string) {
	bin, err := exec.LookPath("unshare")
	if err != nil {
		return "", nil
	}
	for _, args := range [][]string{
		{"--user", "--map-root-user", "--net"},
		{"--net"},
	} {
		probe := exec.Command(bin, append(args, "true")...)
		if probe.Run() == nil {
			return bin, args
		}
	}
	return "", nil
}

// ready waits until the authority serves its certificate chain (leaf
// first) and writes it to dir/tsa-chain.pem.
func (a *tsa) ready(dir string, timeout time.Duration) ([]*x509.Certificate, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	var pemChain []byte
	check := func() (bool, error) {
		body, err := httpGet(context.Background(), client, a.url+timestampPath+"/certchain")
		if err != nil {
			return false, err
		}
		pemChain = body
		return true, nil
	}
	deadline := time.Now().Add(timeout)
	for {
		// A restart late in the wait still gets the time to start.
		err := waitFor(a.proc, max(time.Until(deadline), 5*time.Second), check)
		if err == nil {
			break
		}
		if a.restart == nil || !metricsPortTaken(a.proc) {
			return nil, fmt.Errorf("waiting for the timestamp authority on %s: %w", a.url, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("waiting for the timestamp authority on %s: :2112 stayed taken (by another timestamp authority?) for %v", a.url, timeout)
		}
		time.Sleep(250 * time.Millisecond)
		a.proc = a.restart()
	}
	chain, err := parseCerts(pemChain)
	if err != nil {
		return nil, fmt.Errorf("the timestamp authority's chain: %w", err)
	}
	if _, err := writeFile(dir, "tsa-chain.pem", pemChain); err != nil {
		return nil, err
	}
	return chain, nil
}

// metricsPortTaken reports whether p exited because :2112 was taken.
func metricsPortTaken(p *testproc.Proc) bool {
	if !p.Exited() {
		return false
	}
	log, err := os.ReadFile(p.LogPath())
	return err == nil && bytes.Contains(log, []byte(":2112: bind: address already in use"))
}
