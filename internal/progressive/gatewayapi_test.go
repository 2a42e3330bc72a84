package progressive

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/traffictest"
)

// TestHTTPRoute shifts real traffic: blue and green behind Traefik, an
// HTTPRoute written by kubectl with three rules (two lead to blue, one to
// another app), and the router moving the split as a deploy would:
// 90/10, then all on green, then the rollback flip to blue.
func TestHTTPRoute(t *testing.T) {
	t.Parallel()
	began := time.Now()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	network := traffictest.NewNetwork(t)
	traffictest.ExposeService(t, cp.Clientset(), ns, "app-blue", network.StartApp(t, "blue", nil))
	traffictest.ExposeService(t, cp.Clientset(), ns, "app-green", network.StartApp(t, "green", nil))
	traffictest.ExposeService(t, cp.Clientset(), ns, "app-other", network.StartApp(t, "other", nil))
	gw := traffictest.StartTraefik(t, cp, ns)
	t.Logf("backends and Traefik up after %v", time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	routes := dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(ns)

	// The route as a user wrote it with kubectl apply --server-side:
	// "/" and "/edge" (rewritten to "/") lead to blue, "/other" to
	// another app that no deploy of this app may touch.
	route := gw.HTTPRoute("app")
	svc := func(name string) []any {
		return []any{map[string]any{"name": name, "port": int64(traffictest.ServicePort)}}
	}
	prefix := func(p string) []any {
		return []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": p}}}
	}
	rewrite := []any{map[string]any{
		"type":       "URLRewrite",
		"urlRewrite": map[string]any{"path": map[string]any{"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
	}}
	if err := unstructured.SetNestedSlice(route.Object, []any{
		map[string]any{"matches": prefix("/"), "backendRefs": svc("app-blue")},
		map[string]any{"matches": prefix("/edge"), "filters": rewrite, "backendRefs": svc("app-blue")},
		map[string]any{"matches": prefix("/other"), "filters": rewrite, "backendRefs": svc("app-other")},
	}, "spec", "rules"); err != nil {
		t.Fatal(err)
	}
	if _, err := routes.Apply(ctx, "app", route, metav1.ApplyOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	gw.WaitRoute(t, "app")
	waitSplit(t, gw.URL, 15*time.Second, map[string]int{"blue": 20})
	waitSplit(t, gw.URL+"/other", 15*time.Second, map[string]int{"other": 20})

	r, err := New(dyn, Config{Router: GatewayAPI, Namespace: ns, Route: "app", Stable: "app-blue", Canary: "app-green"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	wantWeights(t, ctx, r, 100, 0)

	// 90/10: the rules to blue split, the other rule is untouched.
	if err := r.SetWeights(ctx, 90, 10); err != nil {
		t.Fatal(err)
	}
	wantWeights(t, ctx, r, 90, 10)
	gw.WaitRoute(t, "app")
	waitSplit(t, gw.URL, 15*time.Second, map[string]int{"blue": 18, "green": 2})
	// Traefik's weighted round robin is deterministic: over sequential
	// requests each backend is within one of its exact share.
	for _, base := range []string{gw.URL, gw.URL + "/edge"} {
		counts := traffictest.Tally(t, base, 400)
		t.Logf("90/10 at %s: %v", strings.TrimPrefix(base, gw.URL), counts)
		if counts["blue"]+counts["green"] != 400 || absDiff(counts["green"], 40) > 1 {
			t.Errorf("400 requests to %s at 90/10 = %v, want blue 360±1, green 40±1 and nothing else", base, counts)
		}
	}
	if counts := traffictest.Tally(t, gw.URL+"/other", 20); counts["other"] != 20 {
		t.Errorf("20 requests to /other at 90/10 = %v, want all on other", counts)
	}

	live, err := routes.Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertRules(t, live)
	assertOwners(t, live)

	// Idempotent: the same split again writes nothing.
	if err := r.SetWeights(ctx, 90, 10); err != nil {
		t.Fatal(err)
	}
	again, err := routes.Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetGeneration() != live.GetGeneration() {
		t.Errorf("SetWeights(90, 10) twice: generation %d → %d, want unchanged", live.GetGeneration(), again.GetGeneration())
	}

	// All on green, then the rollback flip: each reaches traffic within
	// a bounded time (Traefik applies changes within its 2 s throttle).
	for _, step := range []struct {
		stable, canary int
		want           string
	}{{0, 100, "green"}, {100, 0, "blue"}} {
		set := time.Now()
		if err := r.SetWeights(ctx, step.stable, step.canary); err != nil {
			t.Fatal(err)
		}
		wantWeights(t, ctx, r, step.stable, step.canary)
		waitSplit(t, gw.URL, 10*time.Second, map[string]int{step.want: 20})
		t.Logf("%d/%d: all traffic on %s %v after SetWeights", step.stable, step.canary, step.want, time.Since(set).Round(time.Millisecond))
		for _, base := range []string{gw.URL, gw.URL + "/edge"} {
			if counts := traffictest.Tally(t, base, 100); counts[step.want] != 100 {
				t.Errorf("100 requests to %s at %d/%d = %v, want all on %s", base, step.stable, step.canary, counts, step.want)
			}
		}
	}
	final, err := routes.Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertRules(t, final)

	// A route the Gateway rejects (a listener it does not have) is
	// reported by Check once the controller has said so.
	stray := gw.HTTPRoute("stray", traffictest.BackendRef{Service: "app-blue", Weight: 1})
	parents, _, _ := unstructured.NestedSlice(stray.Object, "spec", "parentRefs")
	parents[0].(map[string]any)["sectionName"] = "nope"
	if err := unstructured.SetNestedSlice(stray.Object, parents, "spec", "parentRefs"); err != nil {
		t.Fatal(err)
	}
	if _, err := routes.Apply(ctx, "stray", stray, metav1.ApplyOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	sr, err := New(dyn, Config{Namespace: ns, Route: "stray", Stable: "app-blue", Canary: "app-green"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := sr.Check(ctx)
		if err != nil && strings.Contains(err.Error(), "HTTPRoute "+ns+"/stray is not accepted by Gateway gateway listener nope (") {
			t.Logf("Check(stray): %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Check(stray) = %v after 15 s, want Traefik's rejection", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// TestHTTPRouteRefusals: routes the router must not touch are refused with
// what to change, and left as they were.
func TestHTTPRouteRefusals(t *testing.T) {
	t.Parallel()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	traffictest.InstallGatewayAPI(t, cp.RESTConfig())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	routes := dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(ns)
	create := func(name string, rules ...[]string) {
		t.Helper()
		var rs []any
		for _, backends := range rules {
			var refs []any
			for _, b := range backends {
				refs = append(refs, map[string]any{"name": b, "port": int64(80)})
			}
			rs = append(rs, map[string]any{"backendRefs": refs})
		}
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1",
			"kind":       "HTTPRoute",
			"metadata":   map[string]any{"name": name},
			"spec": map[string]any{
				"parentRefs": []any{map[string]any{"name": "gateway"}},
				"rules":      rs,
			},
		}}
		if _, err := routes.Apply(ctx, name, obj, metav1.ApplyOptions{FieldManager: "kubectl"}); err != nil {
			t.Fatal(err)
		}
	}
	createServices(t, cp.Clientset(), ns, "app-blue")
	create("elsewhere", []string{"shop"}, []string{"shop-admin"})
	create("mixed", []string{"app-blue"}, []string{"app-blue", "legacy"})
	create("detached", []string{"app-blue"})
	detached, err := routes.Get(ctx, "detached", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.RemoveNestedField(detached.Object, "spec", "parentRefs")
	if _, err := routes.Update(ctx, detached, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		route string
		want  string
	}{
		{"elsewhere", `HTTPRoute ` + ns + `/elsewhere does not send traffic to the stable Service app-blue (its rules lead to Service shop, Service shop-admin): set input "stable-service" to the Service the route serves today, or add a backendRef to Service app-blue`},
		{"mixed", `HTTPRoute ` + ns + `/mixed: rule 2 (PathPrefix /) sends traffic to Service legacy besides Service app-blue: Gantry would drop that backend when it shifts the rule; move it to a rule of its own`},
		{"absent", `HTTPRoute ` + ns + `/absent not found: create it with a rule whose backendRefs send traffic to Service app-blue, or set input "route" to the HTTPRoute that serves this environment`},
	} {
		r, err := New(dyn, Config{Namespace: ns, Route: tc.route, Stable: "app-blue", Canary: "app-green"})
		if err != nil {
			t.Fatal(err)
		}
		var before int64
		if obj, err := routes.Get(ctx, tc.route, metav1.GetOptions{}); err == nil {
			before = obj.GetGeneration()
		}
		if err := r.Check(ctx); err == nil || err.Error() != tc.want {
			t.Errorf("Check(%s) = %v\nwant %s", tc.route, err, tc.want)
		}
		if _, _, err := r.Weights(ctx); err == nil || err.Error() != tc.want {
			t.Errorf("Weights(%s) = %v, want the Check error", tc.route, err)
		}
		if err := r.SetWeights(ctx, 90, 10); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetWeights(%s) = %v, want it to contain the Check error", tc.route, err)
		}
		if obj, err := routes.Get(ctx, tc.route, metav1.GetOptions{}); err == nil && obj.GetGeneration() != before {
			t.Errorf("HTTPRoute %s changed (generation %d → %d) though refused", tc.route, before, obj.GetGeneration())
		}
	}

	// A route attached to no Gateway moves no traffic.
	r, err := New(dyn, Config{Namespace: ns, Route: "detached", Stable: "app-blue", Canary: "app-green"})
	if err != nil {
		t.Fatal(err)
	}
	if err, want := r.Check(ctx), "HTTPRoute "+ns+"/detached is attached to no Gateway (spec.parentRefs is empty): no traffic follows it; add the environment's Gateway to parentRefs"; err == nil || err.Error() != want {
		t.Errorf("Check(detached) = %v\nwant %s", err, want)
	}

	// Traffic to a Service that does not exist would fail: refused.
	create("edited", []string{"app-blue"}, []string{"app-blue"})
	r, err = New(dyn, Config{Namespace: ns, Route: "edited", Stable: "app-blue", Canary: "app-green"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := routes.Get(ctx, "edited", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "Service " + ns + "/app-green of the canary version not found: its 10% of the traffic would fail; deploy the canary version first, or correct input \"canary-service\""
	if err := r.SetWeights(ctx, 90, 10); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("SetWeights(90, 10) without the canary Service = %v\nwant it to contain %s", err, want)
	}
	want = "Service " + ns + "/app-green of the canary version not found: the route would lead to a Service that does not exist"
	if err := r.SetWeights(ctx, 100, 0); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("SetWeights(100, 0) without the canary Service = %v\nwant it to contain %s", err, want)
	}
	if after, err := routes.Get(ctx, "edited", metav1.GetOptions{}); err != nil || after.GetGeneration() != before.GetGeneration() {
		t.Errorf("HTTPRoute edited changed by refused SetWeights (generation %d → %d, %v)", before.GetGeneration(), after.GetGeneration(), err)
	}
	createServices(t, cp.Clientset(), ns, "app-green")

	// Rules that disagree on the split (an edit by hand) are reported
	// rather than averaged.
	if err := r.SetWeights(ctx, 50, 50); err != nil {
		t.Fatal(err)
	}
	obj, err := routes.Get(ctx, "edited", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(obj.Object, "spec", "rules")
	refs := rules[1].(map[string]any)["backendRefs"].([]any)
	refs[1].(map[string]any)["weight"] = int64(3) // 50/3: about 94/6
	if err := unstructured.SetNestedSlice(obj.Object, rules, "spec", "rules"); err != nil {
		t.Fatal(err)
	}
	if _, err := routes.Update(ctx, obj, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	want = "HTTPRoute " + ns + "/edited: its rules split traffic differently (rule 1 (PathPrefix /) 50/50, rule 2 (PathPrefix /) 94/6 stable/canary): someone edited the weights; set them again"
	if _, _, err := r.Weights(ctx); err == nil || err.Error() != want {
		t.Errorf("Weights of an edited route = %v\nwant %s", err, want)
	}
	if err := r.SetWeights(ctx, 80, 20); err != nil {
		t.Fatal(err)
	}
	wantWeights(t, ctx, r, 80, 20)
}

// TestHTTPRouteConcurrentEdit: a user edits the route while the router
// computes new rules from it; the apply does not overwrite the edit, it is
// read again and kept.
func TestHTTPRouteConcurrentEdit(t *testing.T) {
	t.Parallel()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	traffictest.InstallGatewayAPI(t, cp.RESTConfig())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	routes := dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(ns)
	route := func(paths ...string) *unstructured.Unstructured {
		var rules []any
		for _, p := range paths {
			rules = append(rules, map[string]any{
				"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": p}}},
				"backendRefs": []any{map[string]any{"name": "app-blue", "port": int64(80)}},
			})
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "gateway.networking.k8s.io/v1",
			"kind":       "HTTPRoute",
			"metadata":   map[string]any{"name": "app"},
			"spec":       map[string]any{"parentRefs": []any{map[string]any{"name": "gateway"}}, "rules": rules},
		}}
	}
	if _, err := routes.Apply(ctx, "app", route("/"), metav1.ApplyOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	createServices(t, cp.Clientset(), ns, "app-blue", "app-green")
	r, err := NewHTTPRoute(dyn, Config{Namespace: ns, Route: "app", Stable: "app-blue", Canary: "app-green"})
	if err != nil {
		t.Fatal(err)
	}
	edits := 0
	r.beforeApply = func() {
		if edits++; edits > 1 {
			return
		}
		// kubectl adds a rule for /api; its apply wins the race.
		if _, err := routes.Apply(ctx, "app", route("/", "/api"), metav1.ApplyOptions{FieldManager: "kubectl", Force: true}); err != nil {
			t.Error(err)
		}
	}
	if err := r.SetWeights(ctx, 90, 10); err != nil {
		t.Fatal(err)
	}
	if edits != 2 {
		t.Errorf("the router computed the rules %d times, want 2 (the edit made the first apply conflict)", edits)
	}
	live, err := routes.Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(live.Object, "spec", "rules")
	if len(rules) != 2 {
		t.Fatalf("after a concurrent edit the route has %d rules, want the edit's 2: %v", len(rules), rules)
	}
	wantWeights(t, ctx, r, 90, 10)
	for i, rule := range rules {
		refs, _, _ := unstructured.NestedSlice(rule.(map[string]any), "backendRefs")
		if len(refs) != 2 {
			t.Errorf("rule %d has backendRefs %v, want blue and green", i+1, refs)
		}
	}
}

func wantWeights(t *testing.T, ctx context.Context, r Router, stable, canary int) {
	t.Helper()
	s, c, err := r.Weights(ctx)
	if err != nil {
		t.Fatalf("%s: Weights: %v", r.Describe(), err)
	}
	if s != stable || c != canary {
		t.Errorf("%s: Weights = %d/%d, want %d/%d", r.Describe(), s, c, stable, canary)
	}
}

// assertRules: the live route still has its three rules with their
// matches and filters; the two that led to blue lead to blue and green,
// the third still only to the other app.
func assertRules(t *testing.T, route *unstructured.Unstructured) {
	t.Helper()
	rules, _, err := unstructured.NestedSlice(route.Object, "spec", "rules")
	if err != nil || len(rules) != 3 {
		t.Fatalf("HTTPRoute %s has %d rules (%v), want 3", route.GetName(), len(rules), err)
	}
	for i, want := range []struct {
		path     string
		filter   string
		backends string
	}{{"/", "", "app-blue,app-green"}, {"/edge", "URLRewrite", "app-blue,app-green"}, {"/other", "URLRewrite", "app-other"}} {
		rule := rules[i].(map[string]any)
		matches, _, _ := unstructured.NestedSlice(rule, "matches")
		path := ""
		if len(matches) == 1 {
			path, _, _ = unstructured.NestedString(matches[0].(map[string]any), "path", "value")
		}
		filters, _, _ := unstructured.NestedSlice(rule, "filters")
		filter := ""
		if len(filters) == 1 {
			filter, _, _ = unstructured.NestedString(filters[0].(map[string]any), "type")
		}
		refs, _, _ := unstructured.NestedSlice(rule, "backendRefs")
		var names []string
		for _, ref := range refs {
			names = append(names, ref.(map[string]any)["name"].(string))
		}
		if path != want.path || filter != want.filter || strings.Join(names, ",") != want.backends {
			t.Errorf("rule %d: path %q filters %q backends %v, want %q, %q, %s", i+1, path, filter, names, want.path, want.filter, want.backends)
		}
	}
}

// assertOwners: what `kubectl get -o yaml --show-managed-fields` shows:
// gantry's apply owns spec.rules, kubectl keeps the rest of the spec.
func assertOwners(t *testing.T, route *unstructured.Unstructured) {
	t.Helper()
	owns := map[string]map[string]bool{}
	for _, mf := range route.GetManagedFields() {
		if mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
			t.Fatal(err)
		}
		key := mf.Manager + "/" + string(mf.Operation)
		owns[key] = map[string]bool{}
		for f := range fields.Spec {
			owns[key][f] = true
		}
	}
	if !owns["gantry/Apply"]["f:rules"] {
		t.Errorf("managedFields %v: gantry's Apply does not own spec.rules", owns)
	}
	if owns["kubectl/Apply"]["f:rules"] || !owns["kubectl/Apply"]["f:parentRefs"] {
		t.Errorf("managedFields %v: want kubectl to keep spec.parentRefs and lose spec.rules", owns)
	}
}

// waitSplit tallies 20 requests every 100 ms until they are split as want,
// failing the test after timeout with the last counts.
func waitSplit(t *testing.T, url string, timeout time.Duration, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := traffictest.Tally(t, url, 20)
		if equalCounts(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("traffic through %s after %v: last 20 requests %v, want %v", url, timeout, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func absDiff(a, b int) int {
	if a > b {
		return a - b
	}
	return b - a
}
