package promtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// Target is something for Prometheus to scrape at http://Addr/metrics. Its
// Labels are attached to every series scraped from it (static_configs
// labels), e.g. {"job": "api", "track": "canary"}; without a "job" label the
// job is "promtest". The instance label is Addr.
type Target struct {
	Addr   string
	Labels map[string]string
}

func (tg Target) String() string {
	if len(tg.Labels) == 0 {
		return tg.Addr
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(tg.Labels)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, tg.Labels[k]))
	}
	return tg.Addr + "{" + strings.Join(parts, ",") + "}"
}

// Prometheus is a running Prometheus server on a loopback port.
type Prometheus struct {
	URL     string // http://127.0.0.1:PORT (https:// when secured)
	targets []Target
	proc    *testproc.Proc
	// CA is the PEM certificate of the CA that signed a secured
	// Prometheus' TLS certificate (StartSecuredPrometheus).
	CA []byte
}

// Security puts a Prometheus behind its own --web.config.file: TLS with a
// certificate for 127.0.0.1 from a fresh CA, and basic auth.
type Security struct{ User, Password string }

// clients holds the HTTP client for each secured Prometheus URL, so that
// Query, QueryVector and the helpers reach it; others use the default.
var clients sync.Map

func clientFor(promURL string) *http.Client {
	for u := strings.TrimRight(promURL, "/"); ; {
		if c, ok := clients.Load(u); ok {
			return c.(*http.Client)
		}
		i := strings.LastIndex(u, "/")
		if i < len("https://") {
			return http.DefaultClient
		}
		u = u[:i]
	}
}

type basicAuth struct {
	next       http.RoundTripper
	user, pass string
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(req)
}

// StartSecuredPrometheus is StartPrometheus behind TLS and basic auth
// (Prometheus' own web config): only a client trusting p.CA and sending
// the user and password gets an answer. This package's queries use them.
func StartSecuredPrometheus(t testing.TB, sec Security, targets ...Target) *Prometheus {
	t.Helper()
	return startPrometheus(t, &sec, targets)
}

// Timeouts of StartPrometheus.
const (
	promReadyTimeout       = 20 * time.Second
	promFirstScrapeTimeout = 30 * time.Second
)

// StartPrometheus runs a Prometheus server (binary from $PROMETHEUS, else
// bin/prometheus in the repository) that scrapes targets every second, with
// its TSDB in a t.TempDir(). It returns once Prometheus is ready and has
// scraped every target successfully (up == 1), so queries see data from the
// start. Cleanup stops it; when the test failed, the tail of its log is
// printed.
//
// Prometheus 2.42 is ready in well under a second but applies discovered
// targets on a fixed 5 s tick, so StartPrometheus takes 5-6 s. A test that
// needs traffic in Prometheus can start its Load before, to overlap the two.
func StartPrometheus(t testing.TB, targets ...Target) *Prometheus {
	t.Helper()
	return startPrometheus(t, nil, targets)
}

