package rollout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/metadata"
	"github.com/gantry-ci/gantry/internal/progressive"
	"github.com/gantry-ci/gantry/internal/promtest"
	"github.com/gantry-ci/gantry/internal/rollout"
	"github.com/gantry-ci/gantry/internal/traffictest"
)

// The blue-green tests run on the real control plane with a real data
// plane: Traefik serving the user's HTTPRoute "api", and two instances of
// the sample app in a network namespace, "v1" behind Service api (the
// stable Service) and "v2" behind Service api-canary (the canary
// Service). kwok's pods have no reachable address, so both Services are
// created by the test without a selector, with EndpointSlices listing the
// app instances (traffictest.ExposeService), before Gantry runs: Gantry
// finds api-canary there, not made by it, and uses it as it is (what it
// does with a user's own canary Service). The manifests therefore hold only
// the Deployment; a user's would hold Service api as well.
//
// Prometheus scrapes both instances and labels their series as its
// Kubernetes discovery labels pods' (namespace, pod), with pod names of
// the shape the Deployments' pods have, so the default selectors Gantry
// derives from the workloads select them. Load goes through Traefik.

// bgEnv is one blue-green environment.
type bgEnv struct {
	c      *k8stest.Cluster
	ns     string
	gw     *traffictest.Gateway
	prom   *promtest.Prometheus
	dyn    dynamic.Interface
	man    string
	stable string // the digest N runs before the test's rollout
	v1, v2 *traffictest.Backend
	t      *testing.T
}

const (
	stablePod = "api-6b8f9c7d5-x2k4q"
	canaryPod = "api-canary-5d7c9f8b6-p9w3z"
)

func startBlueGreen(t *testing.T, greenEnv map[string]string) *bgEnv {
	t.Helper()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	network := traffictest.NewNetwork(t)
	v1 := network.StartApp(t, "v1", nil)
	v2 := network.StartApp(t, "v2", greenEnv)
	traffictest.ExposeService(t, c.Clientset(), ns, "api", v1)
	traffictest.ExposeService(t, c.Clientset(), ns, "api-canary", v2)
	prom := promtest.StartPrometheus(t,
		v1.Target(map[string]string{"namespace": ns, "pod": stablePod}),
		v2.Target(map[string]string{"namespace": ns, "pod": canaryPod}))
	gw := traffictest.StartTraefik(t, c, ns)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The user's route, written by the user's tool: all traffic to api.
	route := gw.HTTPRoute("api", traffictest.BackendRef{Service: "api", Weight: 1})
	if _, err := dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(ns).Apply(t.Context(), "api", route, metav1.ApplyOptions{FieldManager: "kubectl", Force: true}); err != nil {
		t.Fatal(err)
	}
	gw.WaitRoute(t, "api")
	e := &bgEnv{c: c, ns: ns, gw: gw, prom: prom, dyn: dyn, man: deploymentOnly(t, ns), stable: digest("v1"), v1: v1, v2: v2, t: t}
	waitVersions(t, gw.URL, 20*time.Second, "v1")

	// The first deploy has nothing to shift from: applied directly.
	in, log := e.inputs(repo + "@" + e.stable)
	out, err := rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusSuccess || !strings.Contains(log.String(), "first deploy") {
		t.Fatalf("first blue-green deploy: %v, status %q\n%s", err, out.Status, log)
	}
	return e
}

