package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// version is the simulated traffic of one version: requests per second and
// the share of errors, non-2xx/3xx, and requests slower than 1 s and 2 s.
type version struct {
	rps                          float64
	errors, failed, over1, over2 float64
}

// fakeProm answers the engine's default queries from the versions'
// rates, as Prometheus would for steady traffic (fast unit tier; the real
// server is exercised in prometheus_test.go).
type fakeProm struct {
	versions map[string]version // by track label value
	les      []string
	fail     func(call int) error
	calls    int
	nan      bool
}

var (
	rangeRE = regexp.MustCompile(`\[(\d+)s\]`)
	trackRE = regexp.MustCompile(`track="(\w+)"`)
)

func (f *fakeProm) Query(_ context.Context, expr string, _ time.Time) (float64, bool, error) {
	f.calls++
	if f.fail != nil {
		if err := f.fail(f.calls); err != nil {
			return 0, false, err
		}
	}
	if expr == "vector(1)" {
		return 1, true, nil
	}
	m := trackRE.FindStringSubmatch(expr)
	if m == nil {
		return 0, false, nil
	}
	v, ok := f.versions[m[1]]
	if !ok || v.rps == 0 {
		return 0, false, nil
	}
	if f.nan {
		return math.NaN(), true, nil
	}
	secs, _ := strconv.Atoi(rangeRE.FindStringSubmatch(expr)[1])
	total := v.rps * float64(secs)
	switch {
	case strings.Contains(expr, `code=~"5.."`):
		return total * v.errors, true, nil
	case strings.Contains(expr, `code=~"[23].."`):
		return total * (1 - v.failed), true, nil
	case strings.Contains(expr, `le=~"1|`):
		return total * (1 - v.over1), true, nil
	case strings.Contains(expr, `le=~"2|`):
		return total * (1 - v.over2), true, nil
	case strings.Contains(expr, "_bucket"):
		return 0, false, nil // a bucket this fake does not have
	}
	return total, true, nil
}

func (f *fakeProm) Labels(_ context.Context, _, _ string, _ time.Time) ([]string, error) {
	return f.les, nil
}

func testConfig() Config {
	return Config{
		SelectorNew: `job="api",track="canary"`, SelectorStable: `job="api",track="stable"`,
		Window: 5 * time.Minute, Interval: 30 * time.Second, MaxHold: 10 * time.Minute, Step: "10%",
		Thresholds: Thresholds{SuccessRate: 0.95, ErrorRate: 0.05, P95: time.Second, P99: 2 * time.Second},
		Policy:     DefaultPolicy(),
		Queries:    DefaultQueries(),
	}
}

// run runs the engine on a fake clock and returns the result, the time the
// step took, and the decision log.
func run(t *testing.T, cfg Config, f *fakeProm) (Result, time.Duration, []LogLine) {
	t.Helper()
	if f.les == nil {
		f.les = []string{"0.5", "1", "2", "5", "+Inf"}
	}
	e, err := New(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	start := now
	e.Now = func() time.Time { return now }
	e.Sleep = func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil }
	var log bytes.Buffer
	e.Log = &log
	res, err := e.Run(context.Background())
	if err != nil && !errors.Is(err, ErrNoBucket) {
		t.Fatal(err)
	}
	var lines []LogLine
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		if l == "" {
			continue
		}
		var ll LogLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			t.Fatalf("decision log line %q: %v", l, err)
		}
		lines = append(lines, ll)
	}
	return res, now.Sub(start), lines
}

