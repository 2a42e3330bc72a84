package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
	URL     string // http://127.0.0.1:PORT
	targets []Target
	proc    *testproc.Proc
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

	start := time.Now()
	p := startProc(t, "prometheus-"+addr, bin, args, env)
	prom := &Prometheus{URL: "http://" + addr, targets: targets, proc: p}

	client := &http.Client{Timeout: 2 * time.Second}
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
	resp, err := http.DefaultClient.Do(req)
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