// deploymentOnly writes the Deployment api (3 replicas) of ns.
func deploymentOnly(t *testing.T, ns string) string {
	t.Helper()
	y := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: %s
spec:
  replicas: 3
  selector:
    matchLabels: {app: api}
  strategy:
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: %s:latest
        ports: [{containerPort: 8080}]
`, ns, repo)
	p := filepath.Join(t.TempDir(), "api.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// inputs are a blue-green deploy with the steps shrunk to seconds and the
// analysis sized for the test's load: ~60 requests/s through Traefik.
func (e *bgEnv) inputs(image string) (rollout.Inputs, *logger) {
	in, log := inputs(e.c, "production", e.man, image)
	in = blueGreen(in, e.prom.URL, filepath.Join(e.t.TempDir(), "decisions.jsonl"))
	return in, log
}

func blueGreen(in rollout.Inputs, promURL, decisionLog string) rollout.Inputs {
	in.Strategy = "blue-green"
	in.Route = "api"
	in.TrafficRouter = "gateway-api"
	in.Steps = "10:8s,50:4s,100:4s"
	in.PrometheusURL = promURL
	in.Interval = 2 * time.Second
	in.MaxHold = 16 * time.Second
	in.SuccessRate, in.ErrorRate, in.P95, in.P99, in.Memory = "95%", "5%", "1000ms", "off", "off"
	// 90% confidence: a clean canary passes on ~30 requests, and a
	// canary answering 20% errors fails on as few.
	in.MinSamples, in.Confidence, in.Margin, in.NoData = 25, "0.9", "1%", "fail"
	in.SmokeExpect = "200"
	in.DecisionLog = decisionLog
	in.Timeout = 3 * time.Minute
	return in
}

// routeWeights reads the HTTPRoute's backendRefs: Service → weight.
func (e *bgEnv) routeWeights(t *testing.T) map[string]int64 {
	t.Helper()
	obj, err := e.dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(e.ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(obj.Object, "spec", "rules")
	got := map[string]int64{}
	for _, r := range rules {
		refs, _, _ := unstructured.NestedSlice(r.(map[string]any), "backendRefs")
		for _, ref := range refs {
			m := ref.(map[string]any)
			w, found, _ := unstructured.NestedInt64(m, "weight")
			if !found {
				w = 1
			}
			got[m["name"].(string)] = w
		}
	}
	return got
}

// waitVersions polls 20 requests through the gateway until every answer
// comes from one of versions.
func waitVersions(t *testing.T, url string, timeout time.Duration, versions ...string) map[string]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := traffictest.Tally(t, url, 20)
		n := 0
		for _, v := range versions {
			n += c[v]
		}
		if n == 20 {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("traffic through %s after %v: last 20 requests %v, want only %v", url, timeout, c, versions)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *bgEnv) state(t *testing.T) progressive.State {
	t.Helper()
	store, err := progressive.NewStore(e.c.Clientset(), e.ns, "production")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (e *bgEnv) replicas(t *testing.T, name string) (spec, ready int32) {
	t.Helper()
	d, err := e.c.Clientset().AppsV1().Deployments(e.ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas, d.Status.ReadyReplicas
}

// served is how many requests each version answered, from Prometheus.
func (e *bgEnv) served(t *testing.T, pod string) float64 {
	t.Helper()
	e.prom.WaitScrape(t)
	v, _, err := promtest.Query(t.Context(), e.prom.URL, `sum(http_request_duration_seconds_count{pod="`+pod+`",route=~"/api/.*"})`)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func decisionLog(t *testing.T, path string) []analysis.LogLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("decision log: %v", err)
	}
	defer f.Close()
	lines, err := analysis.ReadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestBlueGreenPromotesHealthyGreen: a healthy new version goes through
// every step and is promoted: N runs it, all traffic is on N again, the
// canary is scaled to 0 and the state says promoted.
func TestBlueGreenPromotesHealthyGreen(t *testing.T) {
	t.Parallel()
	e := startBlueGreen(t, nil)
	stop := promtest.Load(t, e.gw.URL+"/api/prompts", 60)
	defer stop()

	in, log := e.inputs(repo + "@" + digest("v2"))
	// The preview: what the runner reaches of the canary Service.
	in.SmokeURL, in.SmokeExpect = e.v2.URL+"/api/version", `200 "version":"v2"`
	// With the migration hooks: migrate before green starts, smoke once
	// every step passed, before promotion; no migrate-down.
	in.Manifests = manifestDir(t, e.man, hookJobs(t, e.ns, ""))
	out, err := rollout.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("blue-green deploy: %v\n%s", err, log)
	}
	runs := hookRuns(t, e.c, e.ns)
	if len(runs["migrate"]) != 1 || runs["migrate"][0] != repo+"@"+digest("v2")+" Complete" || len(runs["smoke"]) != 1 || len(runs["migrate-down"]) != 0 {
		t.Errorf("hook Jobs after a promoted blue-green rollout: %v", runs)
	}
	if l := log.String(); !(strings.Index(l, "hook pre-deploy: Job") < strings.Index(l, "step 1: 10%") && strings.Index(l, "hook post-deploy: Job") > strings.LastIndex(l, "step 3: 100%") && strings.Index(l, "hook post-deploy: Job") < strings.Index(l, "## Promoting")) {
		t.Errorf("hooks out of order (want migrate before step 1, smoke after step 3 and before the promotion):\n%s", l)
	}
	stats := stop()
	if out.Status != rollout.StatusSuccess || out.Digest != digest("v2") || out.PreviousDigest != e.stable || out.DecisionLog != in.DecisionLog {
		t.Errorf("outputs %+v", out)
	}
	if got := currentImage(t, e.c, e.ns); got != repo+"@"+digest("v2") {
		t.Errorf("after promotion Deployment api runs %s, want the new digest", got)
	}
	if spec, _ := e.replicas(t, "api-canary"); spec != 0 {
		t.Errorf("canary Deployment at %d replicas after promotion, want 0", spec)
	}
	if w := e.routeWeights(t); w["api"] != 100 || w["api-canary"] != 0 {
		t.Errorf("route weights after promotion %v, want api 100, api-canary 0", w)
	}
	// Traefik follows the route within its provider throttle (~2 s).
	waitVersions(t, e.gw.URL, 10*time.Second, "v1")
	if c := traffictest.Tally(t, e.gw.URL, 50); c["v1"] != 50 {
		t.Errorf("after promotion 50 requests through the gateway = %v, want all on Service api", c)
	}
	st := e.state(t)
	if st.Phase != progressive.PhasePromoted || st.Stable.Digest != digest("v2") || st.CanaryWeight != 0 || !strings.Contains(st.RollbackTarget, e.stable) {
		t.Errorf("state after promotion: %s", st.Describe())
	}
	// The canary really took traffic at every step, and the answers
	// were all good.
	if n := e.served(t, canaryPod); n < 100 {
		t.Errorf("the canary served %v requests during the rollout, want the steps' share of ~1000", n)
	}
	if stats.Codes[200] == 0 || stats.Errors > 0 || len(stats.Codes) != 1 {
		t.Errorf("load through the gateway: %+v, want only 200s", stats)
	}
	lines := decisionLog(t, in.DecisionLog)
	steps := map[string]analysis.State{}
	for _, l := range lines {
		if l.Metric == "overall" {
			steps[l.Step] = l.Verdict
		}
	}
	for _, s := range []string{"step 1: 10%", "step 2: 50%", "step 3: 100%"} {
		if steps[s] != analysis.Pass {
			t.Errorf("decision log: %s ended %q, want pass (%v)", s, steps[s], steps)
		}
	}
	for _, want := range []string{"| step 1: 10% | 10% |", "PASS", "```mermaid", "Traffic on the canary", "promoted", "| canary errors | stable errors |", "Per step: canary traffic (bars)"} {
		if !strings.Contains(out.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, out.Summary)
		}
	}
	lease, err := e.c.Clientset().CoordinationV1().Leases(e.ns).Get(t.Context(), rollout.LeaseName("production"), metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity != nil {
		t.Errorf("the Lease with the state must stay, released: %v, %+v", err, lease.Spec)
	}
}

// TestBlueGreenRollsBackFailingGreen: a new version answering 20% errors
// fails the first step; all traffic is back on blue at once.
func TestBlueGreenRollsBackFailingGreen(t *testing.T) {
	t.Parallel()
	e := startBlueGreen(t, map[string]string{"ERROR_RATE": "0.2"})
	stop := promtest.Load(t, e.gw.URL+"/api/prompts", 60)
	defer stop()

	in, log := e.inputs(repo + "@" + digest("v2-bad"))
	in.Manifests = manifestDir(t, e.man, hookJobs(t, e.ns, ""))
	ghURL, ghStates := githubFake(t)
	in.GitHubToken, in.GitHubAPIURL = "ghs_test_token", ghURL
	start := time.Now()
	out, err := rollout.Run(t.Context(), in)
	if err == nil {
		t.Fatalf("a green answering 20%% errors was promoted\n%s", log)
	}
	took := time.Since(start)
	// 5xx answers break both the error-rate and the success-rate limit;
	// either may be the first to be certain.
	if out.Status != rollout.StatusRolledBack || !strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "-rate: ") {
		t.Errorf("status %q, error %v: want rolled-back naming error-rate or success-rate", out.Status, err)
	}
	// Beyond the 5% limit, or worse than stable, whichever is proven first.
	if !strings.HasPrefix(out.Why, "step 1: ") || !strings.Contains(out.Why, "% (canary ") ||
		(!strings.Contains(out.Why, "% > 5% (canary ") && !strings.Contains(out.Why, ", worse than stable's ")) {
		t.Errorf("why output %q: want the step and the failed rate against its limit or stable's, with the request counts", out.Why)
	}
	if took > 60*time.Second {
		t.Errorf("rollback after %v", took)
	}
	if w := e.routeWeights(t); w["api"] != 100 || w["api-canary"] != 0 {
		t.Errorf("route weights after rollback %v, want 100/0", w)
	}
	if c := waitVersions(t, e.gw.URL, 10*time.Second, "v1"); c["v2"] != 0 {
		t.Errorf("after rollback: %v", c)
	}
	if got := currentImage(t, e.c, e.ns); got != repo+"@"+e.stable {
		t.Errorf("after rollback Deployment api runs %s, want the stable %s", got, e.stable)
	}
	if spec, _ := e.replicas(t, "api-canary"); spec != 0 {
		t.Errorf("canary at %d replicas after rollback", spec)
	}
	if runs := hookRuns(t, e.c, e.ns); len(runs["migrate-down"]) != 1 || len(runs["smoke"]) != 0 {
		t.Errorf("hook Jobs after a rolled-back blue-green rollout: %v, want migrate-down once and no smoke", runs)
	}
	if st := e.state(t); st.Phase != progressive.PhaseRolledBack || !strings.Contains(st.Reason, "-rate: ") {
		t.Errorf("state after rollback: %s", st.Describe())
	}
	var failed *analysis.LogLine
	for _, l := range decisionLog(t, in.DecisionLog) {
		if (l.Metric == "error-rate" || l.Metric == "success-rate") && l.Verdict == analysis.Fail {
			failed = &l
			break
		}
	}
	if failed == nil || failed.Step != "step 1: 10%" || !(strings.Contains(failed.Reason, "lower bound above the limit") || strings.Contains(failed.Reason, "worse than stable")) {
		var step1 []string
		for _, l := range decisionLog(t, in.DecisionLog) {
			if l.Step == "step 1: 10%" {
				step1 = append(step1, fmt.Sprintf("%s %s: %s", l.Metric, l.Verdict, l.Reason))
			}
		}
		t.Errorf("decision log: no error-rate or success-rate FAIL at step 1 with its reason: %+v\nstep 1 lines:\n%s", failed, strings.Join(step1, "\n"))
	}
	if got := ghStates(); got != "queued,in_progress,failure" {
		t.Errorf("GitHub deployment statuses %s, want queued,in_progress,failure", got)
	}
	if !strings.Contains(out.Summary, "rolled back") || !strings.Contains(out.Summary, "FAIL") {
		t.Errorf("summary:\n%s", out.Summary)
	}
}