func TestRunVerdicts(t *testing.T) {
	t.Parallel()
	healthy := version{rps: 20, errors: 0.002, failed: 0.004, over1: 0.01, over2: 0.001}
	for _, tc := range []struct {
		name        string
		canary      version
		stable      version
		noStable    bool
		modify      func(*Config)
		want        State
		wantWithin  time.Duration // the step must end by then
		wantAtLeast time.Duration // and not before
		reason      string
	}{
		{name: "healthy canary passes at the end of the window", canary: healthy, stable: healthy,
			want: Pass, wantAtLeast: 5 * time.Minute, wantWithin: 5 * time.Minute},
		{name: "20% errors fail at the first look", canary: version{rps: 20, errors: 0.2, failed: 0.2, over1: 0.01}, stable: healthy,
			want: Fail, wantWithin: 30 * time.Second, reason: "error-rate: lower bound above the limit"},
		{name: "tail latency regression fails on p99 only", canary: version{rps: 20, errors: 0.002, failed: 0.002, over1: 0.03, over2: 0.03}, stable: healthy,
			want: Fail, wantWithin: 5 * time.Minute, reason: "p99:"},
		{name: "slightly worse than stable, within margin and limits, passes", canary: version{rps: 20, errors: 0.012, failed: 0.012, over1: 0.01, over2: 0.001},
			stable: version{rps: 20, errors: 0.008, failed: 0.008, over1: 0.01, over2: 0.001}, want: Pass, wantAtLeast: 5 * time.Minute},
		{name: "regression against stable below the absolute limit fails", canary: version{rps: 50, errors: 0.035, failed: 0.035, over1: 0.01, over2: 0.001},
			stable: version{rps: 50, errors: 0.002, failed: 0.002, over1: 0.01, over2: 0.001}, want: Fail, reason: "worse than stable"},
		{name: "shared incident (stable fails too) holds instead of failing", canary: version{rps: 20, errors: 0.15, failed: 0.15, over1: 0.01},
			stable: version{rps: 20, errors: 0.15, failed: 0.15, over1: 0.01}, want: Inconclusive, wantAtLeast: 10 * time.Minute, reason: "shared incident"},
		{name: "no traffic fails safe by default", canary: version{}, stable: healthy,
			want: Fail, wantAtLeast: 5 * time.Minute, wantWithin: 5 * time.Minute, reason: "no data, failing safe"},
		{name: "no traffic with pause holds to max-hold and reports no-data", canary: version{}, stable: healthy,
			modify: func(c *Config) { c.Policy.NoData = NoDataPause }, want: NoData, wantAtLeast: 10 * time.Minute},
		{name: "no traffic with promote passes", canary: version{}, stable: healthy,
			modify: func(c *Config) { c.Policy.NoData = NoDataPromote }, want: Pass, reason: "promoted by policy"},
		{name: "sparse traffic is inconclusive, then the no-data policy", canary: version{rps: 0.1, errors: 0}, stable: healthy,
			want: Fail, wantAtLeast: 10 * time.Minute, reason: "too few requests by max-hold"},
		{name: "sparse traffic with pause ends as no-data", canary: version{rps: 0.1}, stable: healthy,
			modify: func(c *Config) { c.Policy.NoData = NoDataPause }, want: NoData, reason: "too few requests"},
		{name: "without a stable selector the absolute checks decide", canary: healthy, noStable: true, want: Pass},
		{name: "checks turned off are not judged", canary: version{rps: 20, errors: 0.2, failed: 0.2}, stable: healthy,
			modify: func(c *Config) { c.Thresholds = Thresholds{P95: time.Second} }, want: Pass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			if tc.noStable {
				cfg.SelectorStable = ""
			}
			if tc.modify != nil {
				tc.modify(&cfg)
			}
			f := &fakeProm{versions: map[string]version{"canary": tc.canary, "stable": tc.stable}}
			res, took, log := run(t, cfg, f)
			if res.Verdict != tc.want {
				t.Fatalf("verdict %s (%s), want %s", res.Verdict, res.Reason, tc.want)
			}
			if tc.wantWithin > 0 && took > tc.wantWithin {
				t.Errorf("took %v, want at most %v", took, tc.wantWithin)
			}
			if took < tc.wantAtLeast {
				t.Errorf("took %v, want at least %v", took, tc.wantAtLeast)
			}
			if !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", res.Reason, tc.reason)
			}
			// One log line per check per evaluation, plus one overall line.
			overall := 0
			for _, l := range log {
				if l.Metric == "overall" {
					overall++
				}
			}
			if overall != len(res.Evaluations) || overall == 0 {
				t.Errorf("%d overall log lines for %d evaluations", overall, len(res.Evaluations))
			}
		})
	}
}

