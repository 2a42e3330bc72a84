package workflowtest_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/progressive"
	"github.com/gantry-ci/gantry/internal/promtest"
	"github.com/gantry-ci/gantry/internal/rollout"
	"github.com/gantry-ci/gantry/internal/traffictest"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// Pod names Prometheus gives the two sample-app instances, shaped like the
// pods of Deployments api and api-canary, so the default selectors that
// gantry-deploy derives from the workloads are the ones under test.
const (
	prodStablePod = "api-7c9d8f6b5-k2m4q"
	prodCanaryPod = "api-canary-6f8b7c9d4-t5w8z"
)

// TestReusableDeployProduction runs .github/workflows/deploy.yml through the
// caller testdata/workflows/reusable-deploy-production.yml with act, on a
// real control plane with the Gateway API CRDs installed: environment
// production and no strategy input, so the workflow resolves to blue-green.
//
// The stable version (v1) is deployed first, and the user's HTTPRoute api
// sends all traffic to Service api. Two instances of the sample app stand
// for blue (v1) and green (v2): kwok's pods serve nothing, so a real
// Prometheus scrapes the two instances under the pod names of api and
// api-canary, and a steady load goes to each instance directly. The
// analysis is therefore the real judge over real series, while the
// weights are checked on the API server (internal/rollout's tests run a
// data plane that makes traffic follow them). The token reaches the
// workflow as github.token and GITHUB_API_URL points at a stand-in of
// GitHub's Deployments API, so the workflow's github-deployments path runs.
//
//   - promote: green is promoted step by step (50 %, 100 %), each step
//     analysed and passed; the stable Deployment runs the new digest, the
//     route is back to 100 on Service api, the canary is at 0 replicas, and
//     the GitHub Deployment for production went queued, in_progress,
//     success.
//   - unsigned: an image that fails the verify-key check is refused before
//     anything changes: no route write, no canary, no GitHub Deployment.
func TestReusableDeployProduction(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	traffictest.InstallGatewayAPI(t, c.RESTConfig())
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}

	// Load starts before Prometheus, so its 5-6 s start overlaps the
	// first requests.
	blue := promtest.StartApp(t, map[string]string{"APP_VERSION": "v1"})
	green := promtest.StartApp(t, map[string]string{"APP_VERSION": "v2"})
	promtest.Load(t, blue.URL+"/api/prompts", 40)
	promtest.Load(t, green.URL+"/api/prompts", 40)
	prom := promtest.StartPrometheus(t,
		blue.Target(map[string]string{"namespace": ns, "pod": prodStablePod}),
		green.Target(map[string]string{"namespace": ns, "pod": prodCanaryPod}))

	const token = "ghs_production_test_token_7f3a"
	gh := startDeploymentsAPI(t, token)
	runner := withGitHubToken(t, act, token)

	digest := func(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }
	v1, v2 := "ghcr.io/acme/api@"+digest("production-v1"), "ghcr.io/acme/api@"+digest("production-v2")

	// What runs in production today: v1, deployed by an earlier Gantry run.
	out, err := rollout.Run(t.Context(), rollout.Inputs{
		Environment: "production", Image: v1, Namespace: ns,
		Manifests: filepath.Join(act.Repo, "testdata", "workflows", "production"),
		Strategy:  "rolling", Action: "deploy", RollbackTo: "previous", AutoRollback: true, Lock: "wait", Prune: true, ReleaseHistory: 10,
		Timeout: 2 * time.Minute, RESTConfig: c.RESTConfig(), Poll: 200 * time.Millisecond,
	})
	if err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("deploying the stable version: status %q, %v", out.Status, err)
	}
	// The user's route, written by the user's tool: all traffic to api.
	routes := dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(ns)
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": traffictest.GatewayGroup + "/v1",
		"kind":       "HTTPRoute",
		"metadata":   map[string]any{"name": "api", "namespace": ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "public"}},
			"hostnames":  []any{"production.example.test"},
			"rules": []any{map[string]any{
				"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}},
				"backendRefs": []any{map[string]any{"name": "api", "port": int64(80)}},
			}},
		},
	}}
	if _, err := routes.Apply(t.Context(), "api", route, metav1.ApplyOptions{FieldManager: "kubectl", Force: true}); err != nil {
		t.Fatal(err)
	}

	weights := func(t *testing.T) (map[string]int64, string) {
		t.Helper()
		obj, err := routes.Get(t.Context(), "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return backendWeights(obj), obj.GetResourceVersion()
	}
	deployment := func(t *testing.T, name string) (image string, replicas int32, revision, resourceVersion string) {
		t.Helper()
		d, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Image, *d.Spec.Replicas, d.Annotations["deployment.kubernetes.io/revision"], d.ResourceVersion
	}
	state := func(t *testing.T) progressive.State {
		t.Helper()
		store, err := progressive.NewStore(c.Clientset(), ns, "production")
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	run := func(t *testing.T, image, verifyKey string) (string, string, error) {
		t.Helper()
		result := t.TempDir()
		wf := renderCaller(t, act.Repo, "reusable-deploy-production.yml", map[string]string{
			"IMAGE":      image,
			"NAMESPACE":  ns,
			"KUBECONFIG": c.Kubeconfig,
			"PROMETHEUS": prom.URL,
			"SMOKE_URL":  green.URL + "/api/version",
			"VERIFY_KEY": verifyKey,
			"RESULT":     result,
		})
		start := time.Now()
		log, err := runReusable(t.Context(), t, runner, wf, map[string]string{
			"GITHUB_API_URL":    gh.URL + "/api/v3",
			"GITHUB_REPOSITORY": "acme/prompt-builder",
			"GITHUB_RUN_ID":     "4242",
		})
		t.Logf("act ran the workflow in %v (failed: %t)", time.Since(start).Round(time.Second), err != nil)
		return log, filepath.Join(result, "outputs"), err
	}

	t.Run("promote", func(t *testing.T) {
		// The canary's share of traffic as the route says it, every change
		// seen while the workflow runs.
		ctx, cancel := context.WithCancel(t.Context())
		var (
			wg   sync.WaitGroup
			seen []int64
		)
		wg.Go(func() {
			last := int64(-1)
			for ctx.Err() == nil {
				if obj, err := routes.Get(ctx, "api", metav1.GetOptions{}); err == nil {
					if w := backendWeights(obj); w["api-canary"] != last {
						last = w["api-canary"]
						seen = append(seen, last)
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
		log, outputs, err := run(t, v2, "")
		cancel()
		wg.Wait()
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		out := readOutputs(t, outputs, log)
		img, _, revision, _ := deployment(t, "api")
		if out["status"] != "success" || out["digest"] != digest("production-v2") || out["previous-digest"] != digest("production-v1") || out["revision"] != revision {
			t.Errorf("outputs %v, want status success, digest %s, previous-digest %s, revision %s\n%s", out, digest("production-v2"), digest("production-v1"), revision, log)
		}
		for _, want := range []string{
			"strategy blue-green for production",
			"step 1: 50%: PASS",
			"step 2: 100%: PASS",
			// The job summary, as act prints it.
			"**Decision:** promoted: every step passed",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("the log does not show %q", want)
			}
		}
		if img != v2 {
			t.Errorf("after promotion Deployment api runs %s, want %s", img, v2)
		}
		canaryImg, canaryReplicas, _, _ := deployment(t, "api-canary")
		if canaryReplicas != 0 || canaryImg != v2 {
			t.Errorf("canary Deployment api-canary at %d replicas running %s, want 0 replicas of %s", canaryReplicas, canaryImg, v2)
		}
		if w, _ := weights(t); w["api"] != 100 || w["api-canary"] != 0 {
			t.Errorf("route weights after promotion %v, want api 100, api-canary 0", w)
		}
		if i := slices.Index(seen, 50); i < 0 || !slices.Contains(seen[i:], 100) {
			t.Errorf("the canary's weights on the route during the run were %v, want 50 then 100", seen)
		}
		if st := state(t); st.Phase != progressive.PhasePromoted || st.Stable.Digest != digest("production-v2") {
			t.Errorf("rollout state after promotion: %s", st.Describe())
		}

		deps := gh.Deployments()
		if len(deps) != 1 {
			t.Fatalf("%d GitHub Deployments created, want 1: %+v\n%s", len(deps), deps, log)
		}
		d := deps[0]
		if d.Owner != "acme" || d.Repo != "prompt-builder" || d.Environment != "production" || !d.ProductionEnvironment || d.Task != "deploy" {
			t.Errorf("GitHub Deployment %+v, want one in acme/prompt-builder for environment production (production_environment true, task deploy)", d)
		}
		if len(out["sha"]) != 40 || d.Ref != out["sha"] {
			t.Errorf("GitHub Deployment ref %q, want the run's commit %q", d.Ref, out["sha"])
		}
		if d.Payload["image"] != v2 || !strings.Contains(d.Description, digest("production-v2")) {
			t.Errorf("GitHub Deployment payload %v, description %q: want the image by digest %s", d.Payload, d.Description, v2)
		}
		var states []string
		for _, s := range d.Statuses {
			states = append(states, s.State)
		}
		if !slices.Equal(states, []string{"queued", "in_progress", "success"}) {
			t.Errorf("GitHub Deployment statuses %v, want queued, in_progress, success", states)
		} else {
			last := d.Statuses[2]
			if last.EnvironmentURL != "https://production.example.test" || !strings.HasSuffix(last.LogURL, "/acme/prompt-builder/actions/runs/4242") || !last.AutoInactive {
				t.Errorf("success status %+v, want the environment URL, the run's log URL and auto_inactive", last)
			}
		}
		if bad := gh.Unexpected(); len(bad) > 0 {
			t.Errorf("unexpected requests to the GitHub API: %v", bad)
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		unsigned, pubPath := unsignedImage(t)

		img, _, _, depRV := deployment(t, "api")
		_, _, _, canaryRV := deployment(t, "api-canary")
		w, routeRV := weights(t)
		before, ghBefore := state(t), len(gh.Deployments())

		log, _, err := run(t, unsigned, pubPath)
		if err == nil {
			t.Fatalf("deploying an unsigned image to production with verify-key set succeeded\n%s", log)
		}
		if !strings.Contains(log, "verify-before-deploy failed") || !strings.Contains(log, "strategy blue-green for production") {
			t.Errorf("the blue-green deploy failed, but not on verification:\n%s", log)
		}
		if got, _, _, rv := deployment(t, "api"); got != img || rv != depRV {
			t.Errorf("after the refused deploy Deployment api runs %s (resourceVersion %s → %s), want %s unchanged", got, depRV, rv, img)
		}
		if _, _, _, rv := deployment(t, "api-canary"); rv != canaryRV {
			t.Errorf("the refused deploy changed the canary Deployment (resourceVersion %s → %s)", canaryRV, rv)
		}
		if got, rv := weights(t); rv != routeRV {
			t.Errorf("the refused deploy wrote the route: weights %v → %v", w, got)
		}
		if after := state(t); after.Phase != before.Phase || after.Stable.Digest != before.Stable.Digest {
			t.Errorf("the refused deploy changed the rollout state: %s → %s", before.Describe(), after.Describe())
		}
		if n := len(gh.Deployments()); n != ghBefore {
			t.Errorf("the refused deploy created %d GitHub Deployments", n-ghBefore)
		}
	})
}

// backendWeights reads an HTTPRoute's backendRefs: Service → weight (1
// when unset, as the Gateway API defaults it).
func backendWeights(route *unstructured.Unstructured) map[string]int64 {
	got := map[string]int64{}
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		refs, _, _ := unstructured.NestedSlice(rule, "backendRefs")
		for _, ref := range refs {
			m, _ := ref.(map[string]any)
			w, found, _ := unstructured.NestedInt64(m, "weight")
			if !found {
				w = 1
			}
			n, _ := m["name"].(string)
			got[n] = w
		}
	}
	return got
}

// withGitHubToken returns act passing token as the secret GITHUB_TOKEN,
// which act makes github.token (deploy.yml hands github.token to the deploy
// step).
func withGitHubToken(t *testing.T, a workflowtest.Act, token string) workflowtest.Act {
	t.Helper()
	a.Secrets = map[string]string{"GITHUB_TOKEN": token}
	return a
}

// ghDeployment is a deployment as the stand-in received it, with its
// statuses in the order they were posted.
type ghDeployment struct {
	Owner, Repo           string
	ID                    int64
	Ref                   string         `json:"ref"`
	Task                  string         `json:"task"`
	Environment           string         `json:"environment"`
	Description           string         `json:"description"`
	Payload               map[string]any `json:"payload"`
	ProductionEnvironment bool           `json:"production_environment"`
	Statuses              []ghStatus
}

type ghStatus struct {
	State          string `json:"state"`
	EnvironmentURL string `json:"environment_url"`
	LogURL         string `json:"log_url"`
	Description    string `json:"description"`
	AutoInactive   bool   `json:"auto_inactive"`
}

// deploymentsAPI is a stand-in for GitHub's REST API under /api/v3 (a
// GitHub Enterprise Server root, as GITHUB_API_URL carries it there) that
// answers the two calls of the Deployments API, as documented: POST
// /repos/{owner}/{repo}/deployments and POST
// /repos/{owner}/{repo}/deployments/{id}/statuses, both 201 Created.
type deploymentsAPI struct {
	URL string

	mu         sync.Mutex
	deps       []*ghDeployment
	unexpected []string
}

func startDeploymentsAPI(t *testing.T, token string) *deploymentsAPI {
	t.Helper()
	api := &deploymentsAPI{}
	mux := http.NewServeMux()
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer "+token {
			api.note(r, "without the run's token")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
			return false
		}
		return true
	}
	mux.HandleFunc("POST /api/v3/repos/{owner}/{repo}/deployments", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		d := &ghDeployment{Owner: r.PathValue("owner"), Repo: r.PathValue("repo")}
		if err := json.NewDecoder(r.Body).Decode(d); err != nil {
			api.note(r, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		api.mu.Lock()
		d.ID = int64(1000 + len(api.deps))
		api.deps = append(api.deps, d)
		api.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{
			"id":                     d.ID,
			"url":                    fmt.Sprintf("%s/api/v3/repos/%s/%s/deployments/%d", api.URL, d.Owner, d.Repo, d.ID),
			"sha":                    d.Ref,
			"ref":                    d.Ref,
			"task":                   d.Task,
			"payload":                d.Payload,
			"environment":            d.Environment,
			"description":            d.Description,
			"production_environment": d.ProductionEnvironment,
			"created_at":             time.Now().UTC().Format(time.RFC3339),
		})
	})
	mux.HandleFunc("POST /api/v3/repos/{owner}/{repo}/deployments/{id}/statuses", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		var s ghStatus
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			api.note(r, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		api.mu.Lock()
		var d *ghDeployment
		for _, x := range api.deps {
			if fmt.Sprint(x.ID) == r.PathValue("id") && x.Owner == r.PathValue("owner") && x.Repo == r.PathValue("repo") {
				d = x
			}
		}
		if d != nil {
			d.Statuses = append(d.Statuses, s)
		}
		n := 0
		if d != nil {
			n = len(d.Statuses)
		}
		api.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if d == nil {
			api.note(r, "no such deployment")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{
			"id":              d.ID*100 + int64(n),
			"state":           s.State,
			"description":     s.Description,
			"environment":     d.Environment,
			"environment_url": s.EnvironmentURL,
			"log_url":         s.LogURL,
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.note(r, "not part of the Deployments API")
		http.NotFound(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	api.URL = srv.URL
	return api
}

func (api *deploymentsAPI) note(r *http.Request, why string) {
	api.mu.Lock()
	defer api.mu.Unlock()
	api.unexpected = append(api.unexpected, r.Method+" "+r.URL.Path+": "+why)
}

// Deployments returns copies of the deployments created so far.
func (api *deploymentsAPI) Deployments() []ghDeployment {
	api.mu.Lock()
	defer api.mu.Unlock()
	out := make([]ghDeployment, 0, len(api.deps))
	for _, d := range api.deps {
		c := *d
		c.Statuses = slices.Clone(d.Statuses)
		out = append(out, c)
	}
	return out
}

// Unexpected lists the requests the stand-in refused.
func (api *deploymentsAPI) Unexpected() []string {
	api.mu.Lock()
	defer api.mu.Unlock()
	return slices.Clone(api.unexpected)
}