// TestBlueGreenRollsBackSlowGreen: a new version that answers correctly
// but slowly — 30% of its requests 1.5 s late (EXTRA_LATENCY on
// LATENCY_RATE of the sample app), so its P95 is over the 1 s limit while
// blue's is not — fails the first step on the p95 check alone, and all
// traffic is back on blue at once.
func TestBlueGreenRollsBackSlowGreen(t *testing.T) {
	t.Parallel()
	e := startBlueGreen(t, map[string]string{"EXTRA_LATENCY": "1500ms", "LATENCY_RATE": "0.3"})
	stop := promtest.Load(t, e.gw.URL+"/api/prompts", 60)
	defer stop()

	in, log := e.inputs(repo + "@" + digest("v2-slow"))
	// Bounded: the run rolls back within the first step's max-hold, far
	// inside this timeout, which would roll back too.
	in.Timeout = 90 * time.Second
	start := time.Now()
	out, err := rollout.Run(t.Context(), in)
	took := time.Since(start)
	if err == nil {
		t.Fatalf("a green with 30%% of its requests 1.5 s late was promoted\n%s", log)
	}
	if out.Status != rollout.StatusRolledBack || !strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "p95: ") {
		t.Errorf("status %q, error %v: want rolled-back naming p95", out.Status, err)
	}
	// Slow is not broken: the answers themselves were all good.
	for _, check := range []string{"error-rate: ", "success-rate: "} {
		if strings.Contains(err.Error(), check) {
			t.Errorf("error names %s though green answered every request: %v", strings.TrimSuffix(check, ": "), err)
		}
	}
	if took > 60*time.Second {
		t.Errorf("rollback after %v, want it within the first step", took)
	}
	if w := e.routeWeights(t); w["api"] != 100 || w["api-canary"] != 0 {
		t.Errorf("route weights after rollback %v, want api 100, api-canary 0", w)
	}
	if c := waitVersions(t, e.gw.URL, 10*time.Second, "v1"); c["v2"] != 0 {
		t.Errorf("after rollback: %v", c)
	}
	if c := traffictest.Tally(t, e.gw.URL, 50); c["v1"] != 50 {
		t.Errorf("after rollback 50 requests through the gateway = %v, want all on blue (v1)", c)
	}
	if got := currentImage(t, e.c, e.ns); got != repo+"@"+e.stable {
		t.Errorf("after rollback Deployment api runs %s, want the stable %s", got, e.stable)
	}
	if spec, _ := e.replicas(t, "api-canary"); spec != 0 {
		t.Errorf("canary at %d replicas after rollback", spec)
	}
	if st := e.state(t); st.Phase != progressive.PhaseRolledBack || st.CanaryWeight != 0 || !strings.Contains(st.Reason, "p95: ") {
		t.Errorf("state after rollback: %s", st.Describe())
	}
	var failed *analysis.LogLine
	steps := map[string]bool{}
	for _, l := range decisionLog(t, in.DecisionLog) {
		steps[l.Step] = true
		if l.Metric == "p95" && l.Verdict == analysis.Fail && failed == nil {
			failed = &l
		}
	}
	if failed == nil || failed.Step != "step 1: 10%" || !(strings.Contains(failed.Reason, "lower bound above the limit") || strings.Contains(failed.Reason, "worse than stable")) {
		t.Fatalf("decision log: no p95 FAIL at step 1 with its reason: %+v", failed)
	}
	// The FAIL line carries the evidence: the share of green's requests
	// slower than 1 s against the 5% a P95 of 1 s allows. The injection
	// makes it ~30% in the long run, but a request 1.5 s late is counted
	// when it ends, so the first windows see less: the verdict may come
	// at any share above the limit (or, judged against blue's ~0%, above
	// the margin), never above what was injected.
	low := 0.05
	if strings.HasPrefix(failed.Reason, "worse than stable") {
		low = 0.01
	}
	if failed.Estimate == nil || *failed.Estimate <= low || *failed.Estimate > 0.6 || failed.Threshold == nil || *failed.Threshold != 0.05 {
		t.Errorf("p95 FAIL line: estimate %v, threshold %v; want above %v (at most ~0.3 injected) against 0.05 (%s)", deref(failed.Estimate), deref(failed.Threshold), low, failed.Reason)
	}
	if steps["step 2: 50%"] || steps["step 3: 100%"] {
		t.Errorf("the rollout went on after the failed step: decision log steps %v", steps)
	}
	if !strings.Contains(out.Summary, "rolled back") || !strings.Contains(out.Summary, "| step 1: 10% | 10% |") || !strings.Contains(out.Summary, "FAIL") || !strings.Contains(out.Summary, "p95") {
		t.Errorf("summary:\n%s", out.Summary)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// TestCanaryViaGatewayAPI: strategy canary through Traefik. The canary
// Deployment is sized to its share of the 3 replicas and scaled up, and
// ready, before each step moves traffic to it; the route carries the
// step's weights, the canary really answers through the gateway, and a
// healthy canary is promoted.
func TestCanaryViaGatewayAPI(t *testing.T) {
	t.Parallel()
	e := startBlueGreen(t, nil)
	stop := promtest.Load(t, e.gw.URL+"/api/prompts", 60)
	defer stop()

	in, log := e.inputs(repo + "@" + digest("v2"))
	in.Strategy = "canary"
	in.SmokeURL, in.SmokeExpect = e.v2.URL+"/api/version", `200 "version":"v2"`
	want := map[int64]int32{10: 1, 50: 2, 100: 3} // ceil(3 × weight / 100)

	// Watch the route and the canary Deployment from the API server. A
	// snapshot counts only when the route read the same before and after
	// the Deployment, so a weight and a size are seen together.
	var (
		history  []string
		early    []string
		canaryAt = map[int64]bool{}
	)
	canaryWeight := func(ctx context.Context) (int64, error) {
		obj, err := e.dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(e.ns).Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		rules, _, _ := unstructured.NestedSlice(obj.Object, "spec", "rules")
		for _, r := range rules {
			refs, _, _ := unstructured.NestedSlice(r.(map[string]any), "backendRefs")
			for _, ref := range refs {
				if m := ref.(map[string]any); m["name"] == "api-canary" {
					w, _, _ := unstructured.NestedInt64(m, "weight")
					return w, nil
				}
			}
		}
		return 0, nil
	}
	look := func(ctx context.Context) {
		w1, err := canaryWeight(ctx)
		if err != nil {
			return
		}
		d, err := e.c.Clientset().AppsV1().Deployments(e.ns).Get(ctx, "api-canary", metav1.GetOptions{})
		if err != nil {
			return
		}
		if w2, err := canaryWeight(ctx); err != nil || w2 != w1 {
			return
		}
		s := fmt.Sprintf("%d%%@%d", w1, *d.Spec.Replicas)
		if len(history) == 0 || history[len(history)-1] != s {
			history = append(history, s)
		}
		canaryAt[w1] = true
		if need, ok := want[w1]; ok && d.Status.ReadyReplicas < need {
			early = append(early, fmt.Sprintf("%d%% with %d ready", w1, d.Status.ReadyReplicas))
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			look(ctx)
		}
	}()
	start := time.Now()
	out, err := rollout.Run(t.Context(), in)
	took := time.Since(start)
	cancel()
	<-watched
	look(t.Context())
	if err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("canary deploy: %v, status %q\n%s", err, out.Status, log)
	}
	stats := stop()
	if took > 2*time.Minute {
		t.Errorf("a healthy canary took %v to promote", took)
	}
	got := strings.Join(history, " ")
	for _, s := range []string{"10%@1", "50%@2", "100%@3", "0%@0"} {
		if !strings.Contains(got, s) {
			t.Errorf("canary weight on the route @ canary replicas over the rollout: %s; missing %s", got, s)
		}
	}
	if len(early) > 0 {
		t.Errorf("traffic moved to the canary before it was ready at its size: %v (history %s)", early, got)
	}
	for w := range want {
		if !canaryAt[w] {
			t.Errorf("the route never carried %d%% to the canary (history %s)", w, got)
		}
	}
	if n := e.served(t, canaryPod); n < 100 {
		t.Errorf("the canary answered %v requests through the gateway during the rollout, want the steps' share of ~1000", n)
	}
	if stats.Codes[200] == 0 || stats.Errors > 0 || len(stats.Codes) != 1 {
		t.Errorf("load through the gateway: %+v, want only 200s", stats)
	}
	if out.Digest != digest("v2") || out.PreviousDigest != e.stable {
		t.Errorf("outputs %+v", out)
	}
	if got := currentImage(t, e.c, e.ns); got != repo+"@"+digest("v2") {
		t.Errorf("after promotion Deployment api runs %s, want the new digest", got)
	}
	if spec, _ := e.replicas(t, "api"); spec != 3 {
		t.Errorf("Deployment api at %d replicas after promotion, want its 3", spec)
	}
	if spec, _ := e.replicas(t, "api-canary"); spec != 0 {
		t.Errorf("canary Deployment at %d replicas after promotion, want 0", spec)
	}
	if w := e.routeWeights(t); w["api"] != 100 || w["api-canary"] != 0 {
		t.Errorf("route weights after promotion %v, want api 100, api-canary 0", w)
	}
	waitVersions(t, e.gw.URL, 10*time.Second, "v1")
	if st := e.state(t); st.Phase != progressive.PhasePromoted || st.Stable.Digest != digest("v2") || !strings.Contains(st.RollbackTarget, e.stable) {
		t.Errorf("state after promotion: %s", st.Describe())
	}
	passed := map[string]analysis.State{}
	for _, l := range decisionLog(t, in.DecisionLog) {
		if l.Metric == "overall" {
			passed[l.Step] = l.Verdict
		}
	}
	for _, s := range []string{"step 1: 10%", "step 2: 50%", "step 3: 100%"} {
		if passed[s] != analysis.Pass {
			t.Errorf("decision log: %s ended %q, want pass (%v)", s, passed[s], passed)
		}
	}
	for _, s := range []string{"(canary)", "| step 2: 50% | 50% |", "promoted"} {
		if !strings.Contains(out.Summary, s) {
			t.Errorf("summary lacks %q:\n%s", s, out.Summary)
		}
	}
}