func TestRunFailsSafeWhenPrometheusIsDown(t *testing.T) {
	t.Parallel()
	down := errors.New("dial tcp 127.0.0.1:9090: connect: connection refused")
	f := &fakeProm{versions: map[string]version{"canary": {rps: 20}}, fail: func(int) error { return down }}
	res, took, log := run(t, testConfig(), f)
	if res.Verdict != Error || !strings.Contains(res.Reason, "connection refused") {
		t.Fatalf("verdict %s (%s), want error naming the cause", res.Verdict, res.Reason)
	}
	if took != 90*time.Second {
		t.Errorf("gave up after %v, want 3 evaluations (90s)", took)
	}
	if len(log) != 3 || log[0].Verdict != Error {
		t.Errorf("decision log %+v, want three error lines", log)
	}
}

func TestRunRecoversFromOneQueryError(t *testing.T) {
	t.Parallel()
	healthy := version{rps: 20, errors: 0.002, failed: 0.004, over1: 0.01, over2: 0.001}
	f := &fakeProm{versions: map[string]version{"canary": healthy, "stable": healthy}}
	f.fail = func(call int) error {
		if call == 4 { // one failed query in the first evaluations
			return errors.New("server error 503")
		}
		return nil
	}
	res, _, _ := run(t, testConfig(), f)
	if res.Verdict != Pass {
		t.Errorf("verdict %s (%s): one transient query error must not decide", res.Verdict, res.Reason)
	}
}

func TestRunTreatsNaNAsNoData(t *testing.T) {
	t.Parallel()
	f := &fakeProm{versions: map[string]version{"canary": {rps: 20}}, nan: true}
	res, _, _ := run(t, testConfig(), f)
	if res.Verdict != Fail || !strings.Contains(res.Reason, "no data") {
		t.Errorf("verdict %s (%s), want the no-data policy (fail)", res.Verdict, res.Reason)
	}
}

func TestPlanRefusesHistogramWithOnlyInf(t *testing.T) {
	t.Parallel()
	f := &fakeProm{versions: map[string]version{"canary": {rps: 20}}, les: []string{"+Inf"}}
	res, took, _ := run(t, testConfig(), f)
	if res.Verdict != Error || !strings.Contains(res.Reason, "none around 1s but +Inf") || !strings.Contains(res.Reason, "le=+Inf") {
		t.Errorf("verdict %s (%s), want a refusal naming the buckets", res.Verdict, res.Reason)
	}
	if took != 0 {
		t.Errorf("refusal came after %v, want at plan time", took)
	}
}

func TestBucketsFor(t *testing.T) {
	t.Parallel()
	promClient := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	bundle := []string{"0.003", "0.03", "0.1", "0.3", "1.5", "10", "+Inf"}
	for _, tc := range []struct {
		les    []string
		d      time.Duration
		exact  bool
		lo, hi string
	}{
		{promClient, time.Second, true, "", ""},
		{promClient, 2 * time.Second, false, "1", "2.5"},
		{bundle, time.Second, false, "0.3", "1.5"},
		{bundle, 2 * time.Second, false, "1.5", "10"},
		{[]string{"1.0", "+Inf"}, time.Second, true, "", ""}, // Prometheus 3 spelling
		{[]string{"5", "+Inf"}, time.Second, false, "", "5"},
		{[]string{"0.5", "+Inf"}, time.Second, false, "0.5", "+Inf"},
		{nil, time.Second, true, "", ""}, // no series yet
	} {
		lb, err := bucketsFor(tc.les, tc.d, 1, `job="api"`)
		if err != nil || lb.exact != tc.exact || lb.lo != tc.lo || lb.hi != tc.hi {
			t.Errorf("bucketsFor(%v, %v) = %+v, %v; want exact %v lo %q hi %q", tc.les, tc.d, lb, err, tc.exact, tc.lo, tc.hi)
		}
	}
	if _, err := bucketsFor([]string{"0.1", "0.5"}, time.Second, 1, `job="api"`); !errors.Is(err, ErrNoBucket) {
		t.Errorf("buckets all below the limit and no +Inf: %v, want ErrNoBucket", err)
	}
}

