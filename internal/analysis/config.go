// Package analysis is Gantry's canary judge. It counts requests (total, 5xx,
// slower than the latency thresholds) of the new and the stable version over
// the same window from Prometheus, and decides with confidence bounds rather
// than point estimates: FAIL only when the evidence says the limit is broken,
// PASS only when it says the limit holds, INCONCLUSIVE (hold longer) in
// between. "No data" and "Prometheus is down" are states of their own with
// explicit policies, so an idle service is not rolled back for silence and a
// monitoring outage is not mistaken for a healthy release.
package analysis

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// NoDataPolicy says what to do when the new version served no requests.
type NoDataPolicy string

const (
	// NoDataFail fails safe: traffic goes back to the stable version.
	NoDataFail NoDataPolicy = "fail"
	// NoDataPause holds the rollout where it is and reports no-data.
	NoDataPause NoDataPolicy = "pause"
	// NoDataPromote treats silence as success (for services with no traffic to judge).
	NoDataPromote NoDataPolicy = "promote"
	// NoDataHold extends the step up to max-hold while traffic is too thin
	// to judge, then fails safe if it never was enough.
	NoDataHold NoDataPolicy = "hold"
)

// Thresholds are the limits a canary must meet. A zero (or negative) value
// turns a check off.
type Thresholds struct {
	SuccessRate float64       // minimum share of 2xx/3xx responses (guide: 0.95)
	ErrorRate   float64       // maximum share of 5xx responses (guide: 0.05)
	P95         time.Duration // 95th percentile latency limit (guide: 1s)
	P99         time.Duration // 99th percentile latency limit (guide: 2s)
	Memory      float64       // maximum working set / limit (guide: 0.90)
	// MemoryRequired makes missing memory series count as no data (under
	// the no-data policy); by default the check is then "not measured" and
	// does not decide the step, since many workloads have no cAdvisor
	// series or no memory limit.
	MemoryRequired bool
}

// GuideThresholds are the deployment guide's limits.
func GuideThresholds() Thresholds {
	return Thresholds{SuccessRate: 0.95, ErrorRate: 0.05, P95: time.Second, P99: 2 * time.Second, Memory: 0.90}
}

// Policy says how much evidence a verdict needs and what to do without it.
type Policy struct {
	// MinSamples is the number of requests the new version must have served
	// in the window before it can PASS or FAIL. Fewer is INCONCLUSIVE.
	MinSamples int64
	// Confidence is the one-sided confidence of every bound (0.99: a
	// healthy canary is failed by chance at most 1% of the time per check).
	Confidence float64
	// Margin is how much worse than stable the new version may be (as a
	// share of requests, 0.01 = one percentage point) before it counts as
	// a regression, even within the absolute limits.
	Margin float64
	// NoData applies when the new version served no requests in the window
	// (and, at MaxHold, when it never reached MinSamples).
	NoData NoDataPolicy
	// MaxErrors is how many evaluations in a row may fail to query
	// Prometheus before the analysis gives up with ERROR (fail safe).
	MaxErrors int
}

// DefaultPolicy is Gantry's default: 100 requests, 99% confidence, a one
// point margin against stable, fail safe on no data, three query errors.
func DefaultPolicy() Policy {
	return Policy{MinSamples: 100, Confidence: 0.99, Margin: 0.01, NoData: NoDataFail, MaxErrors: 3}
}

// Queries are the PromQL templates the engine runs. $selector is replaced by
// the version's label matchers, $range by the window so far (e.g. 42s), and
// $le by a regex matching the histogram bucket of a latency threshold (both
// "1" and "1.0" spellings, since Prometheus 3 normalises le to floats).
type Queries struct {
	Total   string // requests
	Errors  string // requests answered 5xx
	Success string // requests answered 2xx or 3xx
	Fast    string // requests at or under $le (histogram bucket)
	Buckets string // the le values of the histogram (plan-time check)
	Memory  string // working set / limit, the worst pod

	// Convention is the naming the request queries follow (see Conventions).
	Convention Convention
}