// TestBlueGreenSmokeFailureAndPause: a smoke test that fails stops the
// rollout before the route is touched. Then, with no traffic at all and
// no-data: pause, a rollout pauses at its first step, and action promote
// finishes it on the operator's word.
func TestBlueGreenSmokeFailureAndPause(t *testing.T) {
	t.Parallel()
	e := startBlueGreen(t, nil)
	before, err := e.dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(e.ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, log := e.inputs(repo + "@" + digest("v2"))
	in.SmokeURL = e.v2.URL + "/api/version"
	in.SmokeExpect = `200 "version":"v9"`
	out, err := rollout.Run(t.Context(), in)
	if err == nil || !strings.Contains(err.Error(), "smoke test") || !strings.Contains(err.Error(), "v9") {
		t.Fatalf("smoke failure: %v\n%s", err, log)
	}
	if out.Status != rollout.StatusRolledBack {
		t.Errorf("status %q", out.Status)
	}
	after, err := e.dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(e.ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.GetResourceVersion() != before.GetResourceVersion() {
		t.Errorf("the route was written (resourceVersion %s → %s): weights %v", before.GetResourceVersion(), after.GetResourceVersion(), e.routeWeights(t))
	}
	if spec, _ := e.replicas(t, "api-canary"); spec != 0 {
		t.Errorf("canary at %d replicas after the failed smoke test", spec)
	}
	if got := currentImage(t, e.c, e.ns); got != repo+"@"+e.stable {
		t.Errorf("Deployment api runs %s", got)
	}
	if _, err := os.Stat(in.DecisionLog); err == nil {
		if lines := decisionLog(t, in.DecisionLog); len(lines) > 0 {
			t.Errorf("an analysis ran after a failed smoke test: %d decision lines", len(lines))
		}
	}

	// No load at all: under no-data: pause the first step holds until
	// max-hold and the rollout pauses there, traffic as it is.
	in, log = e.inputs(repo + "@" + digest("v2"))
	in.Steps, in.MaxHold, in.NoData = "10:2s,100:2s", 4*time.Second, "pause"
	out, err = rollout.Run(t.Context(), in)
	if err == nil || out.Status != rollout.StatusPaused || !strings.Contains(err.Error(), "paused at step 1: 10%") || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("no data under no-data: pause: %v, status %q\n%s", err, out.Status, log)
	}
	if st := e.state(t); st.Phase != progressive.PhasePaused || st.CanaryWeight != 10 || !strings.Contains(st.Reason, "no data") {
		t.Errorf("state after the pause: %s", st.Describe())
	}
	if w := e.routeWeights(t); w["api"] != 90 || w["api-canary"] != 10 {
		t.Errorf("weights after the pause %v, want 90/10 kept", w)
	}
	// The operator promotes it.
	promote, log := e.inputs("")
	promote.Action, promote.Steps = "promote", ""
	out, err = rollout.Run(t.Context(), promote)
	if err != nil || out.Status != rollout.StatusSuccess || out.Digest != digest("v2") {
		t.Fatalf("promote: %v, %+v\n%s", err, out, log)
	}
	if got := currentImage(t, e.c, e.ns); got != repo+"@"+digest("v2") {
		t.Errorf("after promote Deployment api runs %s", got)
	}
	if w := e.routeWeights(t); w["api"] != 100 || w["api-canary"] != 0 {
		t.Errorf("weights after promote %v", w)
	}
	if spec, _ := e.replicas(t, "api-canary"); spec != 0 {
		t.Errorf("canary at %d replicas after promote", spec)
	}
	if st := e.state(t); st.Phase != progressive.PhasePromoted || st.Stable.Digest != digest("v2") {
		t.Errorf("after promote: %s", st.Describe())
	}
}

// TestBlueGreenSurvivesRunnerDeath: a run cancelled mid-step leaves the
// rollout recorded; deploy refuses it, resume finishes it; a second run
// cancelled mid-step is aborted back to blue.
func TestBlueGreenSurvivesRunnerDeath(t *testing.T) {
	t.Parallel()
	e := startBlueGreen(t, nil)
	stop := promtest.Load(t, e.gw.URL+"/api/prompts", 60)
	defer stop()

	// killAt runs a deploy and cancels it once the rollout reached step.
	killAt := func(image string, step int) {
		t.Helper()
		in, log := e.inputs(image)
		in.Steps = "10:8s,50:12s,100:4s"
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { _, err := rollout.Run(ctx, in); done <- err }()
		deadline := time.Now().Add(90 * time.Second)
		for e.state(t).Step < step || e.state(t).Phase != progressive.PhaseProgressing {
			select {
			case err := <-done:
				t.Fatalf("the deploy ended before step %d: %v\n%s", step+1, err, log)
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("step %d not reached: %s\n%s", step+1, e.state(t).Describe(), log)
			}
		}
		cancel()
		if err := <-done; err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Fatalf("cancelled deploy: %v", err)
		}
	}

	killAt(repo+"@"+digest("v2"), 1)
	if w := e.routeWeights(t); w["api"] != 50 || w["api-canary"] != 50 {
		t.Errorf("weights left by the interrupted run %v, want 50/50", w)
	}
	in, _ := e.inputs(repo + "@" + digest("v3"))
	_, err := rollout.Run(t.Context(), in)
	if err == nil || !strings.Contains(err.Error(), "unfinished") || !strings.Contains(err.Error(), "progressing at step 2 of 3") || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("deploy over an unfinished rollout: %v", err)
	}
	if got := currentImage(t, e.c, e.ns); got != repo+"@"+e.stable {
		t.Errorf("the refused deploy changed Deployment api: %s", got)
	}
	rolling, _ := inputs(e.c, "production", e.man, repo+"@"+digest("v3"))
	if _, err := rollout.Run(t.Context(), rolling); err == nil || !strings.Contains(err.Error(), "unfinished progressive rollout") {
		t.Fatalf("rolling deploy over an unfinished rollout: %v", err)
	}

	resume, log := e.inputs("") // the image and the schedule come from the rollout
	resume.Action, resume.Steps = "resume", ""
	out, err := rollout.Run(t.Context(), resume)
	if err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("resume: %v, %+v\n%s", err, out, log)
	}
	if !strings.Contains(log.String(), "resuming at step 2 of 3") {
		t.Errorf("resume did not continue from the stored step:\n%s", log)
	}
	if got := currentImage(t, e.c, e.ns); got != repo+"@"+digest("v2") {
		t.Errorf("after resume Deployment api runs %s, want v2", got)
	}
	if st := e.state(t); st.Phase != progressive.PhasePromoted {
		t.Errorf("after resume: %s", st.Describe())
	}

	// This time the runner dies outright (SIGKILL): nothing releases
	// the Lease; the abort takes it over once it expires.
	e.killChild(repo+"@"+digest("v3"), 50, syscall.SIGKILL, helperRun{})
	abort, log := e.inputs("")
	abort.Action, abort.Manifests, abort.Namespace = "abort", "", e.ns
	out, err = rollout.Run(t.Context(), abort)
	if err != nil || out.Status != rollout.StatusAborted {
		t.Fatalf("abort: %v, %+v\n%s", err, out, log)
	}
	if !strings.Contains(log.String(), `taking over the lease of production`) || !strings.Contains(log.String(), helperHolder) {
		t.Errorf("the abort did not take the dead runner's lease over:\n%s", log)
	}
	if w := e.routeWeights(t); w["api"] != 100 || w["api-canary"] != 0 {
		t.Errorf("weights after abort %v", w)
	}
	waitVersions(t, e.gw.URL, 10*time.Second, "v1")
	if spec, _ := e.replicas(t, "api-canary"); spec != 0 {
		t.Errorf("canary at %d replicas after abort", spec)
	}
	if got := currentImage(t, e.c, e.ns); got != repo+"@"+digest("v2") {
		t.Errorf("abort changed the stable Deployment: %s", got)
	}
	if st := e.state(t); st.Phase != progressive.PhaseAborted {
		t.Errorf("after abort: %s", st.Describe())
	}
	// Nothing left to abort.
	if _, err := rollout.Run(t.Context(), abort); err == nil || !strings.Contains(err.Error(), "no rollout in progress") {
		t.Errorf("second abort: %v", err)
	}
}