// TestJudgeBetweenBuckets: a latency limit between two buckets is judged
// with the surely-slow and possibly-slow shares, on the side that protects
// production, and the reason says so.
func TestJudgeBetweenBuckets(t *testing.T) {
	t.Parallel()
	e, err := New(testConfig(), &fakeProm{})
	if err != nil {
		t.Fatal(err)
	}
	note := "no bucket at 2s: between le=1.5 and le=10"
	for _, tc := range []struct {
		name               string
		bad, maybe, total  int64
		sbad, smaybe, stot int64
		want               State
		reason             string
	}{
		{"all surely fast", 0, 0, 2000, 0, 0, 2000, Pass, "upper bound within the limit"},
		{"3% possibly slow, stable none", 0, 60, 2000, 0, 0, 2000, Fail, "possibly beyond the limit while stable is within it"},
		{"3% possibly slow, stable too", 0, 60, 2000, 0, 60, 2000, Inconclusive, "bounds straddle the limit"},
		{"5% surely slow", 100, 100, 2000, 0, 0, 2000, Fail, "lower bound above the limit"},
		{"3% possibly slow, no stable", 0, 60, 2000, 0, 0, 0, Inconclusive, "bounds straddle the limit"},
		// Enough requests to show the canary no worse than stable, whose
		// requests sit between the same buckets: stable is the yardstick.
		{"3% possibly slow like stable, many requests", 0, 600, 20000, 0, 600, 20000, Pass, "possibly-beyond share no worse than stable's"},
	} {
		c := e.judge(proportion{name: "p99", bad: tc.bad, maybe: tc.maybe, total: tc.total, sbad: tc.sbad, smaybe: tc.smaybe, stot: tc.stot,
			limit: 0.01, note: note}, true, tc.stot > 0)
		if c.Verdict != tc.want || !strings.Contains(c.Reason, tc.reason) || !strings.Contains(c.Reason, note) {
			t.Errorf("%s: %s (%s), want %s with %q and the bucket note", tc.name, c.Verdict, c.Reason, tc.want, tc.reason)
		}
		if c.Buckets != note || c.BadMaybe != tc.maybe {
			t.Errorf("%s: check %+v does not carry the possibly-slow count and the note", tc.name, c)
		}
	}
}

