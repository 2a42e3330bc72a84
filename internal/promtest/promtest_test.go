package promtest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCanaryMetricsEndToEnd runs the whole chain canary analysis relies on:
// two app instances under load, one failing every API request, scraped by a
// real Prometheus with track labels, and PromQL that tells them apart.
func TestCanaryMetricsEndToEnd(t *testing.T) {
	start := time.Now()
	stable := StartApp(t, map[string]string{"APP_VERSION": "v1"})
	canary := StartApp(t, map[string]string{"APP_VERSION": "v2", "ERROR_RATE": "1"})
	t.Logf("apps up after %v", time.Since(start).Round(time.Millisecond))

	prom := StartPrometheus(t,
		stable.Target(map[string]string{"job": "api", "track": "stable"}),
		canary.Target(map[string]string{"job": "api", "track": "canary"}),
	)

	stopStable := Load(t, stable.URL+"/api/prompts", 20)
	stopCanary := Load(t, canary.URL+"/api/prompts", 20)
	time.Sleep(4 * time.Second)
	st, ca := stopStable(), stopCanary()
	t.Logf("stable load: %+v", st)
	t.Logf("canary load: %+v", ca)
	if st.Sent < 40 || st.Codes[200] != st.Sent || st.Errors != 0 {
		t.Errorf("stable load = %+v, want about 80 requests, all 200", st)
	}
	if ca.Sent < 40 || ca.Codes[500] != ca.Sent || ca.Errors != 0 {
		t.Errorf("canary load = %+v, want about 80 requests, all 500", ca)
	}

	prom.WaitScrape(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	q := func(expr string) (float64, bool) {
		t.Helper()
		v, ok, err := Query(ctx, prom.URL, expr)
		if err != nil {
			t.Fatal(err)
		}
		return v, ok
	}
	const errorsOf = `sum(increase(http_request_duration_seconds_count{job="api",track=%q,code="500"}[1m]))`
	if v, ok := q(strings.Replace(errorsOf, "%q", `"canary"`, 1)); !ok || v <= 0 {
		t.Errorf("canary 500s = %v (ok=%v), want > 0", v, ok)
	} else {
		t.Logf("canary 500s over 1m: %v (sent %d)", v, ca.Sent)
	}
	if v, ok := q(strings.Replace(errorsOf, "%q", `"stable"`, 1)); v != 0 {
		t.Errorf("stable 500s = %v (ok=%v), want 0", v, ok)
	}
	// The zero above only means something if stable's traffic was seen.
	if v, ok := q(`sum(http_request_duration_seconds_count{track="stable",code="200",route="/api/prompts"})`); !ok || v < float64(st.Sent) {
		t.Errorf("stable 200 count = %v (ok=%v), want %d", v, ok, st.Sent)
	}

	les, err := QueryVector(ctx, prom.URL, `count by (le) (http_request_duration_seconds_bucket{track="stable"})`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range les {
		got = append(got, s.Labels["le"])
	}
	slices.Sort(got)
	t.Logf("le values as Prometheus stores them: %q", got)
	for _, want := range []string{"1", "2", "+Inf"} {
		if !slices.Contains(got, want) {
			t.Errorf("no bucket le=%q in %q", want, got)
		}
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

func TestQueryScalarAndEmpty(t *testing.T) {
	prom := StartPrometheus(t)
	ctx := context.Background()
	if v, ok, err := Query(ctx, prom.URL, "1 + 2"); err != nil || !ok || v != 3 {
		t.Errorf("Query(1 + 2) = %v, %v, %v; want 3, true, nil", v, ok, err)
	}
	if v, ok, err := Query(ctx, prom.URL, `sum(no_such_metric)`); err != nil || ok || v != 0 {
		t.Errorf("Query(sum(no_such_metric)) = %v, %v, %v; want 0, false, nil", v, ok, err)
	}
	if _, _, err := Query(ctx, prom.URL, `sum(`); err == nil || !strings.Contains(err.Error(), "bad_data") {
		t.Errorf("Query(sum() error = %v, want Prometheus' bad_data error", err)
	}
	prom.Stop()
	prom.Stop()
	if _, _, err := Query(ctx, prom.URL, "1"); err == nil {
		t.Error("Query succeeded after Stop")
	}
}

func TestLoadBoundsInFlight(t *testing.T) {
	slow := StartApp(t, map[string]string{"EXTRA_LATENCY": "1s"})
	stop := Load(t, slow.URL+"/api/version", 200)
	time.Sleep(700 * time.Millisecond)
	s := stop()
	t.Logf("load on a 1 s endpoint at 200 rps for 0.7 s: %+v", s)
	if s.Sent != maxInFlight || s.Skipped == 0 || s.Codes[200] != s.Sent {
		t.Errorf("stats = %+v, want %d sent (all 200) and the rest skipped", s, maxInFlight)
	}
	if again := stop(); again.Sent != s.Sent {
		t.Errorf("second stop() = %+v, want %+v", again, s)
	}
	if s := Load(t, slow.URL, 0)(); s.Sent != 0 {
		t.Errorf("rps 0 sent %d requests", s.Sent)
	}
}
