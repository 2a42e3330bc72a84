package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testConfig() config {
	return config{
		ListenAddr:  defaultListenAddr,
		Version:     "1.2.3",
		Hostname:    "test-host",
		Healthy:     true,
		LatencyRate: 1,
		Rand:        rand.New(rand.NewPCG(1, 2)),
	}
}

func do(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// apiRequests covers every fault-injected route once.
var apiRequests = []struct{ method, path, body string }{
	{"GET", "/api/prompts", ""},
	{"GET", "/api/version", ""},
	{"POST", "/api/prompts/render", `{"template":"hi {{name}}","vars":{"name":"x"}}`},
}

func TestEndpoints(t *testing.T) {
	ts := httptest.NewServer(newServer(testConfig()))
	defer ts.Close()

	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}

	if code, _, body := get("/healthz"); code != 200 || body != "ok" {
		t.Errorf("/healthz = %d %q, want 200 \"ok\"", code, body)
	}
	if code, _, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d, want 200", code)
	}

	code, ctype, body := get("/api/prompts")
	if code != 200 || ctype != "application/json" {
		t.Fatalf("/api/prompts = %d %q", code, ctype)
	}
	var prompts []prompt
	if err := json.Unmarshal([]byte(body), &prompts); err != nil {
		t.Fatalf("/api/prompts body %q: %v", body, err)
	}
	if len(prompts) < 2 || prompts[0].ID == "" || prompts[0].Template == "" {
		t.Errorf("/api/prompts returned %+v, want a few filled-in prompts", prompts)
	}

	code, _, body = get("/api/version")
	var v versionBody
	if err := json.Unmarshal([]byte(body), &v); err != nil || code != 200 {
		t.Fatalf("/api/version = %d %q (%v)", code, body, err)
	}
	if v.Version != "1.2.3" || v.Hostname != "test-host" {
		t.Errorf("/api/version = %+v", v)
	}

	resp, err := http.Post(ts.URL+"/api/prompts/render", "application/json",
		strings.NewReader(`{"template":"Hello {{name}}!","vars":{"name":"Ada"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var rr renderResponse
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("render = %d (%v)", resp.StatusCode, err)
	}
	resp.Body.Close()
	if rr.Output != "Hello Ada!" {
		t.Errorf("render output = %q, want %q", rr.Output, "Hello Ada!")
	}

	code, _, body = get("/metrics")
	if code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "http_requests_total") {
		t.Errorf("/metrics = %d, missing expected metric families:\n%s", code, body)
	}

	// The mux, not our handlers, answers wrong methods.
	resp, err = http.Post(ts.URL+"/api/prompts", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/prompts = %d, want 405", resp.StatusCode)
	}
}

func TestHealthzUnhealthy(t *testing.T) {
	cfg := testConfig()
	cfg.Healthy = false
	h := newServer(cfg)
	if rec := do(t, h, "GET", "/healthz", ""); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/healthz = %d, want 503", rec.Code)
	}
	// Readiness is independent, so the pod stays in the Service while the
	// liveness failure is what gets it restarted.
	if rec := do(t, h, "GET", "/readyz", ""); rec.Code != 200 {
		t.Errorf("/readyz = %d, want 200", rec.Code)
	}
}

func TestRender(t *testing.T) {
	h := newServer(testConfig())
	tests := []struct {
		name, body  string
		wantCode    int
		wantOutput  string
		wantMissing []string
	}{
		{"several vars", `{"template":"{{a}} and {{b}} and {{a}}","vars":{"a":"x","b":"y"}}`, 200, "x and y and x", nil},
		{"spaces inside braces", `{"template":"Hi {{ name }}","vars":{"name":"Bo"}}`, 200, "Hi Bo", nil},
		{"numbers and bools", `{"template":"{{n}} {{big}} {{ok}}","vars":{"n":3,"big":100000000,"ok":true}}`, 200, "3 100000000 true", nil},
		{"missing var kept", `{"template":"{{a}} {{b}} {{b}}","vars":{"a":"x"}}`, 200, "x {{b}} {{b}}", []string{"b"}},
		{"no recursive expansion", `{"template":"{{a}}","vars":{"a":"{{b}}","b":"no"}}`, 200, "{{b}}", nil},
		{"no vars", `{"template":"plain"}`, 200, "plain", nil},
		{"bad json", `{"template":`, 400, "", nil},
		{"not an object", `"hello"`, 400, "", nil},
		{"trailing data", `{"template":"x"} {}`, 400, "", nil},
		{"object var", `{"template":"{{a}}","vars":{"a":{"b":1}}}`, 400, "", nil},
		{"empty body", ``, 400, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, "POST", "/api/prompts/render", tt.body)
			if rec.Code != tt.wantCode {
				t.Fatalf("code = %d, want %d (body %s)", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantCode != 200 {
				var e errorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("error body %q should be JSON with an error message", rec.Body)
				}
				return
			}
			var rr renderResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &rr); err != nil {
				t.Fatal(err)
			}
			if rr.Output != tt.wantOutput {
				t.Errorf("output = %q, want %q", rr.Output, tt.wantOutput)
			}
			if strings.Join(rr.Missing, ",") != strings.Join(tt.wantMissing, ",") {
				t.Errorf("missing = %q, want %q", rr.Missing, tt.wantMissing)
			}
		})
	}
}

func TestErrorRateOne(t *testing.T) {
	cfg := testConfig()
	cfg.ErrorRate = 1
	h := newServer(cfg)

	const rounds = 5
	for range rounds {
		for _, r := range apiRequests {
			if rec := do(t, h, r.method, r.path, r.body); rec.Code != 500 {
				t.Errorf("%s %s = %d, want 500", r.method, r.path, rec.Code)
			}
		}
	}
	// Probes must keep passing, or Kubernetes would restart the canary
	// before analysis sees the errors.
	if rec := do(t, h, "GET", "/healthz", ""); rec.Code != 200 {
		t.Errorf("/healthz = %d, want 200: faults must not reach probes", rec.Code)
	}

	m := scrape(t, h)
	for _, r := range apiRequests {
		labels := map[string]string{"method": r.method, "route": r.path, "code": "500"}
		if got := m.sum("http_request_duration_seconds_count", labels); got != rounds {
			t.Errorf("histogram count %v = %v, want %d", labels, got, rounds)
		}
		if got := m.sum("http_requests_total", labels); got != rounds {
			t.Errorf("http_requests_total %v = %v, want %d", labels, got, rounds)
		}
		labels["le"] = "+Inf"
		if got := m.sum("http_request_duration_seconds_bucket", labels); got != rounds {
			t.Errorf("bucket %v = %v, want %d", labels, got, rounds)
		}
	}
	if got := m.sum("http_requests_total", map[string]string{"code": "200"}); got != 1 {
		t.Errorf("code=200 requests = %v, want 1 (the /healthz probe)", got)
	}
}

func TestErrorRateZero(t *testing.T) {
	h := newServer(testConfig())
	for range 20 {
		for _, r := range apiRequests {
			if rec := do(t, h, r.method, r.path, r.body); rec.Code != 200 {
				t.Fatalf("%s %s = %d, want 200", r.method, r.path, rec.Code)
			}
		}
	}
	m := scrape(t, h)
	if got := m.sum("http_request_duration_seconds_count", map[string]string{"code": "500"}); got != 0 {
		t.Errorf("code=500 count = %v, want 0", got)
	}
	if got := m.sum("http_request_duration_seconds_count", map[string]string{"code": "200"}); got != 60 {
		t.Errorf("code=200 count = %v, want 60", got)
	}
}

func TestErrorRateFraction(t *testing.T) {
	cfg := testConfig()
	cfg.ErrorRate = 0.3
	h := newServer(cfg)
	const n = 400
	failed := 0
	for range n {
		if do(t, h, "GET", "/api/prompts", "").Code == 500 {
			failed++
		}
	}
	// Wide bounds: the seed makes this deterministic, the bounds only guard
	// against the rate being ignored or inverted.
	if failed < n/5 || failed > n*2/5 {
		t.Errorf("%d of %d requests failed with ERROR_RATE=0.3", failed, n)
	}
}

func TestExtraLatency(t *testing.T) {
	cfg := testConfig()
	cfg.ExtraLatency = 30 * time.Millisecond
	h := newServer(cfg)

	const n = 4
	start := time.Now()
	for range n {
		if rec := do(t, h, "GET", "/api/version", ""); rec.Code != 200 {
			t.Fatalf("code = %d", rec.Code)
		}
	}
	if el := time.Since(start); el < n*cfg.ExtraLatency {
		t.Errorf("%d requests took %v, want at least %v", n, el, n*cfg.ExtraLatency)
	}
	// Probes are not delayed.
	do(t, h, "GET", "/healthz", "")

	m := scrape(t, h)
	labels := map[string]string{"route": "/api/version", "code": "200"}
	total := m.sum("http_request_duration_seconds_count", labels)
	if total != n {
		t.Fatalf("count = %v, want %d", total, n)
	}
	labels["le"] = "0.025"
	if fast := m.sum("http_request_duration_seconds_bucket", labels); fast >= total {
		t.Errorf("le=0.025 bucket = %v, want fewer than %v: latency not visible in histogram", fast, total)
	}
	if got := m.sum("http_request_duration_seconds_sum", map[string]string{"route": "/api/version"}); got < 0.03*n {
		t.Errorf("duration sum = %v, want >= %v", got, 0.03*n)
	}
	hz := map[string]string{"route": "/healthz", "le": "0.025"}
	if got := m.sum("http_request_duration_seconds_bucket", hz); got != 1 {
		t.Errorf("/healthz le=0.025 bucket = %v, want 1: probes must not be delayed", got)
	}
}

func TestLatencyRateZero(t *testing.T) {
	cfg := testConfig()
	cfg.ExtraLatency = time.Second
	cfg.LatencyRate = 0
	h := newServer(cfg)
	start := time.Now()
	for range 10 {
		do(t, h, "GET", "/api/prompts", "")
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("LATENCY_RATE=0 still delayed requests: took %v", el)
	}
}

func TestLatencyHonoursCancellation(t *testing.T) {
	cfg := testConfig()
	cfg.ExtraLatency = time.Minute
	h := newServer(cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest("GET", "/api/prompts", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.ServeHTTP(rec, req); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("handler kept sleeping after the client went away")
	}
	if rec.Code != statusClientClosed {
		t.Errorf("code = %d, want %d", rec.Code, statusClientClosed)
	}
}

func TestMetricsNotInstrumented(t *testing.T) {
	h := newServer(testConfig())
	scrape(t, h)
	m := scrape(t, h)
	if got := m.sum("http_requests_total", map[string]string{"route": "/metrics"}); got != 0 {
		t.Errorf("/metrics was counted %v times", got)
	}
}

func TestBucketsIncludeCanaryThresholds(t *testing.T) {
	h := newServer(testConfig())
	do(t, h, "GET", "/readyz", "")
	m := scrape(t, h)
	var les []string
	for _, s := range m {
		if s.name == "http_request_duration_seconds_bucket" && s.labels["route"] == "/readyz" {
			les = append(les, s.labels["le"])
		}
	}
	want := "0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2 5 10 +Inf"
	if got := strings.Join(les, " "); got != want {
		t.Errorf("buckets = %s, want %s", got, want)
	}
}

func TestBucketsOverride(t *testing.T) {
	cfg := testConfig()
	cfg.Buckets = []float64{0.1, 0.5, 5}
	h := newServer(cfg)
	do(t, h, "GET", "/api/prompts", "")
	m := scrape(t, h)
	var les []string
	for _, s := range m {
		if s.name == "http_request_duration_seconds_bucket" && s.labels["route"] == "/api/prompts" && s.labels["code"] == "200" {
			les = append(les, s.labels["le"])
		}
	}
	want := "0.1 0.5 5 +Inf"
	if got := strings.Join(les, " "); got != want {
		t.Errorf("buckets with BUCKETS=0.1,0.5,5 = %s, want %s", got, want)
	}
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type samples []sample

// sum adds up every sample of the named series whose labels include match,
// the way a PromQL sum() over a label selector would.
func (ss samples) sum(name string, match map[string]string) float64 {
	var total float64
outer:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue outer
			}
		}
		total += s.value
	}
	return total
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// scrape reads /metrics in the text exposition format. A hand-rolled parser
// keeps the test free of extra dependencies; our label values never need
// unescaping.
func scrape(t *testing.T, h http.Handler) samples {
	t.Helper()
	rec := do(t, h, "GET", "/metrics", "")
	if rec.Code != 200 {
		t.Fatalf("/metrics = %d", rec.Code)
	}
	var out samples
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, lp := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[lp[1]] = lp[2]
		}
		out = append(out, s)
	}
	return out
}

// TestSeriesExistFromTheStart: every route's 200 series, and the 500 series
// of routes that can fail, are exported at zero before any request, so
// increase() over a canary's first window counts its first errors.
func TestSeriesExistFromTheStart(t *testing.T) {
	m := scrape(t, newServer(testConfig()))
	for _, want := range []map[string]string{
		{"route": "/api/prompts", "code": "500"},
		{"route": "/api/prompts", "code": "200"},
		{"route": "/healthz", "code": "200"},
	} {
		found := false
		for _, s := range m {
			if s.name == "http_requests_total" && s.labels["route"] == want["route"] && s.labels["code"] == want["code"] {
				found = true
				if s.value != 0 {
					t.Errorf("%v = %v before any request, want 0", want, s.value)
				}
			}
		}
		if !found {
			t.Errorf("no http_requests_total series %v before any request", want)
		}
	}
	for _, s := range m {
		if s.name == "http_requests_total" && s.labels["route"] == "/healthz" && s.labels["code"] == "500" {
			t.Errorf("/healthz cannot fail but exports a 500 series")
		}
	}
}