// Convention is how a client library names the request-duration histogram
// and its status-code label.
type Convention struct {
	Preset    string  // the preset input's value for it
	Libraries string  // who writes it, for messages
	Histogram string  // metric name without _bucket/_count
	Status    string  // the label holding the HTTP status code
	Scale     float64 // le units per second: 1, or 1000 for milliseconds
}

func (c Convention) String() string {
	return fmt.Sprintf("%s (%s: %s, label %s)", c.Preset, c.Libraries, c.Histogram, c.Status)
}

// Conventions are the request histograms Gantry recognises, in the order
// it looks for them.
var Conventions = []Convention{
	{Preset: "promhttp", Libraries: "Go promhttp, prometheus-net", Histogram: "http_request_duration_seconds", Status: "code", Scale: 1},
	{Preset: "prom-client", Libraries: "prom-client, express-prom-bundle", Histogram: "http_request_duration_seconds", Status: "status_code", Scale: 1},
	{Preset: "micrometer", Libraries: "Micrometer, Spring Boot", Histogram: "http_server_requests_seconds", Status: "status", Scale: 1},
	{Preset: "otel", Libraries: "OpenTelemetry semantic conventions", Histogram: "http_server_request_duration_seconds", Status: "http_response_status_code", Scale: 1},
	{Preset: "otel-ms", Libraries: "OpenTelemetry, older conventions in milliseconds", Histogram: "http_server_duration_milliseconds", Status: "http_status_code", Scale: 1000},
}

// ConventionFor returns the convention of a preset name ("prometheus-net"
// is promhttp's).
func ConventionFor(preset string) (Convention, error) {
	if preset == "prometheus-net" {
		preset = "promhttp"
	}
	var names []string
	for _, c := range Conventions {
		if c.Preset == preset {
			return c, nil
		}
		names = append(names, c.Preset)
	}
	return Convention{}, fmt.Errorf(`input "preset": %q is not a known convention: use %s, or leave it empty to detect`, preset, strings.Join(names, ", "))
}

// DefaultQueries reads the http_request_duration_seconds histogram (labels
// code and le) and cAdvisor's container memory metrics.
func DefaultQueries() Queries {
	return QueriesFor("http_request_duration_seconds")
}

// QueriesFor returns the default queries for a histogram of another name
// (status label code, seconds).
func QueriesFor(histogram string) Queries {
	c := Conventions[0]
	c.Histogram = histogram
	return QueriesForConvention(c)
}

// QueriesForConvention returns the request queries of a convention and
// cAdvisor's memory query.
func QueriesForConvention(c Convention) Queries {
	h, st := c.Histogram, c.Status
	return Queries{
		Total:      `sum(increase(` + h + `_count{$selector}[$range]))`,
		Errors:     `sum(increase(` + h + `_count{$selector,` + st + `=~"5.."}[$range]))`,
		Success:    `sum(increase(` + h + `_count{$selector,` + st + `=~"[23].."}[$range]))`,
		Fast:       `sum(increase(` + h + `_bucket{$selector,le=~"$le"}[$range]))`,
		Buckets:    `count by (le) (` + h + `_bucket{$selector})`,
		Memory:     `max(max_over_time(container_memory_working_set_bytes{$selector}[$range])) / max(container_spec_memory_limit_bytes{$selector})`,
		Convention: c,
	}
}

// scale is the le units per second (1 unless the histogram is in ms).
func (q Queries) scale() float64 {
	if q.Convention.Scale > 0 {
		return q.Convention.Scale
	}
	return 1
}