func startPrometheus(t testing.TB, sec *Security, targets []Target) *Prometheus {
	t.Helper()
	bin, err := prometheusBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	cfg, err := prometheusConfig(targets)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=1h",
		"--web.listen-address=" + addr,
	}
	// Prometheus needs no environment; HOME and TMPDIR only keep Go's
	// runtime and libraries from guessing.
	env := []string{"HOME=" + dir, "TMPDIR=" + os.TempDir()}
	prom := &Prometheus{URL: "http://" + addr, targets: targets}
	client := &http.Client{Timeout: 2 * time.Second}
	if sec != nil {
		web, ca, err := webConfig(dir, *sec)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file="+web)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		client.Transport = basicAuth{next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, user: sec.User, pass: sec.Password}
		prom.URL, prom.CA = "https://"+addr, ca
		clients.Store(prom.URL, &http.Client{Transport: client.Transport, Timeout: 30 * time.Second})
		t.Cleanup(func() { clients.Delete(prom.URL) })
	}

	start := time.Now()
	p := startProc(t, "prometheus-"+addr, bin, args, env)
	prom.proc = p

	err = waitFor(p, promReadyTimeout, func() (bool, error) {
		resp, err := client.Get(prom.URL + "/-/ready")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET /-/ready = %s", resp.Status)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("prometheus (%s) on %s did not get ready: %v", bin, addr, err)
	}
	ready := time.Since(start)

	if len(targets) > 0 {
		err = waitFor(p, promFirstScrapeTimeout, func() (bool, error) {
			missing, err := prom.targetsNotUp(context.Background())
			if err != nil {
				return false, err
			}
			if len(missing) > 0 {
				return false, fmt.Errorf("up != 1 for targets: %s", strings.Join(missing, ", "))
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("prometheus on %s has not scraped every target: %v%s", addr, err, prom.scrapeErrors())
		}
	}
	t.Logf("prometheus on %s: ready after %v, every target scraped after %v", addr,
		ready.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return prom
}

// Stop stops Prometheus now (SIGTERM, SIGKILL after 5 s), e.g. to test what
// happens when it goes away mid-run. Cleanup calls it too; calling both is
// fine.
func (p *Prometheus) Stop() { p.proc.Stop() }

// WaitScrape waits (up to 10 s) until every target has been scraped after
// the call, so that queries made next include everything the targets
// counted before it, e.g. the requests of a load that was just stopped.
func (p *Prometheus) WaitScrape(t testing.TB) {
	t.Helper()
	since := time.Now()
	err := waitFor(p.proc, 10*time.Second, func() (bool, error) {
		samples, err := QueryVector(context.Background(), p.URL, "timestamp(up)")
		if err != nil {
			return false, err
		}
		var stale []string
		for _, tg := range p.targets {
			s, ok := findTarget(samples, tg)
			if !ok || s.Value*1000 < float64(since.UnixMilli()) {
				stale = append(stale, tg.String())
			}
		}
		if len(stale) > 0 {
			return false, fmt.Errorf("not scraped since %s: %s", since.Format(time.TimeOnly), strings.Join(stale, ", "))
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("prometheus on %s: %v", p.URL, err)
	}
}

// targetsNotUp lists the targets without an up == 1 sample.
func (p *Prometheus) targetsNotUp(ctx context.Context) ([]string, error) {
	samples, err := QueryVector(ctx, p.URL, "up")
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, tg := range p.targets {
		s, ok := findTarget(samples, tg)
		switch {
		case !ok:
			missing = append(missing, tg.String()+" (not scraped yet)")
		case s.Value != 1:
			missing = append(missing, fmt.Sprintf("%s (up=%v)", tg, s.Value))
		}
	}
	return missing, nil
}

// scrapeErrors lists the last scrape error of each target that has one,
// from /api/v1/targets, to explain why a target is not up.
func (p *Prometheus) scrapeErrors() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/targets?state=active", nil)
	if err != nil {
		return ""
	}
	resp, err := clientFor(p.URL).Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil {
		return ""
	}
	var b strings.Builder
	for _, tg := range r.Data.ActiveTargets {
		if tg.LastError != "" {
			fmt.Fprintf(&b, "\n  %s (%s): %s", tg.ScrapeURL, tg.Health, tg.LastError)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "\nlast scrape errors:" + b.String()
}

// findTarget returns the sample of tg: the one carrying its instance and all
// of its labels.
func findTarget(samples []Sample, tg Target) (Sample, bool) {
	want := map[string]string{"instance": tg.Addr}
	maps.Copy(want, tg.Labels)
next:
	for _, s := range samples {
		for k, v := range want {
			if s.Labels[k] != v {
				continue next
			}
		}
		return s, true
	}
	return Sample{}, false
}

// prometheusBinary is $PROMETHEUS, else bin/prometheus in the repository.
func prometheusBinary() (string, error) {
	bin := os.Getenv("PROMETHEUS")
	if bin == "" {
		root, err := testproc.RepoRoot()
		if err != nil {
			return "", fmt.Errorf("prometheus not found (%v): run `make tools` or set PROMETHEUS", err)
		}
		bin = filepath.Join(root, "bin", "prometheus")
	}
	fi, err := os.Stat(bin)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("prometheus not found at %s: run `make tools` or set PROMETHEUS", bin)
	}
	return bin, nil
}

// prometheusConfig is one scrape job with a static_config per target, so
// every target keeps its own labels. JSON is valid YAML and needs no quoting
// rules of its own.
func prometheusConfig(targets []Target) ([]byte, error) {
	type staticConfig struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels,omitempty"`
	}
	statics := []staticConfig{}
	for _, tg := range targets {
		if tg.Addr == "" {
			return nil, fmt.Errorf("StartPrometheus: target %v has no Addr", tg)
		}
		statics = append(statics, staticConfig{Targets: []string{tg.Addr}, Labels: tg.Labels})
	}
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     "1s",
			"scrape_timeout":      "1s",
			"evaluation_interval": "1s",
		},
		"scrape_configs": []any{map[string]any{
			"job_name":       "promtest",
			"metrics_path":   "/metrics",
			"static_configs": statics,
		}},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// webConfig writes a Prometheus web config into dir: a fresh CA, a TLS
// certificate for 127.0.0.1 it signs, and sec's user with a bcrypt hash
// of the password. It returns the config's path and the CA's PEM.
func webConfig(dir string, sec Security) (string, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "promtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(sec.Password), bcrypt.MinCost)
	if err != nil {
		return "", nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"web.yml": fmt.Appendf(nil, "tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %q: %q\n",
			filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), sec.User, hash),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return "", nil, err
		}
	}
	return filepath.Join(dir, "web.yml"), caPEM, nil
}