// TestCanaryResumesRecordedSchedule: a canary with a short schedule of
// its own (not the default 20 minutes) loses its runner at 50 %, first
// killed (SIGKILL), then cancelled (SIGTERM). Resume with only what the
// docs ask for — no steps, no route, a timeout that covers what is left
// of the recorded schedule — is accepted, goes on from 50 % with the
// recorded steps and promotes. Inputs that differ from the record
// (steps, bake, route) and a timeout shorter than what is left are
// refused, naming both, before anything moves.
func TestCanaryResumesRecordedSchedule(t *testing.T) {
	t.Parallel()
	e := startBlueGreen(t, nil)
	stop := promtest.Load(t, e.gw.URL+"/api/prompts", 60)
	defer stop()
	const recorded = "50:10s,100:4s"
	resume := func() (rollout.Inputs, *logger) {
		in, log := e.inputs("")
		in.Action, in.Strategy = "resume", "canary"
		in.Steps, in.Route, in.Timeout = "", "", 2*time.Minute
		return in, log
	}
	at50 := func(when string) {
		t.Helper()
		if w := e.routeWeights(t); w["api"] != 50 || w["api-canary"] != 50 {
			t.Fatalf("%s: weights %v, want 50/50", when, w)
		}
		if st := e.state(t); st.Phase != progressive.PhaseProgressing || st.Step != 0 || st.Steps.String() != recorded {
			t.Fatalf("%s: state %s, want progressing at step 1 of %s", when, st.Describe(), recorded)
		}
	}

	for _, tc := range []struct {
		sig     syscall.Signal
		version string
	}{{syscall.SIGKILL, "v2"}, {syscall.SIGTERM, "v3"}} {
		image := repo + "@" + digest(tc.version)
		e.killChild(image, 50, tc.sig, helperRun{Strategy: "canary", Steps: recorded})
		at50("after " + tc.sig.String())

		if tc.sig == syscall.SIGKILL {
			// Refused once the dead runner's Lease expired, nothing moved.
			in, log := resume()
			in.Steps, in.Bake, in.Route = "10:1s,100:1s", 5*time.Second, "web"
			out, err := rollout.Run(t.Context(), in)
			for _, want := range []string{
				`input "steps" is 10:1s,100:1s, but the rollout in progress runs 50:10s,100:4s (recorded on Lease ` + e.ns + `/gantry-deploy-production): leave "steps" empty to resume it with the recorded schedule`,
				`input "bake" is 5s, but the rollout in progress bakes 0s`,
				`input "route" is web, but the rollout in progress has api`,
			} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("resume with other steps, bake and route: %v\nwant %q\n%s", err, want, log)
				}
			}
			if out.Status != rollout.StatusFailure {
				t.Errorf("refused resume: status %q", out.Status)
			}
			in, log = resume()
			in.Timeout = 5 * time.Second
			if _, err := rollout.Run(t.Context(), in); err == nil || !strings.Contains(err.Error(), `input "timeout" is 5s, shorter than what is left of the rollout in progress, the holds of steps 1 to 2 of 50:10s,100:4s and bake 0s (14s)`) {
				t.Errorf("resume with a timeout shorter than the recorded holds: %v\n%s", err, log)
			}
			at50("after the refused resumes")
		}

		in, log := resume()
		if tc.sig == syscall.SIGTERM {
			in.MinSamples = 20 // the deploy's was 25: this run's judge, and the log says so
		}
		out, err := rollout.Run(t.Context(), in)
		if err != nil || out.Status != rollout.StatusSuccess || out.Digest != digest(tc.version) {
			t.Fatalf("resume after %s with no steps and timeout %v: %v, %+v\n%s", tc.sig, in.Timeout, err, out, log)
		}
		for _, want := range []string{
			"resume of the rollout in progress: Deployment api, HTTPRoute " + e.ns + "/api (gateway-api) with Services api and api-canary, steps " + recorded + ", bake 0s, as recorded on Lease",
			"resuming at step 1 of 2 (50%)",
		} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("resume after %s: the log lacks %q:\n%s", tc.sig, want, log)
			}
		}
		warned := strings.Contains(log.String(), "WARNING this run's analysis inputs judge the steps it analyses, and differ from those the rollout started with: min-samples 20 (the rollout started with 25)")
		if warned != (tc.sig == syscall.SIGTERM) {
			t.Errorf("resume after %s: warned of the changed min-samples: %v\n%s", tc.sig, warned, log)
		}
		// The recorded schedule ran, not the default one.
		var analysed []string
		for _, l := range decisionLog(t, in.DecisionLog) {
			if l.Metric == "overall" && !slices.Contains(analysed, l.Step) {
				analysed = append(analysed, l.Step)
			}
		}
		if got := strings.Join(analysed, ", "); got != "step 1: 50%, step 2: 100%" {
			t.Errorf("resume after %s analysed %s, want step 1: 50%%, step 2: 100%%", tc.sig, got)
		}
		if got := currentImage(t, e.c, e.ns); got != image {
			t.Errorf("after resume Deployment api runs %s, want %s", got, image)
		}
		if w := e.routeWeights(t); w["api"] != 100 || w["api-canary"] != 0 {
			t.Errorf("weights after resume %v, want 100/0", w)
		}
		if st := e.state(t); st.Phase != progressive.PhasePromoted || st.Stable.Digest != digest(tc.version) {
			t.Errorf("after resume: %s", st.Describe())
		}
	}
}

func TestProgressiveInputsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		edit func(*rollout.Inputs)
		want string
	}{
		{func(in *rollout.Inputs) { in.Route = "" }, `input "route" is required`},
		{func(in *rollout.Inputs) { in.TrafficRouter = "istio" }, `input "traffic-router" is "istio"`},
		{func(in *rollout.Inputs) { in.Steps = "10:5m,50:5m" }, `it must end at 100`},
		{func(in *rollout.Inputs) { in.PrometheusURL = "" }, `input "prometheus-url" is required`},
		{func(in *rollout.Inputs) { in.SmokeExpect = "ok" }, `input "smoke-expect"`},
		{func(in *rollout.Inputs) { in.ErrorRate = "lots" }, `input "error-rate"`},
		{func(in *rollout.Inputs) { in.NoData = "shrug" }, `input "no-data"`},
		{func(in *rollout.Inputs) { in.Timeout = 10 * time.Minute; in.Steps = progressive.DefaultSteps }, `input "timeout" is 10m0s, shorter than the steps' holds and bake (20m0s)`},
		{func(in *rollout.Inputs) { in.Action = "resume"; in.Strategy = "rolling" }, `needs strategy blue-green or canary`},
	} {
		in := rollout.Inputs{
			Environment: "production", Image: repo + "@" + digest("x"), Manifests: "k8s", Strategy: "blue-green", Action: "deploy",
			Lock: "wait", ReleaseHistory: 10, TrafficRouter: "gateway-api", Route: "api", Steps: "10:1s,100:1s", SmokeExpect: "200",
			PrometheusURL: "http://prometheus:9090", Interval: time.Second, MaxHold: time.Minute,
			SuccessRate: "95%", ErrorRate: "5%", P95: "1s", P99: "2s", Memory: "off", MinSamples: 100, Confidence: "0.99", Margin: "1%", NoData: "fail",
		}
		tc.edit(&in)
		if err := in.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

// TestResumeInputsNeedNoSchedule: resume and promote take the schedule
// and the route from the rollout's record, so their timeout is checked
// against it once read, not against the default schedule's 20 minutes;
// abort needs neither. A deploy without steps runs the default schedule.
func TestResumeInputsNeedNoSchedule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		action  string
		timeout time.Duration
		want    string // "": accepted
	}{
		{"resume", 4 * time.Minute, ""},
		{"promote", time.Minute, ""},
		{"abort", time.Minute, ""},
		{"deploy", 4 * time.Minute, `input "timeout" is 4m0s, shorter than the steps' holds and bake (20m0s)`},
		{"deploy", 25 * time.Minute, ""},
	} {
		in := rollout.Inputs{
			Environment: "production", Manifests: "k8s", Strategy: "canary", Action: tc.action,
			Lock: "wait", ReleaseHistory: 10, TrafficRouter: "gateway-api", SmokeExpect: "200", Timeout: tc.timeout,
			PrometheusURL: "http://prometheus:9090", Interval: time.Second, MaxHold: time.Minute,
			SuccessRate: "95%", ErrorRate: "5%", P95: "1s", P99: "2s", Memory: "off", MinSamples: 100, Confidence: "0.99", Margin: "1%", NoData: "fail",
		}
		if tc.action == "deploy" {
			in.Image, in.Route = repo+"@"+digest("x"), "api"
		}
		err := in.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s with no steps, timeout %v: Validate() = %v, want %q", tc.action, tc.timeout, err, tc.want)
		}
	}
}