// SetOverride replaces one query from a "name=promql" line of the metric
// input. "histogram=NAME" switches every request query to another histogram.
func (q *Queries) SetOverride(line string) error {
	name, expr, ok := strings.Cut(line, "=")
	name, expr = strings.TrimSpace(name), strings.TrimSpace(expr)
	if !ok || expr == "" {
		return fmt.Errorf(`input "metric": %q is not name=promql (names: histogram, total, errors, success, fast, buckets, memory)`, line)
	}
	switch name {
	case "histogram":
		// Another name, the same status label and unit.
		mem, c := q.Memory, q.Convention
		if c.Histogram == "" {
			c = Conventions[0]
		}
		c.Histogram = expr
		*q = QueriesForConvention(c)
		q.Memory = mem
	case "total":
		q.Total = expr
	case "errors":
		q.Errors = expr
	case "success":
		q.Success = expr
	case "fast":
		q.Fast = expr
	case "buckets":
		q.Buckets = expr
	case "memory":
		q.Memory = expr
	default:
		return fmt.Errorf(`input "metric": unknown query %q: use histogram, total, errors, success, fast, buckets or memory`, name)
	}
	return nil
}

// Config is one analysis: what to compare, against which limits, for how long.
type Config struct {
	// SelectorNew and SelectorStable are PromQL label matchers without
	// braces, e.g. job="api",track="canary".
	SelectorNew    string
	SelectorStable string
	// Window is how long a step lasts; the counts are taken from its start.
	Window time.Duration
	// Interval is the time between evaluations within the window.
	Interval time.Duration
	// MaxHold is the longest the step may last while the verdict is
	// INCONCLUSIVE (or NO_DATA under the pause policy). At least Window.
	MaxHold time.Duration
	// Step names the step in the decision log (e.g. "10%").
	Step string

	Thresholds Thresholds
	Policy     Policy
	Queries    Queries
	// Detect makes the engine find the request histogram's convention
	// among the series of the versions at plan time (no preset given);
	// Overrides (the metric input's lines) are applied on top of it.
	Detect    bool
	Overrides []string
}

// Validate checks a configuration before anything is queried.
func (c Config) Validate() error {
	var errs []error
	for _, s := range []struct{ name, v string }{{"selector-new", c.SelectorNew}, {"selector-stable", c.SelectorStable}} {
		if strings.ContainsAny(s.v, "{}") {
			errs = append(errs, fmt.Errorf(`input %q: %q must be label matchers without braces, e.g. job="api",track="canary"`, s.name, s.v))
		}
	}
	if strings.TrimSpace(c.SelectorNew) == "" {
		errs = append(errs, errors.New(`input "selector-new" is required: label matchers that select the new version, e.g. job="api",track="canary"`))
	}
	if c.Window <= 0 {
		errs = append(errs, errors.New(`input "window" must be a positive duration, e.g. 5m`))
	}
	if c.Interval <= 0 || c.Interval > c.Window {
		errs = append(errs, fmt.Errorf(`input "interval" is %v: use a positive duration no longer than the window (%v)`, c.Interval, c.Window))
	}
	if c.MaxHold < c.Window {
		errs = append(errs, fmt.Errorf(`input "max-hold" is %v: it must be at least the window (%v)`, c.MaxHold, c.Window))
	}
	t := c.Thresholds
	for _, r := range []struct {
		name string
		v    float64
	}{{"success-rate", t.SuccessRate}, {"error-rate", t.ErrorRate}, {"memory", t.Memory}} {
		if r.v > 1 || math.IsNaN(r.v) {
			errs = append(errs, fmt.Errorf(`input %q is %v: use a share between 0 and 1 (e.g. 0.95, or 95%%), or off`, r.name, r.v))
		}
	}
	if t.P95 > 0 && t.P99 > 0 && t.P99 < t.P95 {
		errs = append(errs, fmt.Errorf(`inputs "p95" (%v) and "p99" (%v): the P99 limit cannot be below the P95 limit`, t.P95, t.P99))
	}
	p := c.Policy
	if p.Confidence <= 0.5 || p.Confidence >= 1 {
		errs = append(errs, fmt.Errorf(`input "confidence" is %v: use a level between 0.5 and 1, e.g. 0.99`, p.Confidence))
	}
	if p.MinSamples < 1 {
		errs = append(errs, fmt.Errorf(`input "min-samples" is %d: use at least 1 (default 100)`, p.MinSamples))
	}
	if p.Margin < 0 || p.Margin >= 1 {
		errs = append(errs, fmt.Errorf(`input "margin" is %v: use a share between 0 and 1, e.g. 0.01`, p.Margin))
	}
	switch p.NoData {
	case NoDataFail, NoDataPause, NoDataPromote, NoDataHold:
	default:
		errs = append(errs, fmt.Errorf(`input "no-data" is %q: use fail, hold, pause or promote`, p.NoData))
	}
	if p.MaxErrors < 1 {
		errs = append(errs, fmt.Errorf(`max errors is %d: use at least 1`, p.MaxErrors))
	}
	return errors.Join(errs...)
}