func TestJudgeEdgeCases(t *testing.T) {
	t.Parallel()
	e, err := New(testConfig(), &fakeProm{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		bad, total int64
		want       State
	}{
		{"no requests", 0, 0, NoData},
		{"zero errors in 200", 0, 200, Pass},
		// 0 of 100 cannot show < 5% at 99%: the upper bound is 5.13%.
		{"zero errors in 100: not yet proof", 0, 100, Inconclusive},
		{"zero errors in 50: below min-samples", 0, 50, Inconclusive},
		{"all errors", 100, 100, Fail},
		{"exactly at the limit, large n", 500, 10000, Inconclusive},
		{"just under the limit, small n", 4, 100, Inconclusive},
		{"well under the limit", 10, 1000, Pass},
	} {
		c := e.judge(proportion{name: "error-rate", bad: tc.bad, maybe: tc.bad, total: tc.total, limit: 0.05}, tc.total > 0, false)
		if c.Verdict != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, c.Verdict, c.Reason, tc.want)
		}
		if c.Lower > c.Estimate || c.Upper < c.Estimate || math.IsNaN(c.Lower) {
			t.Errorf("%s: estimate %v outside bounds [%v, %v]", tc.name, c.Estimate, c.Lower, c.Upper)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"braces in selector", func(c *Config) { c.SelectorNew = `{job="api"}` }, `without braces`},
		{"no selector", func(c *Config) { c.SelectorNew = "" }, `"selector-new" is required`},
		{"interval longer than window", func(c *Config) { c.Interval = time.Hour }, `"interval"`},
		{"max-hold below window", func(c *Config) { c.MaxHold = time.Minute }, `"max-hold"`},
		{"p99 below p95", func(c *Config) { c.Thresholds.P99 = 500 * time.Millisecond }, `P99 limit cannot be below`},
		{"confidence 1", func(c *Config) { c.Policy.Confidence = 1 }, `"confidence"`},
		{"bad no-data", func(c *Config) { c.Policy.NoData = "ignore" }, `"no-data"`},
	} {
		cfg := testConfig()
		tc.modify(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if err := testConfig().Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

func TestParseInputs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"0.95": 0.95, "95%": 0.95, "off": 0, "OFF": 0, "5%": 0.05} {
		if got, err := ParseShare("x", in); err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("ParseShare(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"150%", "-1", "lots", "1.5"} {
		if _, err := ParseShare("x", bad); err == nil {
			t.Errorf("ParseShare(%q) accepted", bad)
		}
	}
	for in, want := range map[string]time.Duration{"1000ms": time.Second, "1s": time.Second, "1000": time.Second, "off": 0, "2.5s": 2500 * time.Millisecond} {
		if got, err := ParseLatency("x", in); err != nil || got != want {
			t.Errorf("ParseLatency(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got := leRegex(time.Second); got != `1|1.0|1e\\+00` {
		t.Errorf("leRegex(1s) = %q", got)
	}
	if got := leRegex(250 * time.Millisecond); got != `0.25|2.5e-01` {
		t.Errorf("leRegex(250ms) = %q", got)
	}
}

func TestParseMemory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		limit    float64
		required bool
		err      string
	}{
		{"90%", 0.9, false, ""},
		{"0.85", 0.85, false, ""},
		{"off", 0, false, ""},
		{"90% required", 0.9, true, ""},
		{"required", 0.9, true, ""},
		{" 80%   REQUIRED ", 0.8, true, ""},
		{"off required", 0, false, "cannot be required"},
		{"90% always", 0, false, `add "required"`},
		{"lots", 0, false, "is not a share"},
	} {
		limit, required, err := ParseMemory("memory", tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), `input "memory"`) {
				t.Errorf("ParseMemory(%q) = %v, %v, %v; want an error naming the input with %q", tc.in, limit, required, err, tc.err)
			}
			continue
		}
		if err != nil || math.Abs(limit-tc.limit) > 1e-9 || required != tc.required {
			t.Errorf("ParseMemory(%q) = %v, %v, %v; want %v, %v", tc.in, limit, required, err, tc.limit, tc.required)
		}
	}
}

// conventionProm is a stand-in Prometheus (unit tier) whose versions
// expose one convention's histogram: healthy traffic, no errors, every
// request under every bucket.
type conventionProm struct {
	conv Convention
	les  []string
}

func (f conventionProm) Query(_ context.Context, expr string, _ time.Time) (float64, bool, error) {
	h := f.conv.Histogram
	switch {
	case expr == "vector(1)":
		return 1, true, nil
	case strings.HasPrefix(expr, "count("):
		return 2, strings.Contains(expr, h+`_count{`) && strings.Contains(expr, ","+f.conv.Status+`!=""`), nil
	case !strings.Contains(expr, h+"_"):
		return 0, false, nil
	case strings.Contains(expr, `=~"5..`):
		return 0, true, nil
	}
	return 1000, true, nil
}

func (f conventionProm) Labels(context.Context, string, string, time.Time) ([]string, error) {
	return f.les, nil
}