// TestCanaryViaIngressNginx: strategy canary through the ingress-nginx
// router, with no ingress controller: what it writes is asserted on the
// API server at every step (the canary Ingress's weight, the canary's
// size), and the user's Service, which has a selector here, never selects
// a canary pod. The analysis is real: Prometheus scrapes two sample-app
// instances loaded directly, labelled as the two Deployments' pods. First
// a plan, which changes nothing.
func TestCanaryViaIngressNginx(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	cs := c.Clientset()
	stableApp := promtest.StartApp(t, map[string]string{"APP_VERSION": "v1"})
	canaryApp := promtest.StartApp(t, map[string]string{"APP_VERSION": "v2"})
	stopStable := promtest.Load(t, stableApp.URL+"/api/prompts", 30)
	defer stopStable()
	stopCanary := promtest.Load(t, canaryApp.URL+"/api/prompts", 20)
	defer stopCanary()
	prom := promtest.StartPrometheus(t,
		stableApp.Target(map[string]string{"namespace": ns, "pod": stablePod}),
		canaryApp.Target(map[string]string{"namespace": ns, "pod": canaryPod}))

	y := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: %[1]s}
spec:
  replicas: 4
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api, tier: web}}
    spec:
      containers: [{name: api, image: "%[2]s:latest", ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: %[1]s}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: api, namespace: %[1]s}
spec:
  ingressClassName: nginx
  rules:
  - host: api.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