// ParseShare parses a share input: "0.95", "95%", or "off" (returns 0).
func ParseShare(name, s string) (float64, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return 0, nil
	}
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 || math.IsNaN(v) {
		return 0, fmt.Errorf(`input %q: %q is not a share: write 0.95, 95%% or off`, name, s)
	}
	if pct {
		v /= 100
	}
	if v > 1 {
		return 0, fmt.Errorf(`input %q: %q is more than 100%%: write 0.95, 95%% or off`, name, s)
	}
	return v, nil
}

// ParseMemory parses the memory input: a share as ParseShare takes it,
// optionally followed by "required" ("90% required"), or "required" alone
// for the guide's 90%.
func ParseMemory(name, s string) (limit float64, required bool, err error) {
	f := strings.Fields(s)
	if n := len(f); n > 0 && strings.EqualFold(f[n-1], "required") {
		required, f = true, f[:n-1]
	}
	if len(f) == 0 && required {
		return GuideThresholds().Memory, true, nil
	}
	if len(f) != 1 {
		return 0, false, fmt.Errorf(`input %q: %q is not a memory limit: write 90%%, 0.9, off, or add "required" (90%% required) to fail on missing series`, name, s)
	}
	if limit, err = ParseShare(name, f[0]); err != nil {
		return 0, false, err
	}
	if limit == 0 && required {
		return 0, false, fmt.Errorf(`input %q: %q: a check that is off cannot be required`, name, s)
	}
	return limit, required, nil
}

// ParseLatency parses a latency input: "1000ms", "1s", "1000" (ms) or "off".
func ParseLatency(name, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return 0, nil
	}
	if ms, err := strconv.ParseFloat(s, 64); err == nil {
		// A plain number is milliseconds: positive, and within what a
		// duration holds (Inf or 1e30 would overflow to a negative limit).
		if ms <= 0 || math.IsNaN(ms) || ms*float64(time.Millisecond) >= math.MaxInt64 {
			return 0, fmt.Errorf(`input %q: %q is not a latency: write 1000ms, 1s, 1000 (milliseconds) or off`, name, s)
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf(`input %q: %q is not a latency: write 1000ms, 1s, 1000 (milliseconds) or off`, name, s)
	}
	return d, nil
}

// leRegex is the regex matching a histogram bucket bound in every spelling
// Prometheus versions use: "1", "1.0", "1e+00".
func leRegex(d time.Duration) string { return leRegexValue(d.Seconds()) }

func leRegexValue(v float64) string {
	forms := []string{strconv.FormatFloat(v, 'f', -1, 64)}
	if v == math.Trunc(v) {
		forms = append(forms, strconv.FormatFloat(v, 'f', 1, 64))
	}
	forms = append(forms, strings.ReplaceAll(strconv.FormatFloat(v, 'e', -1, 64), "+", `\\+`))
	return strings.Join(forms, "|")
}

func bucketMatches(le string, v float64) bool {
	f, err := strconv.ParseFloat(le, 64)
	return err == nil && math.Abs(f-v) < 1e-9*math.Max(1, math.Abs(v))
}
