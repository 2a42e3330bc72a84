package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// State is the verdict of one check, one evaluation, or a whole analysis.
type State string

const (
	Pass         State = "pass"
	Fail         State = "fail"
	Inconclusive State = "inconclusive"
	NoData       State = "no-data"
	Error        State = "error"
	// NotMeasured is a check whose series do not exist for this workload
	// (e.g. no memory limit) and that was not required: it is reported
	// with the reason and does not decide the step.
	NotMeasured State = "not-measured"
)

// Querier runs an instant PromQL query. ok is false when the result is
// empty (no series), which is different from a zero.
type Querier interface {
	Query(ctx context.Context, expr string, at time.Time) (value float64, ok bool, err error)
}

// Check is the result of one metric in one evaluation.
type Check struct {
	Metric string `json:"metric"`
	Query  string `json:"query,omitempty"`
	Bad    int64  `json:"bad"`
	// BadMaybe is, for a latency limit between two histogram buckets, the
	// requests that may be slower than the limit (Bad: those surely slower).
	BadMaybe  int64   `json:"possiblyBad,omitempty"`
	Total     int64   `json:"total"`
	Estimate  float64 `json:"estimate"`
	Lower     float64 `json:"lower"`
	Upper     float64 `json:"upper"`
	Limit     float64 `json:"limit"`
	StableBad int64   `json:"stableBad,omitempty"`
	StableTot int64   `json:"stableTotal,omitempty"`
	// StableBadMaybe is BadMaybe for the stable version.
	StableBadMaybe int64 `json:"stablePossiblyBad,omitempty"`
	// Latency is the latency limit of a p95/p99 check (the share limit is
	// Limit).
	Latency time.Duration `json:"latency,omitempty"`
	// Buckets says how a latency limit maps onto the histogram, e.g.
	// "no bucket at 1s: between le=0.5 and le=5".
	Buckets   string  `json:"buckets,omitempty"`
	DiffLower float64 `json:"diffLower,omitempty"`
	DiffUpper float64 `json:"diffUpper,omitempty"`
	Verdict   State   `json:"verdict"`
	Reason    string  `json:"reason"`
}

// Evaluation is one look at the metrics during a step.
type Evaluation struct {
	Time    time.Time     `json:"time"`
	Step    string        `json:"step,omitempty"`
	Elapsed time.Duration `json:"elapsed"`
	Verdict State         `json:"verdict"`
	Reason  string        `json:"reason"`
	Checks  []Check       `json:"checks,omitempty"`
}

// Result is the outcome of a whole analysis step.
type Result struct {
	Verdict     State
	Reason      string
	Evaluations []Evaluation
}

// LogLine is one line of the decision log (JSON Lines): one per check per
// evaluation, plus one "overall" line per evaluation.
type LogLine struct {
	Time      time.Time `json:"time"`
	Step      string    `json:"step,omitempty"`
	ElapsedS  float64   `json:"elapsedSeconds"`
	Metric    string    `json:"metric"`
	Query     string    `json:"query,omitempty"`
	Bad       *int64    `json:"bad,omitempty"`
	BadMaybe  *int64    `json:"possiblyBad,omitempty"`
	Total     *int64    `json:"total,omitempty"`
	StableBad *int64    `json:"stableBad,omitempty"`
	StableTot *int64    `json:"stableTotal,omitempty"`
	Estimate  *float64  `json:"estimate,omitempty"`
	Lower     *float64  `json:"lower,omitempty"`
	Upper     *float64  `json:"upper,omitempty"`
	Threshold *float64  `json:"threshold,omitempty"`
	Verdict   State     `json:"verdict"`
	Reason    string    `json:"reason"`
}