`, ns, repo)
	man := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(man, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(image string) (rollout.Inputs, *logger) {
		in, log := inputs(c, "production", man, image)
		in.Strategy, in.TrafficRouter, in.Route = "canary", "ingress-nginx", "api"
		in.Steps = "25:4s,50:3s,100:3s"
		in.PrometheusURL, in.Interval, in.MaxHold = prom.URL, time.Second, 12*time.Second
		in.SuccessRate, in.ErrorRate, in.P95, in.P99, in.Memory = "95%", "5%", "1s", "off", "off"
		in.MinSamples, in.Confidence, in.Margin, in.NoData = 25, "0.9", "1%", "fail"
		in.SmokeExpect, in.DecisionLog, in.Timeout = "200", filepath.Join(t.TempDir(), "d.jsonl"), 2*time.Minute
		return in, log
	}
	first, log := mk(repo + "@" + digest("v1"))
	if _, err := rollout.Run(t.Context(), first); err != nil {
		t.Fatalf("first deploy: %v\n%s", err, log)
	}

	plan, log := mk(repo + "@" + digest("v2"))
	plan.Action, plan.PlanFile = "plan", filepath.Join(t.TempDir(), "plan.json")
	out, err := rollout.Run(t.Context(), plan)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, log)
	}
	pp := out.Plan.Progressive
	if out.Status != rollout.StatusPlanned || pp == nil || pp.Steps != "25:4s,50:3s,100:3s" || fmt.Sprint(pp.CanaryReplicas) != "[1 2 4]" ||
		pp.RouterCheck != "ok" || !strings.Contains(pp.RollbackTarget, digest("v1")) || pp.MinSamples != 25 ||
		!strings.Contains(pp.Queries["errors"], `pod=~"api-canary-[a-z0-9]+-[a-z0-9]+"`) {
		t.Errorf("plan %+v", pp)
	}
	if !strings.Contains(out.Summary, "| 2 | 50% | 3s | 2 |") || !strings.Contains(out.Summary, "rollback target") {
		t.Errorf("plan summary:\n%s", out.Summary)
	}
	if _, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "api-canary", metav1.GetOptions{}); err == nil {
		t.Errorf("plan created the canary Deployment")
	}
	if _, err := os.Stat(plan.PlanFile); err != nil {
		t.Errorf("plan file: %v", err)
	}

	// The rollout, watched from the API server.
	in, log := mk(repo + "@" + digest("v2"))
	type seen struct{ weight, replicas string }
	var (
		history         []seen
		leaks           []string
		stableEndpoints int
	)
	ctx, cancel := context.WithCancel(t.Context())
	watched := make(chan struct{})
	look := func(ctx context.Context) {
		ing, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, "api-canary", metav1.GetOptions{})
		if err != nil {
			return
		}
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "api-canary", metav1.GetOptions{})
		if err != nil {
			return
		}
		s := seen{ing.Annotations[progressive.AnnotationCanaryWeight], fmt.Sprint(*d.Spec.Replicas)}
		if len(history) == 0 || history[len(history)-1] != s {
			history = append(history, s)
		}
		slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=api"})
		if err != nil {
			return
		}
		for _, sl := range slices.Items {
			for _, ep := range sl.Endpoints {
				switch {
				case ep.TargetRef == nil:
				case strings.HasPrefix(ep.TargetRef.Name, "api-canary-"):
					leaks = append(leaks, ep.TargetRef.Name)
				default:
					stableEndpoints++
				}
			}
		}
	}
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			look(ctx)
		}
	}()
	out, err = rollout.Run(t.Context(), in)
	cancel()
	<-watched
	look(t.Context())
	if err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("canary deploy: %v, %+v\n%s", err, out, log)
	}
	// Each step's weight with the canary at its share of the 4 replicas,
	// then back to 0 at promotion.
	var steps []string
	for _, s := range history {
		steps = append(steps, s.weight+"%@"+s.replicas)
	}
	got := strings.Join(steps, " ")
	for _, want := range []string{"25%@1", "50%@2", "100%@4", "0%@0"} {
		if !strings.Contains(got, want) {
			t.Errorf("canary Ingress weight @ canary replicas over the rollout: %s; missing %s", got, want)
		}
	}
	if len(leaks) > 0 || stableEndpoints == 0 {
		t.Errorf("Service api selected canary pods %v (and %d stable pod endpoints were seen)", leaks, stableEndpoints)
	}
	svc, err := cs.CoreV1().Services(ns).Get(t.Context(), "api-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector[rollout.LabelTrack] != "canary" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 {
		t.Errorf("canary Service %+v", svc.Spec)
	}
	canary, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "api-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := canary.Spec.Template.Labels; l["app"] != "api-canary" || l["tier"] != "web" || l[rollout.LabelTrack] != "canary" {
		t.Errorf("canary pod labels %v: want app rewritten (the stable Service selects on it), the rest kept", l)
	}
	if got := currentImage(t, c, ns); got != repo+"@"+digest("v2") {
		t.Errorf("after promotion api runs %s", got)
	}
	primary, err := cs.NetworkingV1().Ingresses(ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil || primary.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name != "api" {
		t.Errorf("the primary Ingress changed: %v %+v", err, primary.Spec)
	}
}

// helperEnv carries a helperRun to TestHelperProgressiveDeploy.
const (
	helperEnv    = "GANTRY_ROLLOUT_HELPER"
	helperHolder = "runner-that-dies"
)

// helperRun is what the child process deploys: a blue-green rollout
// (Strategy overrides; "rolling" is a plain rolling deploy of Manifests)
// with Steps, by default holding 60 s at 50 %. Action abort takes the
// rollout of Namespace over instead. With KillAt the child stops itself
// with SIGKILL at that checkpoint (KillAfter later), as a runner dies;
// with GitHubAPIURL it reports to that GitHub API as run 41.
type helperRun struct {
	Kubeconfig, Manifests, Image, PrometheusURL, DecisionLog  string
	Strategy, Steps, Action, Namespace, SmokeURL, SmokeExpect string
	KillAt, GitHubAPIURL                                      string
	KillAfter                                                 time.Duration
}

// killChild runs a deploy of image in a child process (a runner) and
// sends it sig once the rollout moved weight percent of the traffic to
// the canary: SIGKILL, the runner dies and keeps the Lease until it
// expires; SIGTERM, the runner is cancelled as gantry-deploy is (its
// context ends), leaves the rollout as it is and releases the Lease.
func (e *bgEnv) killChild(image string, weight int, sig syscall.Signal, run helperRun) {
	t := e.t
	t.Helper()
	run.Kubeconfig, run.Manifests, run.Image, run.PrometheusURL = e.c.Kubeconfig, e.man, image, e.prom.URL
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	child := runner(ctx, t, run)
	var output strings.Builder
	child.Stdout, child.Stderr = &output, &output
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	deadline := time.Now().Add(90 * time.Second)
	for st := e.state(t); st.CanaryWeight != weight || st.Phase != progressive.PhaseProgressing || st.Canary.Digest != image[strings.Index(image, "@")+1:]; st = e.state(t) {
		select {
		case err := <-exited:
			t.Fatalf("the child deploy ended before %d%%: %v\n%s", weight, err, output.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d%% not reached: %s\n%s", weight, st.Describe(), output.String())
		}
	}
	if err := child.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	lease, lerr := e.c.Clientset().CoordinationV1().Leases(e.ns).Get(t.Context(), rollout.LeaseName("production"), metav1.GetOptions{})
	if lerr != nil {
		t.Fatal(lerr)
	}
	if sig == syscall.SIGKILL {
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != helperHolder {
			t.Fatalf("the killed runner's lease: %+v", lease.Spec)
		}
		return
	}
	// Cancelled: the run says it left the rollout, and lets the Lease go.
	if err != nil || !strings.Contains(output.String(), "rollout interrupted") {
		t.Fatalf("the cancelled runner: %v\n%s", err, output.String())
	}
	if lease.Spec.HolderIdentity != nil {
		t.Fatalf("the cancelled runner kept the lease: holder %s", *lease.Spec.HolderIdentity)
	}
}

// runner is the command of a runner process deploying run (its decision
// log in a temporary directory).
func runner(ctx context.Context, t *testing.T, run helperRun) *exec.Cmd {
	t.Helper()
	run.DecisionLog = filepath.Join(t.TempDir(), "runner.jsonl")
	spec, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProgressiveDeploy$", "-test.count=1", "-test.v")
	child.Env = append(os.Environ(), helperEnv+"="+string(spec))
	return child
}

// TestHelperProgressiveDeploy is the runner process of killChild and dieAt; in a normal
// test run (no helperEnv) it does nothing. SIGTERM cancels its context,
// as it does gantry-deploy's.
func TestHelperProgressiveDeploy(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		return
	}
	var h helperRun
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		t.Fatal(err)
	}
	cfg, err := rollout.RESTConfigFrom(h.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	in := rollout.Inputs{
		Environment: "production", Image: h.Image, Manifests: h.Manifests, Action: "deploy", RollbackTo: "previous",
		AutoRollback: true, Lock: "wait", Prune: true, ReleaseHistory: 10, RESTConfig: cfg, Log: &logger{echo: h.KillAt != ""}, Poll: 200 * time.Millisecond,
		LeaseDuration: 6 * time.Second, Holder: helperHolder,
	}
	if h.Strategy == "rolling" {
		in.Strategy, in.Timeout = "rolling", 90*time.Second
	} else {
		in = blueGreen(in, h.PrometheusURL, h.DecisionLog)
		in.Steps = or(h.Steps, "10:8s,50:60s,100:4s")
		in.Strategy = or(h.Strategy, in.Strategy)
		in.SmokeURL, in.SmokeExpect = h.SmokeURL, or(h.SmokeExpect, in.SmokeExpect)
	}
	if h.GitHubAPIURL != "" {
		in.GitHubToken, in.GitHubAPIURL = "ghs_kill_matrix_token", h.GitHubAPIURL
		in.Git = metadata.Context{Repository: "acme/prompt-builder", SHA: "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c", RunURL: "https://github.com/acme/prompt-builder/actions/runs/41"}
	}
	if h.Action == "abort" {
		in.Action, in.Image, in.Manifests, in.Namespace, in.Steps = "abort", "", "", h.Namespace, ""
	}
	if h.KillAt != "" {
		die := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
		defer rollout.SetCheckpoint(func(point string) {
			if point != h.KillAt {
				return
			}
			os.Stdout.WriteString("checkpoint " + point + ": the runner dies\n")
			if h.KillAfter > 0 {
				time.AfterFunc(h.KillAfter, die)
				return
			}
			die()
		})()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	_, err = rollout.Run(ctx, in)
	if ctx.Err() != nil {
		t.Logf("cancelled: %v\n%s", err, in.Log.(*logger))
		return
	}
	if h.KillAt != "" {
		t.Errorf("the deploy passed no checkpoint %s: it ended with %v\n%s", h.KillAt, err, in.Log.(*logger))
		return
	}
	t.Errorf("the deploy was not killed: it ended with %v\n%s", err, in.Log.(*logger))
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// githubFake answers the GitHub Deployments API as documented and records
// the states reported.
func githubFake(t *testing.T) (url string, states func() string) {
	var mu sync.Mutex
	var got []string
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/repos/acme/prompt-builder/deployments"):
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id": 2002, "url": "https://api.github.com/repos/acme/prompt-builder/deployments/2002", "environment": "production", "task": "deploy"}`)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/deployments/2002/statuses"):
			var s struct {
				State string `json:"state"`
			}
			json.Unmarshal(body, &s)
			mu.Lock()
			got = append(got, s.State)
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id": 1, "state": "`+s.State+`"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(gh.Close)
	return gh.URL + "/", func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(got, ",")
	}
}