func TestDetectConvention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		preset string
		les    []string
		fast   string // a latency query must contain this
	}{
		{"micrometer", []string{"0.5", "1", "2", "+Inf"}, `http_server_requests_seconds_bucket{job="api",track="canary",le=~"2|2.0|`},
		{"otel", []string{"0.5", "1", "2.5", "+Inf"}, `http_server_request_duration_seconds_bucket{job="api",track="canary",le=~"2\\.5"}`},
		// Milliseconds: the 1 s and 2 s limits are the 1000 and 2000 buckets.
		{"otel-ms", []string{"500", "1000", "2000", "5000", "+Inf"}, `http_server_duration_milliseconds_bucket{job="api",track="canary",le=~"2000|2000.0|2e\\+03"}`},
	} {
		conv, err := ConventionFor(tc.preset)
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Detect, cfg.Window, cfg.MaxHold = true, time.Minute, time.Minute
		cfg.Policy.MinSamples = 10
		e, err := New(cfg, conventionProm{conv: conv, les: tc.les})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
		e.Now = func() time.Time { return now }
		e.Sleep = func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil }
		var log bytes.Buffer
		e.Log = &log
		res, err := e.Run(context.Background())
		if err != nil || res.Verdict != Pass {
			t.Errorf("%s: verdict %s (%s), %v; want pass\n%s", tc.preset, res.Verdict, res.Reason, err, log.String())
			continue
		}
		lines, _ := ReadLog(&log)
		found, fast := "", false
		for _, l := range lines {
			if l.Metric == "convention" {
				found = l.Reason
			}
			fast = fast || strings.Contains(l.Query, tc.fast)
		}
		if !strings.HasPrefix(found, "found "+tc.preset+" (") {
			t.Errorf("%s: decision log says %q, want what was found", tc.preset, found)
		}
		if !fast {
			t.Errorf("%s: no latency query contains %s\n%s", tc.preset, tc.fast, log.String())
		}
	}
	if _, err := ConventionFor("newrelic"); err == nil || !strings.Contains(err.Error(), `input "preset"`) || !strings.Contains(err.Error(), "otel-ms") {
		t.Errorf("unknown preset: %v, want an error naming the input and the known ones", err)
	}
}

func TestWhy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    Check
		want string
	}{
		{Check{Metric: "error-rate", Bad: 244, Total: 1200, Estimate: 244.0 / 1200, Limit: 0.05, StableTot: 3400, Verdict: Fail, Reason: "lower bound above the limit: …"},
			"error-rate 20.33% > 5% (canary 1200 req, stable 3400)"},
		{Check{Metric: "p99", Bad: 37, Total: 1200, Estimate: 37.0 / 1200, Limit: 0.01, Latency: 2 * time.Second, Verdict: Fail, Reason: "lower bound above the limit: …"},
			"p99: 3.08% slower than 2s > 1% (canary 1200 req)"},
		{Check{Metric: "p99", Bad: 0, BadMaybe: 30, Total: 1000, Estimate: 0.03, Limit: 0.01, Latency: 2 * time.Second, Buckets: "no bucket at 2s: between le=1.5 and le=10",
			StableTot: 1000, Verdict: Fail, Reason: "possibly beyond the limit while stable is within it …"},
			"p99: 0.00%–3.00% slower than 2s, worse than stable's 0.00% (canary 1000 req, stable 1000)"},
		{Check{Metric: "memory", Estimate: 0.95, Limit: 0.9, Verdict: Fail}, "memory at 95.00% of its limit > 90%"},
	} {
		if got := tc.c.Why(); got != tc.want {
			t.Errorf("Why() = %q, want %q", got, tc.want)
		}
	}
	r := Result{Verdict: Fail, Reason: "no data, failing safe (no-data: fail): error-rate: no requests; p99: no requests"}
	if got := r.Why(); got != "no data, failing safe (no-data: fail): error-rate: no requests" {
		t.Errorf("Result.Why without failed checks = %q", got)
	}
}