// Engine evaluates one analysis configuration against a Querier.
type Engine struct {
	cfg Config
	q   Querier
	// z is the quantile of the bounds that PASS; zFail, stricter, of those
	// that FAIL: a step looks up to looks() times, and each look is another
	// chance for noise to fail a good release, so the FAIL bounds share the
	// error budget between the looks (Bonferroni).
	z, zFail float64
	// les caches each selector's histogram buckets (le values).
	les map[string][]string
	// detected is set once detect found the convention; noneLogged once it
	// reported finding none yet.
	detected, noneLogged bool
	// Log, when set, receives the decision log.
	Log io.Writer
	// Now and Sleep are the clock; tests replace them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// New returns an engine for a validated configuration.
func New(cfg Config, q Querier) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	looks := math.Ceil(float64(cfg.MaxHold) / float64(cfg.Interval))
	zFail := Z(1 - (1-cfg.Policy.Confidence)/math.Max(1, looks))
	return &Engine{cfg: cfg, q: q, z: Z(cfg.Policy.Confidence), zFail: zFail, Now: time.Now, Sleep: sleep}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ErrNoBucket is returned when the histogram cannot measure a latency
// limit at all: it has no bucket but +Inf around it, or the bucket query
// returns nothing while the version serves requests.
var ErrNoBucket = errors.New("histogram has no bucket to measure the latency threshold")

// Plan checks, before the step starts, that Prometheus answers and that the
// histogram can measure every enabled latency limit: a bucket at the limit
// (exact counts), or buckets below and above it (bounds; see latencyBuckets).
// A version without series yet (no traffic) is not an error here: it
// becomes NO_DATA.
func (e *Engine) Plan(ctx context.Context) error {
	if e.cfg.Detect {
		if err := e.detect(ctx); err != nil {
			return err
		}
	}
	if len(e.latencies()) == 0 {
		_, _, err := e.q.Query(ctx, "vector(1)", e.Now())
		return err
	}
	for _, sel := range []string{e.cfg.SelectorNew, e.cfg.SelectorStable} {
		if sel == "" {
			continue
		}
		les, err := e.buckets(ctx, sel)
		if err != nil {
			return err
		}
		for _, d := range e.latencies() {
			if _, err := bucketsFor(les, d, e.cfg.Queries.scale(), sel); err != nil {
				return err
			}
		}
	}
	return nil
}

// ErrConvention is returned at plan time when the versions' series follow
// more than one known convention and no preset says which to judge.
var ErrConvention = errors.New("more than one request-metric convention")

// detect finds which known convention the versions' request histogram
// follows (the new version's series first, else stable's), switches the
// request queries to it, applies the metric overrides on top, and writes
// what it found to the decision log. None found keeps promhttp's names
// (the version may have served nothing yet); two found is an error.
func (e *Engine) detect(ctx context.Context) error {
	var found []Convention
	sel := ""
	for _, s := range []string{e.cfg.SelectorNew, e.cfg.SelectorStable} {
		if s == "" || len(found) > 0 {
			continue
		}
		for _, c := range Conventions {
			expr := fmt.Sprintf(`count(%s_count{%s,%s!=""})`, c.Histogram, s, c.Status)
			v, ok, err := e.q.Query(ctx, expr, e.Now())
			if err != nil {
				return fmt.Errorf("query %s: %w", expr, err)
			}
			if ok && v > 0 {
				found, sel = append(found, c), s
			}
		}
	}
	var reason string
	switch len(found) {
	case 0:
		// Nothing served yet: look again at the next evaluation.
		reason = fmt.Sprintf("no series of a known convention for {%s} yet: using %s until there are", e.cfg.SelectorNew, Conventions[0])
		found = Conventions[:1]
		if e.noneLogged {
			reason = ""
		}
		e.noneLogged = true
	case 1:
		e.detected = true
		reason = fmt.Sprintf("found %s for {%s}", found[0], sel)
	default:
		var names []string
		for _, c := range found {
			names = append(names, c.String())
		}
		return fmt.Errorf(`%w: {%s} has series of %s: set the preset input to the one to judge (%s)`,
			ErrConvention, sel, strings.Join(names, " and "), found[0].Preset)
	}
	q := QueriesForConvention(found[0])
	q.Memory = e.cfg.Queries.Memory
	for _, line := range e.cfg.Overrides {
		if err := q.SetOverride(line); err != nil {
			return err
		}
	}
	if len(e.cfg.Overrides) > 0 {
		reason += fmt.Sprintf(" (%d metric override(s) on top)", len(e.cfg.Overrides))
	}
	e.cfg.Queries = q
	if e.Log != nil && reason != "" {
		json.NewEncoder(e.Log).Encode(LogLine{Time: e.Now(), Step: e.cfg.Step, Metric: "convention", Query: q.Total, Reason: reason})
	}
	return nil
}

func (e *Engine) latencies() []time.Duration {
	var lats []time.Duration
	for _, d := range []time.Duration{e.cfg.Thresholds.P95, e.cfg.Thresholds.P99} {
		if d > 0 {
			lats = append(lats, d)
		}
	}
	return lats
}

// latencyBuckets is how a latency limit maps onto a histogram. With a
// bucket at the limit the count of slower requests is exact. Without one,
// the requests above the next bucket up (hi) are surely slower and those
// above the next bucket down (lo) may be: the check then judges with both
// (see judge).
type latencyBuckets struct {
	exact  bool
	lo, hi string // le values; lo "" when no bucket lies below the limit
	note   string
}

// bucketsFor maps limit d onto the le values les of selector sel (none
// listed: the exact spellings of d, as before any series exists).
func bucketsFor(les []string, d time.Duration, scale float64, sel string) (latencyBuckets, error) {
	limit := d.Seconds() * scale
	if len(les) == 0 {
		return latencyBuckets{exact: true}, nil
	}
	type bound struct {
		le string
		v  float64
	}
	var bs []bound
	for _, le := range les {
		if bucketMatches(le, limit) {
			return latencyBuckets{exact: true}, nil
		}
		v, err := strconv.ParseFloat(le, 64)
		if err == nil && !math.IsNaN(v) && v > 0 {
			bs = append(bs, bound{le, v})
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].v < bs[j].v })
	var lb latencyBuckets
	lower := ""
	for _, b := range bs {
		if b.v < limit {
			lb.lo, lower = b.le, b.le
		} else if lb.hi == "" {
			lb.hi = b.le
		}
	}
	if lb.hi == "" || (lb.lo == "" && math.IsInf(mustFloat(lb.hi), 1)) {
		return lb, fmt.Errorf("%w: {%s} has buckets le=%s, none around %v but +Inf: add a %g bucket to the histogram, or turn the check off",
			ErrNoBucket, sel, strings.Join(les, ","), d, limit)
	}
	if lower == "" {
		lower = "0"
	}
	lb.note = fmt.Sprintf("no bucket at %v: between le=%s and le=%s", d, lower, lb.hi)
	return lb, nil
}

func mustFloat(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// leExact is the $le regex matching one le value exactly as listed.
func leExact(le string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(le), `\`, `\\`)
}

// BucketLister is implemented by queriers that can list the le values of a
// histogram (the Prometheus adapter does).
type BucketLister interface {
	Labels(ctx context.Context, expr, label string, at time.Time) ([]string, error)
}

// buckets lists the le values of sel's histogram, remembered once found.
func (e *Engine) buckets(ctx context.Context, sel string) ([]string, error) {
	if les, ok := e.les[sel]; ok {
		return les, nil
	}
	bl, ok := e.q.(BucketLister)
	if !ok {
		return nil, nil
	}
	les, err := bl.Labels(ctx, expand(e.cfg.Queries.Buckets, sel, 0, ""), "le", e.Now())
	if err == nil && len(les) > 0 {
		if e.les == nil {
			e.les = map[string][]string{}
		}
		e.les[sel] = les
	}
	return les, err
}

func expand(tmpl, sel string, rng time.Duration, le string) string {
	secs := int64(math.Ceil(rng.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return strings.NewReplacer("$selector", sel, "$range", fmt.Sprintf("%ds", secs), "$le", le).Replace(tmpl)
}

// counts reads one count query; Prometheus' increase() extrapolates, so
// values are rounded to whole requests.
func (e *Engine) count(ctx context.Context, tmpl, sel string, rng time.Duration, le string, at time.Time) (int64, bool, string, error) {
	expr := expand(tmpl, sel, rng, le)
	v, ok, err := e.q.Query(ctx, expr, at)
	if err != nil {
		return 0, false, expr, err
	}
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, expr, nil
	}
	return int64(math.Max(0, math.Round(v))), true, expr, nil
}

// sample is the request counts of one version over the window.
type sample struct {
	total, errors, success int64
	// fastSure and fastMaybe count the requests surely and possibly at or
	// under each latency limit (equal when a bucket sits on the limit).
	fastSure, fastMaybe map[time.Duration]int64
	notes               map[time.Duration]string
	hasData             bool
	queries             map[string]string
}

func (e *Engine) sample(ctx context.Context, sel string, rng time.Duration, at time.Time) (sample, error) {
	s := sample{fastSure: map[time.Duration]int64{}, fastMaybe: map[time.Duration]int64{}, notes: map[time.Duration]string{}, queries: map[string]string{}}
	q := e.cfg.Queries
	total, ok, expr, err := e.count(ctx, q.Total, sel, rng, "", at)
	if err != nil {
		return s, fmt.Errorf("query %s: %w", expr, err)
	}
	s.total, s.hasData, s.queries["total"] = total, ok && total > 0, expr
	if !s.hasData {
		return s, nil
	}
	if s.errors, _, s.queries["errors"], err = e.count(ctx, q.Errors, sel, rng, "", at); err != nil {
		return s, fmt.Errorf("query %s: %w", s.queries["errors"], err)
	}
	if s.success, _, s.queries["success"], err = e.count(ctx, q.Success, sel, rng, "", at); err != nil {
		return s, fmt.Errorf("query %s: %w", s.queries["success"], err)
	}
	lats := e.latencies()
	var les []string
	if len(lats) > 0 {
		if les, err = e.buckets(ctx, sel); err != nil {
			return s, fmt.Errorf("list buckets of {%s}: %w", sel, err)
		}
	}
	fast := func(le string) (int64, string, error) {
		n, ok, expr, err := e.count(ctx, q.Fast, sel, rng, le, at)
		if err != nil {
			return 0, expr, fmt.Errorf("query %s: %w", expr, err)
		}
		if !ok {
			return 0, expr, fmt.Errorf("%w: {%s} serves requests but %s returns nothing", ErrNoBucket, sel, expr)
		}
		return min(n, s.total), expr, nil
	}
	for _, d := range lats {
		lb, err := bucketsFor(les, d, q.scale(), sel)
		if err != nil {
			return s, err
		}
		if lb.exact {
			n, expr, err := fast(leRegexValue(d.Seconds() * q.scale()))
			if err != nil {
				return s, err
			}
			s.fastSure[d], s.fastMaybe[d], s.queries[d.String()] = n, n, expr
			continue
		}
		// Surely at or under d: at or under the bucket below it. Possibly:
		// at or under the bucket above it.
		var sure int64
		if lb.lo != "" {
			if sure, _, err = fast(leExact(lb.lo)); err != nil {
				return s, err
			}
		}
		maybe, expr, err := fast(leExact(lb.hi))
		if err != nil {
			return s, err
		}
		s.fastSure[d], s.fastMaybe[d], s.notes[d], s.queries[d.String()] = sure, max(sure, maybe), lb.note, expr
	}
	// increase() extrapolates each series on its own; keep the parts
	// consistent with the whole.
	s.errors, s.success = min(s.errors, s.total), min(s.success, s.total)
	return s, nil
}

// Evaluate takes one look at the window [start, at]: it queries both
// versions over the same range and judges every enabled check.
func (e *Engine) Evaluate(ctx context.Context, start, at time.Time) (Evaluation, error) {
	rng := at.Sub(start)
	ev := Evaluation{Time: at, Step: e.cfg.Step, Elapsed: rng}
	if e.cfg.Detect && !e.detected {
		if err := e.detect(ctx); err != nil {
			return ev, err
		}
	}
	green, err := e.sample(ctx, e.cfg.SelectorNew, rng, at)
	if err != nil {
		return ev, err
	}
	var blue sample
	if e.cfg.SelectorStable != "" {
		if blue, err = e.sample(ctx, e.cfg.SelectorStable, rng, at); err != nil {
			return ev, err
		}
	}
	t := e.cfg.Thresholds
	var props []proportion
	if t.ErrorRate > 0 {
		props = append(props, proportion{name: "error-rate", bad: green.errors, maybe: green.errors, total: green.total,
			sbad: blue.errors, smaybe: blue.errors, stot: blue.total, limit: t.ErrorRate, query: green.queries["errors"]})
	}
	if t.SuccessRate > 0 {
		// "success >= 95%" is "share not answered 2xx/3xx <= 5%".
		bad, sbad := green.total-green.success, blue.total-blue.success
		props = append(props, proportion{name: "success-rate", bad: bad, maybe: bad, total: green.total,
			sbad: sbad, smaybe: sbad, stot: blue.total, limit: 1 - t.SuccessRate, query: green.queries["success"]})
	}
	// "P95 <= 1s" is exactly "share of requests slower than 1s <= 5%".
	for _, l := range []struct {
		name  string
		d     time.Duration
		share float64
	}{{"p95", t.P95, 0.05}, {"p99", t.P99, 0.01}} {
		if l.d <= 0 {
			continue
		}
		props = append(props, proportion{name: l.name, latency: l.d,
			bad: green.total - green.fastMaybe[l.d], maybe: green.total - green.fastSure[l.d], total: green.total,
			sbad: blue.total - blue.fastMaybe[l.d], smaybe: blue.total - blue.fastSure[l.d], stot: blue.total,
			limit: l.share, query: green.queries[l.d.String()], note: green.notes[l.d]})
	}
	for _, p := range props {
		if p.query == "" {
			// No traffic: the query that found none is the one to show.
			p.query = green.queries["total"]
		}
		ev.Checks = append(ev.Checks, e.judge(p, green.hasData, blue.hasData))
	}
	if t.Memory > 0 {
		c, err := e.memory(ctx, rng, at)
		if err != nil {
			return ev, err
		}
		ev.Checks = append(ev.Checks, c)
	}
	ev.Verdict, ev.Reason = combine(ev.Checks)
	return ev, nil
}

// proportion is one check's counts: bad out of total requests for the new
// version, sbad out of stot for stable. For a latency limit between two
// buckets, bad counts the requests surely beyond the limit and maybe those
// possibly beyond it; otherwise they are equal.
type proportion struct {
	name               string
	bad, maybe, total  int64
	sbad, smaybe, stot int64
	limit              float64
	query, note        string
	latency            time.Duration
}

// judge decides one proportion check. With exact counts it is the
// confidence-bound test below; with a latency limit between buckets every
// test takes the side that protects production: FAIL needs the surely-slow
// share's lower bound above the limit (or the possibly-slow share clearly
// beyond it while stable's is clearly within it, or clearly worse than
// stable's), PASS the possibly-slow share's upper bound within it.
func (e *Engine) judge(p proportion, hasData, stableHasData bool) Check {
	bad, maybe, total, sbad, smaybe, stot, limit := p.bad, p.maybe, p.total, p.sbad, p.smaybe, p.stot, p.limit
	inexact := p.note != ""
	c := Check{Metric: p.name, Query: p.query, Bad: bad, Total: total, Limit: limit, StableBad: sbad, StableTot: stot, Latency: p.latency}
	if inexact {
		c.BadMaybe, c.StableBadMaybe, c.Buckets = maybe, smaybe, p.note
	}
	// The interval shown is the FAIL test's lower bound and the PASS test's
	// upper bound: each verdict is one-sided, at its own confidence.
	c.Lower, _ = Wilson(bad, total, e.zFail)
	_, c.Upper = Wilson(maybe, total, e.z)
	c.Estimate = rate(maybe, total)
	min := e.cfg.Policy.MinSamples
	if !hasData {
		c.Verdict, c.Reason = NoData, "no requests in the window"
		return c
	}
	abs := JudgeMax(c.Lower, c.Upper, limit)
	// The comparison with stable runs only when both have enough requests.
	compare := stableHasData && stot >= min && total >= min
	worse, notWorse := false, false
	stableBeyond, maybeBeyondStableWithin := false, false
	if compare {
		c.DiffLower, _ = DiffInterval(maybe, total, smaybe, stot, e.zFail)
		_, c.DiffUpper = DiffInterval(maybe, total, smaybe, stot, e.z)
		m := e.cfg.Policy.Margin
		worse, notWorse = c.DiffLower > m, c.DiffUpper <= m
		// Stable "breaks the limit too" on the PASS test's evidence: holding
		// is the cautious side, so it needs less proof than failing.
		sl, _ := Wilson(sbad, stot, e.z)
		stableBeyond = sl > limit
		if inexact {
			// A FAIL: both sides at the FAIL tests' confidence, stable's
			// too, or a lucky run of stable would fail a good canary.
			ml, _ := Wilson(maybe, total, e.zFail)
			_, su := Wilson(smaybe, stot, e.zFail)
			maybeBeyondStableWithin = ml > limit && su <= limit
		}
	}
	pct := func(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }
	bounds := fmt.Sprintf("%d/%d = %s, bounds [%s, %s], limit %s", bad, total, pct(c.Estimate), pct(c.Lower), pct(c.Upper), pct(limit))
	if inexact {
		bounds = fmt.Sprintf("%d surely and %d possibly beyond of %d (%s; %s), bounds [%s, %s], limit %s",
			bad, maybe, total, pct(rate(bad, total)), pct(c.Estimate), pct(c.Lower), pct(c.Upper), pct(limit)) + "; " + p.note
	}
	switch {
	case total < min:
		c.Verdict, c.Reason = Inconclusive, fmt.Sprintf("%d requests < min-samples %d (%s)", total, min, bounds)
	case abs == Beyond && stableBeyond && !worse:
		// Both versions break the limit and the new one is not worse: a
		// shared dependency is failing, not the release. Hold.
		c.Verdict, c.Reason = Inconclusive, fmt.Sprintf("stable breaks the limit too (%d/%d) and new is not worse: shared incident, holding (%s)", sbad, stot, bounds)
	case abs == Beyond:
		c.Verdict, c.Reason = Fail, "lower bound above the limit: "+bounds
	case maybeBeyondStableWithin:
		c.Verdict, c.Reason = Fail, fmt.Sprintf("possibly beyond the limit while stable is within it (%d/%d possibly beyond): %s", smaybe, stot, bounds)
	case worse:
		c.Verdict, c.Reason = Fail, fmt.Sprintf("worse than stable (%d/%d = %s) by more than the %s margin: difference bounds [%s, %s]; %s",
			smaybe, stot, pct(rate(smaybe, stot)), pct(e.cfg.Policy.Margin), pct(c.DiffLower), pct(c.DiffUpper), bounds)
	case abs == Within:
		c.Verdict, c.Reason = Pass, "upper bound within the limit: "+bounds
		if compare && !notWorse {
			c.Reason += " (not clearly worse than stable)"
		}
	case inexact && compare && notWorse && surelyWithin(bad, total, limit, e.z):
		// The buckets cannot tell whether the requests between them are
		// beyond the limit; stable, with the same buckets, is the yardstick.
		c.Verdict, c.Reason = Pass, fmt.Sprintf("surely-beyond share within the limit and possibly-beyond share no worse than stable's (%d/%d; difference bounds [%s, %s], margin %s): %s",
			smaybe, stot, pct(c.DiffLower), pct(c.DiffUpper), pct(e.cfg.Policy.Margin), bounds)
	default:
		c.Verdict, c.Reason = Inconclusive, "bounds straddle the limit: "+bounds
	}
	return c
}

// surelyWithin reports whether the upper bound of bad/total at quantile z
// is within limit.
func surelyWithin(bad, total int64, limit, z float64) bool {
	_, u := Wilson(bad, total, z)
	return u <= limit
}

func (e *Engine) memory(ctx context.Context, rng time.Duration, at time.Time) (Check, error) {
	expr := expand(e.cfg.Queries.Memory, e.cfg.SelectorNew, rng, "")
	c := Check{Metric: "memory", Query: expr, Limit: e.cfg.Thresholds.Memory}
	v, ok, err := e.q.Query(ctx, expr, at)
	if err != nil {
		return c, fmt.Errorf("query %s: %w", expr, err)
	}
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		const why = "no container memory series for the new version (no cAdvisor metrics, or no memory limit set)"
		if e.cfg.Thresholds.MemoryRequired {
			c.Verdict, c.Reason = NoData, why+", and memory is required"
		} else {
			c.Verdict, c.Reason = NotMeasured, "not measured: "+why+"; it does not decide the step (memory: required would make it count as no data)"
		}
		return c, nil
	}
	// A gauge read over the window, not a sample of requests: the worst
	// value is the measurement, there is no interval to compute.
	c.Estimate, c.Lower, c.Upper = v, v, v
	if v > c.Limit {
		c.Verdict, c.Reason = Fail, fmt.Sprintf("peak working set %.1f%% of the limit > %.1f%%", 100*v, 100*c.Limit)
	} else {
		c.Verdict, c.Reason = Pass, fmt.Sprintf("peak working set %.1f%% of the limit <= %.1f%%", 100*v, 100*c.Limit)
	}
	return c, nil
}

// combine turns the checks of one evaluation into its verdict: any FAIL
// fails; otherwise no data anywhere is NO_DATA; any doubt is INCONCLUSIVE.
func combine(checks []Check) (State, string) {
	var fails, nodata, unsure, unmeasured []string
	for _, c := range checks {
		switch c.Verdict {
		case NotMeasured:
			unmeasured = append(unmeasured, c.Metric)
		case Fail:
			fails = append(fails, c.Metric+": "+c.Reason)
		case NoData:
			nodata = append(nodata, c.Metric+": "+c.Reason)
		case Inconclusive:
			unsure = append(unsure, c.Metric+": "+c.Reason)
		}
	}
	switch {
	case len(fails) > 0:
		return Fail, strings.Join(fails, "; ")
	case len(nodata) > 0:
		return NoData, strings.Join(nodata, "; ")
	case len(unsure) > 0:
		return Inconclusive, strings.Join(unsure, "; ")
	case len(checks) == 0:
		return NoData, "every check is off"
	case len(unmeasured) == len(checks):
		return NoData, "no check could be measured (not measured: " + strings.Join(unmeasured, ", ") + ")"
	case len(unmeasured) > 0:
		return Pass, "every measured check passed (not measured: " + strings.Join(unmeasured, ", ") + ")"
	}
	return Pass, "every check passed"
}

// Why is the short reason of a result for people who read one line (a
// Slack message, a deploy output): each failed check of the last
// evaluation with its measured value against its limit and the sample
// sizes, e.g. "p99: 3.10% slower than 2s > 1% (canary 1200 req, stable
// 3400)" or "error-rate 2.10%, worse than stable's 0.40% (canary 1200
// req, stable 3400)"; for other verdicts the first clause of the reason.
func (r Result) Why() string {
	if len(r.Evaluations) > 0 {
		var parts []string
		for _, c := range r.Evaluations[len(r.Evaluations)-1].Checks {
			if c.Verdict == Fail {
				parts = append(parts, c.Why())
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, "; ")
		}
	}
	why, _, _ := strings.Cut(r.Reason, "; ")
	return why
}

// Why is one failed check in a few words.
func (c Check) Why() string {
	pct := func(x float64) string { return strconv.FormatFloat(100*x, 'f', 2, 64) + "%" }
	limit := strconv.FormatFloat(100*c.Limit, 'f', -1, 64) + "%"
	sizes := fmt.Sprintf("canary %d req", c.Total)
	if c.StableTot > 0 {
		sizes += fmt.Sprintf(", stable %d", c.StableTot)
	}
	what := c.Metric + " " + pct(c.Estimate)
	switch {
	case c.Metric == "memory":
		return fmt.Sprintf("memory at %s of its limit > %s", pct(c.Estimate), limit)
	case c.Latency > 0 && c.Buckets != "":
		what = fmt.Sprintf("%s: %s–%s slower than %v", c.Metric, pct(rate(c.Bad, c.Total)), pct(c.Estimate), c.Latency)
	case c.Latency > 0:
		what = fmt.Sprintf("%s: %s slower than %v", c.Metric, pct(c.Estimate), c.Latency)
	case c.Metric == "success-rate":
		what = "non-2xx/3xx " + pct(c.Estimate)
	}
	if strings.HasPrefix(c.Reason, "worse than stable") || strings.HasPrefix(c.Reason, "possibly beyond the limit while stable") {
		sb := c.StableBad
		if c.Buckets != "" {
			sb = c.StableBadMaybe
		}
		return fmt.Sprintf("%s, worse than stable's %s (%s)", what, pct(rate(sb, c.StableTot)), sizes)
	}
	return fmt.Sprintf("%s > %s (%s)", what, limit, sizes)
}

// Run analyses one step: it evaluates every Interval from now until the
// window ends, stops at once on a certain FAIL, holds while INCONCLUSIVE up
// to MaxHold, and applies the no-data policy. Every evaluation is written
// to the decision log.
func (e *Engine) Run(ctx context.Context) (Result, error) {
	if err := e.Plan(ctx); err != nil {
		if errors.Is(err, ErrNoBucket) || errors.Is(err, ErrConvention) {
			return Result{Verdict: Error, Reason: err.Error()}, err
		}
		// Prometheus not answering at plan time counts like any query error
		// below: the loop retries up to MaxErrors.
	}
	start := e.Now()
	var res Result
	errorsInRow := 0
	for {
		if err := e.Sleep(ctx, e.cfg.Interval); err != nil {
			return res, err
		}
		now := e.Now()
		ev, err := e.Evaluate(ctx, start, now)
		if err != nil {
			if errors.Is(err, ErrNoBucket) || errors.Is(err, ErrConvention) {
				res.Verdict, res.Reason = Error, err.Error()
				return res, err
			}
			errorsInRow++
			ev.Verdict, ev.Reason = Error, fmt.Sprintf("prometheus query failed (%d of %d in a row): %v", errorsInRow, e.cfg.Policy.MaxErrors, err)
			e.logEvaluation(ev)
			res.Evaluations = append(res.Evaluations, ev)
			if errorsInRow >= e.cfg.Policy.MaxErrors {
				res.Verdict, res.Reason = Error, "failing safe: "+ev.Reason
				return res, nil
			}
			continue
		}
		errorsInRow = 0
		e.logEvaluation(ev)
		res.Evaluations = append(res.Evaluations, ev)
		elapsed := now.Sub(start)
		windowDone, holdDone := elapsed >= e.cfg.Window, elapsed >= e.cfg.MaxHold
		switch ev.Verdict {
		case Fail:
			res.Verdict, res.Reason = Fail, ev.Reason
			if !windowDone {
				res.Reason = fmt.Sprintf("stopped early after %v: %s", elapsed.Round(time.Second), ev.Reason)
			}
			return res, nil
		case Pass:
			if windowDone {
				res.Verdict, res.Reason = Pass, ev.Reason
				return res, nil
			}
		case NoData:
			if windowDone {
				switch e.cfg.Policy.NoData {
				case NoDataFail:
					res.Verdict, res.Reason = Fail, "no data, failing safe (no-data: fail): "+ev.Reason
					return res, nil
				case NoDataPromote:
					res.Verdict, res.Reason = Pass, "no data, promoted by policy (no-data: promote): "+ev.Reason
					return res, nil
				}
				if holdDone && e.cfg.Policy.NoData == NoDataHold {
					res.Verdict, res.Reason = Fail, "no data until max-hold, failing safe (no-data: hold): "+ev.Reason
					return res, nil
				}
				if holdDone {
					res.Verdict, res.Reason = NoData, "no data until max-hold (no-data: pause): "+ev.Reason
					return res, nil
				}
			}
		case Inconclusive:
			if holdDone {
				if insufficient(ev, e.cfg.Policy.MinSamples) {
					return e.noDataAtHold(res, ev), nil
				}
				res.Verdict, res.Reason = Inconclusive, "still inconclusive at max-hold: "+ev.Reason
				return res, nil
			}
		}
	}
}

// insufficient reports whether an inconclusive evaluation lacked samples
// (sparse traffic) rather than certainty.
func insufficient(ev Evaluation, min int64) bool {
	for _, c := range ev.Checks {
		if c.Verdict == Inconclusive && c.Total < min {
			return true
		}
	}
	return false
}

// noDataAtHold applies the no-data policy to sparse traffic at max-hold:
// too few requests to judge is, for the rollout, the same as none.
func (e *Engine) noDataAtHold(res Result, ev Evaluation) Result {
	switch e.cfg.Policy.NoData {
	case NoDataFail:
		res.Verdict, res.Reason = Fail, "too few requests by max-hold, failing safe (no-data: fail): "+ev.Reason
	case NoDataPromote:
		res.Verdict, res.Reason = Pass, "too few requests by max-hold, promoted by policy (no-data: promote): "+ev.Reason
	case NoDataHold:
		res.Verdict, res.Reason = Fail, "too few requests by max-hold, failing safe (no-data: hold): "+ev.Reason
	default:
		res.Verdict, res.Reason = NoData, "too few requests by max-hold (no-data: pause): "+ev.Reason
	}
	return res
}

func (e *Engine) logEvaluation(ev Evaluation) {
	if e.Log == nil {
		return
	}
	enc := json.NewEncoder(e.Log)
	for _, c := range ev.Checks {
		c := c
		l := LogLine{Time: ev.Time, Step: ev.Step, ElapsedS: ev.Elapsed.Seconds(), Metric: c.Metric, Query: c.Query,
			Verdict: c.Verdict, Reason: c.Reason, Threshold: &c.Limit}
		if c.Metric != "memory" {
			l.Bad, l.Total = &c.Bad, &c.Total
			if c.Buckets != "" {
				l.BadMaybe = &c.BadMaybe
			}
			if c.StableTot > 0 {
				l.StableBad, l.StableTot = &c.StableBad, &c.StableTot
			}
		}
		if c.Verdict != NoData && c.Verdict != NotMeasured {
			l.Estimate, l.Lower, l.Upper = &c.Estimate, &c.Lower, &c.Upper
		}
		enc.Encode(l)
	}
	enc.Encode(LogLine{Time: ev.Time, Step: ev.Step, ElapsedS: ev.Elapsed.Seconds(), Metric: "overall", Verdict: ev.Verdict, Reason: ev.Reason})
}
