package rollout_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/argorollouts"
	"github.com/gantry-ci/gantry/internal/argorollouts/argorolloutstest"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/promtest"
	"github.com/gantry-ci/gantry/internal/rollout"
)

// The traffic-router argo-rollouts tests run the real Argo Rollouts
// controller (v1.10.1, argorolloutstest) on the real control plane, one
// controller per test watching the test's namespace; the Rollouts' pods
// are kwok's. Gantry only sets the image and drives the Rollout with the
// kubectl plugin's patches; the controller does the rollout.

// argoRollout is the brief's canary Rollout: 5 pods, setWeight 20, a
// pause until promoted, setWeight 50, a 1 s pause, setWeight 100; the app
// container runs repo, a sidecar another image.
func argoRollout(ns, img string) *unstructured.Unstructured { return argoRolloutPausing(ns, img, "1s") }

// argoRolloutPausing is argoRollout with a timed pause of pause.
func argoRolloutPausing(ns, img, pause string) *unstructured.Unstructured {
	labels := map[string]any{"app": "web"}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Rollout",
		"metadata":   map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{
			"replicas": int64(5),
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{
					map[string]any{"name": "app", "image": img},
					map[string]any{"name": "proxy", "image": argoSidecar},
				}},
			},
			"strategy": map[string]any{"canary": map[string]any{"steps": []any{
				map[string]any{"setWeight": int64(20)},
				map[string]any{"pause": map[string]any{}},
				map[string]any{"setWeight": int64(50)},
				map[string]any{"pause": map[string]any{"duration": pause}},
				map[string]any{"setWeight": int64(100)},
			}}},
		},
	}}
}

var argoSidecar = "ghcr.io/acme/proxy@" + digest("proxy")

// argoStart gives the test a namespace with its own controller and the
// Rollout at v1, Healthy.
func argoStart(t *testing.T) (*k8stest.Cluster, string, *argorollouts.Driver) {
	t.Helper()
	return argoStartPausing(t, "1s")
}

func argoStartPausing(t *testing.T, pause string) (*k8stest.Cluster, string, *argorollouts.Driver) {
	t.Helper()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	argorolloutstest.StartController(t, c, ns)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Created by another tool (kubectl, Argo CD): Gantry takes over the
	// image only.
	if _, err := dyn.Resource(argorollouts.RolloutGVR()).Namespace(ns).Create(t.Context(), argoRolloutPausing(ns, repo+"@"+digest("argo-v1"), pause), metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatal(err)
	}
	drv := argorollouts.New(dyn, ns, "web")
	if _, err := drv.Wait(t.Context(), argorollouts.Healthy, time.Minute); err != nil {
		t.Fatalf("the new Rollout did not become Healthy: %v", err)
	}
	return c, ns, drv
}

func argoInputs(c *k8stest.Cluster, ns, image string) (rollout.Inputs, *logger) {
	in, log := inputs(c, "production", "", image)
	in.Strategy, in.TrafficRouter, in.Rollout, in.Namespace = "canary", "argo-rollouts", "web", ns
	return in, log
}

func argoStatus(t *testing.T, drv *argorollouts.Driver) argorollouts.Status {
	t.Helper()
	st, err := drv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestArgoRolloutsCanary: a deploy sets the image by digest and follows
// the Rollout to its pause until promoted, where it stops (no analysis
// configured: a person decides); a second deploy is refused; resume
// promotes past the pause and follows the rest, the timed pause included,
// to Healthy with the new digest stable; deploying it again does nothing.
func TestArgoRolloutsCanary(t *testing.T) {
	t.Parallel()
	c, ns, drv := argoStart(t)
	v1, v2 := repo+"@"+digest("argo-v1"), repo+"@"+digest("argo-v2")

	in, log := argoInputs(c, ns, v2)
	out, err := rollout.Run(t.Context(), in)
	wantErr := fmt.Sprintf("Rollout %s/web is paused at step 2/5 (pause until promoted) (CanaryPauseStep), canary weight 20%%: it waits for a person; run action resume", ns)
	if err == nil || !strings.Contains(err.Error(), wantErr) || out.Status != rollout.StatusPaused {
		t.Fatalf("deploy: status %q, error %v; want paused with …%s…\nlog:\n%s", out.Status, err, wantErr, log)
	}
	if out.Digest != digest("argo-v2") || out.PreviousDigest != digest("argo-v1") {
		t.Errorf("deploy outputs: digest %s, previous %s; want v2's and v1's", out.Digest, out.PreviousDigest)
	}
	st := argoStatus(t, drv)
	if !argorollouts.PausedAt(1)(st) || st.SetWeight != 20 || st.Stable.Images["app"] != v1 || st.Canary.Images["app"] != v2 || st.Canary.Desired != 1 {
		t.Errorf("after deploy: %s, stable %v, canary %v; want paused at step 2 at 20%%, stable v1, one v2 canary pod", st, st.Stable.Images, st.Canary.Images)
	}
	if st.Images["proxy"] != argoSidecar {
		t.Errorf("the sidecar's image changed: %s", st.Images["proxy"])
	}
	for _, want := range []string{"⏸️ paused deploy to production (canary)", "**Rollout " + ns + "/web**: Paused", "**pause until promoted**", "| canary weight | 20% |", "paused at step 2/5 (pause until promoted) for a person to decide"} {
		if !strings.Contains(out.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, out.Summary)
		}
	}
	if !strings.Contains(log.String(), "▶ 2. pause until promoted") {
		t.Errorf("the log does not report the steps:\n%s", log)
	}

	// The update in progress is the Rollout's: another deploy is refused.
	in3, _ := argoInputs(c, ns, repo+"@"+digest("argo-v3"))
	out, err = rollout.Run(t.Context(), in3)
	if err == nil || !strings.Contains(err.Error(), "has an update in progress") || !strings.Contains(err.Error(), "use action resume") {
		t.Errorf("deploy during an update: %v, want a refusal naming action resume", err)
	}
	if st := argoStatus(t, drv); st.Images["app"] != v2 {
		t.Errorf("the refused deploy changed the Rollout's image to %s", st.Images["app"])
	}

	// resume: past the pause, through the 1 s pause, to Healthy.
	res, log := argoInputs(c, ns, "")
	res.Action = "resume"
	out, err = rollout.Run(t.Context(), res)
	if err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("resume: status %q, %v\nlog:\n%s", out.Status, err, log)
	}
	// One step past the gate, not a full promotion: the rest ran as the
	// Rollout says. (The controller counts pauses in whole seconds, so
	// the 1 s pause's length cannot be asserted.)
	if l := log.String(); !strings.Contains(l, "promoted one step") || strings.Contains(l, "fully promoted") {
		t.Errorf("resume did not promote exactly one step:\n%s", l)
	}
	st = argoStatus(t, drv)
	if st.Phase != argorollouts.PhaseHealthy || st.Stable.Images["app"] != v2 || st.Canary.Hash != "" || st.Step != 5 {
		t.Errorf("after resume: %s, stable %v; want Healthy at step 5 with v2 stable", st, st.Stable.Images)
	}
	if out.Digest != digest("argo-v2") || out.PreviousDigest != digest("argo-v1") {
		t.Errorf("resume outputs: digest %s, previous %s; want v2's and v1's", out.Digest, out.PreviousDigest)
	}
	for _, want := range []string{"✅ success resume", "**Rollout " + ns + "/web**: Healthy", "✅ | pause 1s"} {
		if !strings.Contains(out.Summary, want) {
			t.Errorf("resume summary lacks %q:\n%s", want, out.Summary)
		}
	}

	// The same digest again: nothing to do.
	out, err = rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusSuccess || !strings.Contains(out.Summary, "nothing to roll out") {
		t.Errorf("deploying the stable digest again: %q, %v\n%s", out.Status, err, out.Summary)
	}
}

// TestArgoRolloutsAbortRetryPromote: abort on a paused update sends the
// Rollout back to stable (Degraded, aborted, stable unchanged); promote
// refuses an aborted update; resume retries it from its first step; a
// deploy of another image over an aborted update starts afresh; a promote
// with another image is refused, and promote finishes it.
func TestArgoRolloutsAbortRetryPromote(t *testing.T) {
	t.Parallel()
	c, ns, drv := argoStart(t)
	v1, v3 := repo+"@"+digest("argo-v1"), repo+"@"+digest("argo-v3")

	in, log := argoInputs(c, ns, v3)
	if out, err := rollout.Run(t.Context(), in); out.Status != rollout.StatusPaused {
		t.Fatalf("deploy: status %q, %v\nlog:\n%s", out.Status, err, log)
	}

	ab, log := argoInputs(c, ns, "")
	ab.Action = "abort"
	out, err := rollout.Run(t.Context(), ab)
	if err != nil || out.Status != rollout.StatusAborted {
		t.Fatalf("abort: status %q, %v\nlog:\n%s", out.Status, err, log)
	}
	if out.Digest != digest("argo-v1") || out.PreviousDigest != digest("argo-v3") {
		t.Errorf("abort outputs: digest %s, previous %s; want the stable v1 and the aborted v3", out.Digest, out.PreviousDigest)
	}
	st := argoStatus(t, drv)
	if st.Phase != argorollouts.PhaseDegraded || !st.Aborted || !strings.HasPrefix(st.Message, "RolloutAborted") {
		t.Errorf("after abort: %s; want Degraded, aborted (RolloutAborted)", st)
	}
	if st.Stable.Images["app"] != v1 || st.Stable.Available != 5 || st.Canary.Desired != 0 || st.Canary.Replicas != 0 {
		t.Errorf("after abort: stable %v with %d available, canary %d/%d; want v1 with 5, canary at 0", st.Stable.Images, st.Stable.Available, st.Canary.Replicas, st.Canary.Desired)
	}
	for _, want := range []string{"⏹️ aborted abort", "RolloutAborted", "**Rollout " + ns + "/web**: Degraded"} {
		if !strings.Contains(out.Summary, want) {
			t.Errorf("abort summary lacks %q:\n%s", want, out.Summary)
		}
	}

	pr, _ := argoInputs(c, ns, "")
	pr.Action = "promote"
	if _, err := rollout.Run(t.Context(), pr); err == nil || !strings.Contains(err.Error(), "is aborted") || !strings.Contains(err.Error(), "use action resume") {
		t.Errorf("promote of an aborted update: %v, want a refusal naming resume", err)
	}

	// resume retries from the first step, and stops at the pause again.
	res, log := argoInputs(c, ns, "")
	res.Action = "resume"
	out, err = rollout.Run(t.Context(), res)
	if out.Status != rollout.StatusPaused || err == nil || !strings.Contains(log.String(), "retrying the update from its first step") {
		t.Fatalf("resume of an aborted update: status %q, %v\nlog:\n%s", out.Status, err, log)
	}
	if st := argoStatus(t, drv); !argorollouts.PausedAt(1)(st) || st.Aborted || st.Canary.Images["app"] != v3 {
		t.Errorf("after the retry: %s; want paused at step 2 again, not aborted, canary v3", st)
	}

	// Aborted again, then a deploy of another image starts afresh.
	if out, err := rollout.Run(t.Context(), ab); err != nil || out.Status != rollout.StatusAborted {
		t.Fatalf("second abort: status %q, %v", out.Status, err)
	}
	v4 := repo + "@" + digest("argo-v4")
	in4, log := argoInputs(c, ns, v4)
	if out, err := rollout.Run(t.Context(), in4); out.Status != rollout.StatusPaused {
		t.Fatalf("deploy over an aborted update: status %q, %v\nlog:\n%s", out.Status, err, log)
	}
	if st := argoStatus(t, drv); !argorollouts.PausedAt(1)(st) || st.Aborted || st.Canary.Images["app"] != v4 || st.Stable.Images["app"] != v1 {
		t.Errorf("after a deploy over an aborted update: %s, canary %v, stable %v; want paused at step 2, canary v4, stable v1", st, st.Canary.Images, st.Stable.Images)
	}

	other, _ := argoInputs(c, ns, v3)
	other.Action = "promote"
	if _, err := rollout.Run(t.Context(), other); err == nil || !strings.Contains(err.Error(), `input "image"`) || !strings.Contains(err.Error(), "is rolling out "+v4) {
		t.Errorf("promote with another image: %v", err)
	}
	pr, log = argoInputs(c, ns, v4)
	pr.Action = "promote"
	out, err = rollout.Run(t.Context(), pr)
	if err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("promote: status %q, %v\nlog:\n%s", out.Status, err, log)
	}
	if st := argoStatus(t, drv); st.Phase != argorollouts.PhaseHealthy || st.Stable.Images["app"] != v4 {
		t.Errorf("after promote: %s, stable %v; want Healthy with v4 stable", st, st.Stable.Images)
	}
	if !strings.Contains(out.Summary, "promoted by action promote") {
		t.Errorf("promote summary:\n%s", out.Summary)
	}
}

// TestArgoRolloutsErrors: inputs refused before any request, a cluster
// without Argo Rollouts, a missing Rollout, a Rollout of another strategy
// named by the manifests, an image of none of its containers. Not
// parallel: it uninstalls the CRDs from the shared control plane (the
// parallel tests start after it).
func TestArgoRolloutsErrors(t *testing.T) {
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	cfg := c.RESTConfig()
	v2 := repo + "@" + digest("argo-v2")

	for _, tc := range []struct {
		edit func(*rollout.Inputs)
		want string
	}{
		{func(in *rollout.Inputs) { in.Image = repo + ":v2" }, `input "image": image "` + repo + `:v2" is not pinned by digest`},
		{func(in *rollout.Inputs) { in.Image = repo + "@sha256:1234" }, `is not a valid image by digest`},
		{func(in *rollout.Inputs) { in.Rollout = "" }, `set input "rollout" to its name`},
		{func(in *rollout.Inputs) { in.Rollout = "Web_1" }, `input "rollout" is "Web_1", not a valid Rollout name`},
		{func(in *rollout.Inputs) { in.Namespace = "" }, `needs the Rollout's namespace: set input "namespace"`},
		{func(in *rollout.Inputs) { in.SmokeURL = "http://{preview}/" }, `input "smoke-url" is not used with traffic-router argo-rollouts`},
		{func(in *rollout.Inputs) { in.Action = "plan" }, `action plan is not available with traffic-router argo-rollouts`},
	} {
		in, _ := argoInputs(c, ns, v2)
		tc.edit(&in)
		if err := in.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want …%s…", err, tc.want)
		}
	}
	// Without the Rollout's name the manifests must hold it; neither the
	// Route nor Prometheus is required.
	in, _ := argoInputs(c, ns, v2)
	if err := in.Validate(); err != nil {
		t.Errorf("Validate() of an argo-rollouts deploy with rollout and namespace: %v", err)
	}

	argorolloutstest.UninstallCRDs(t, cfg)
	in, _ = argoInputs(c, ns, v2)
	_, err := rollout.Run(t.Context(), in)
	want := fmt.Sprintf("traffic-router argo-rollouts: Rollout %s/web: the cluster does not serve argoproj.io/v1alpha1 rollouts: the Argo Rollouts CRDs are not installed; install Argo Rollouts", ns)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, argorollouts.ErrCRDsMissing) {
		t.Errorf("deploy without the CRDs:\n got %v\nwant %s…", err, want)
	}

	argorolloutstest.InstallCRDs(t, cfg)
	_, err = rollout.Run(t.Context(), in)
	want = fmt.Sprintf("traffic-router argo-rollouts: Rollout %s/web not found (there is no Rollout in namespace %s): create the Rollout first", ns, ns)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, argorollouts.ErrRolloutNotFound) {
		t.Errorf("deploy of a missing Rollout:\n got %v\nwant %s…", err, want)
	}

	// The Rollout named by the manifests (no controller here: it only
	// needs to exist).
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	obj := argoRollout(ns, repo+"@"+digest("argo-v1"))
	if _, err := dyn.Resource(argorollouts.RolloutGVR()).Namespace(ns).Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	man := filepath.Join(t.TempDir(), "rollout.json")
	if err := os.WriteFile(man, b, 0o644); err != nil {
		t.Fatal(err)
	}
	bg, _ := argoInputs(c, "", v2)
	bg.Rollout, bg.Manifests, bg.Strategy = "", man, "blue-green"
	_, err = rollout.Run(t.Context(), bg)
	want = fmt.Sprintf(`input "strategy" is blue-green, but Rollout %s/web uses the Canary strategy: set "strategy" to canary`, ns)
	if err == nil || err.Error() != want {
		t.Errorf("a canary Rollout deployed as blue-green:\n got %v\nwant %s", err, want)
	}

	in, _ = argoInputs(c, ns, "ghcr.io/acme/other@"+digest("x"))
	_, err = rollout.Run(t.Context(), in)
	want = fmt.Sprintf(`input "image": no container of Rollout %s/web runs ghcr.io/acme/other (its containers: app=%s@%s, proxy=%s): give a new version of one of their images`, ns, repo, digest("argo-v1"), argoSidecar)
	if err == nil || err.Error() != want {
		t.Errorf("an image of none of the containers:\n got %v\nwant %s", err, want)
	}
	if got, _ := argorollouts.New(dyn, ns, "web").Status(t.Context()); got.Images["app"] != repo+"@"+digest("argo-v1") {
		t.Errorf("a refused deploy changed the Rollout's image to %s", got.Images["app"])
	}
}

// TestArgoRolloutsAnalysis: with prometheus-url, Gantry's own analysis
// decides at the Rollout's pauses. A canary answering 20% errors fails
// at the pause until promoted and is aborted (status rolled-back, stable
// unchanged); a healthy one passes there, is promoted past it, passes
// the timed pause too and ends Healthy. The sample app instances stand
// for the pods: Prometheus labels their series, and the selectors name
// them. The timed pause is 3 s here: Gantry sees a pause by polling, and
// one second, rounded by the controller, may end between two polls.
func TestArgoRolloutsAnalysis(t *testing.T) {
	t.Parallel()
	c, ns, drv := argoStartPausing(t, "3s")
	stable := promtest.StartApp(t, map[string]string{"APP_VERSION": "v1"})
	bad := promtest.StartApp(t, map[string]string{"APP_VERSION": "v2", "ERROR_RATE": "0.2"})
	good := promtest.StartApp(t, map[string]string{"APP_VERSION": "v3"})
	prom := promtest.StartPrometheus(t,
		stable.Target(map[string]string{"namespace": ns, "pod": "web-stable"}),
		bad.Target(map[string]string{"namespace": ns, "pod": "web-bad"}),
		good.Target(map[string]string{"namespace": ns, "pod": "web-good"}))
	for _, app := range []*promtest.App{stable, bad, good} {
		stop := promtest.Load(t, app.URL+"/api/prompts", 25)
		defer stop()
	}
	analysed := func(image, pod string) (rollout.Inputs, *logger) {
		in, log := argoInputs(c, ns, image)
		in.PrometheusURL, in.Interval, in.MaxHold, in.Bake = prom.URL, 2*time.Second, 16*time.Second, 4*time.Second
		in.SelectorNew, in.SelectorStable = fmt.Sprintf(`namespace=%q,pod="%s"`, ns, pod), fmt.Sprintf(`namespace=%q,pod="web-stable"`, ns)
		in.SuccessRate, in.ErrorRate, in.P95, in.P99, in.Memory = "95%", "5%", "1000ms", "off", "off"
		in.MinSamples, in.Confidence, in.Margin, in.NoData = 25, "0.9", "1%", "fail"
		in.DecisionLog = filepath.Join(t.TempDir(), "decisions.jsonl")
		in.Timeout = 2 * time.Minute
		return in, log
	}
	v1 := repo + "@" + digest("argo-v1")

	in, log := analysed(repo+"@"+digest("argo-v2"), "web-bad")
	out, err := rollout.Run(t.Context(), in)
	if err == nil || out.Status != rollout.StatusRolledBack || !strings.Contains(err.Error(), "rolled back") || !strings.Contains(err.Error(), "step 2/5 (pause until promoted): fail") {
		t.Fatalf("a canary answering 20%% errors: status %q, %v\nlog:\n%s", out.Status, err, log)
	}
	st := argoStatus(t, drv)
	if !st.Aborted || st.Phase != argorollouts.PhaseDegraded || st.Stable.Images["app"] != v1 || st.Canary.Desired != 0 {
		t.Errorf("after the failed analysis: %s, stable %v, canary at %d; want aborted, Degraded, v1 stable, canary at 0", st, st.Stable.Images, st.Canary.Desired)
	}
	if out.DecisionLog == "" || len(decisionLog(t, out.DecisionLog)) == 0 {
		t.Errorf("no decision log (%q)", out.DecisionLog)
	}
	for _, want := range []string{"↩️ rolled-back", "| step 2/5 (pause until promoted) | 20% |", "FAIL", "**Rollout " + ns + "/web**: Degraded"} {
		if !strings.Contains(out.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, out.Summary)
		}
	}

	in, log = analysed(repo+"@"+digest("argo-v3"), "web-good")
	out, err = rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("a healthy canary: status %q, %v\nlog:\n%s", out.Status, err, log)
	}
	st = argoStatus(t, drv)
	if st.Phase != argorollouts.PhaseHealthy || st.Stable.Images["app"] != repo+"@"+digest("argo-v3") {
		t.Errorf("after a passing analysis: %s, stable %v; want Healthy with v3", st, st.Stable.Images)
	}
	passed := map[string]analysis.State{}
	for _, l := range decisionLog(t, out.DecisionLog) {
		if l.Metric == "overall" {
			passed[l.Step] = l.Verdict
		}
	}
	for _, s := range []string{"step 2/5 (pause until promoted)", "step 4/5 (pause 3s)"} {
		if passed[s] != analysis.Pass {
			t.Errorf("decision log: %s ended %q, want pass (%v)", s, passed[s], passed)
		}
	}
}

// TestArgoRolloutsBlueGreen: a blueGreen Rollout without auto-promotion
// (strategy blue-green) stops at its pre-promotion pause with the new
// version behind the preview Service; resume promotes it to Healthy.
func TestArgoRolloutsBlueGreen(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	argorolloutstest.StartController(t, c, ns)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	labels := map[string]any{"app": "web"}
	for _, svc := range []string{"web-active", "web-preview"} {
		_, err := dyn.Resource(argoGVR("", "v1", "services")).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": svc, "namespace": ns},
			"spec":     map[string]any{"selector": labels, "ports": []any{map[string]any{"port": int64(80)}}},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	v1, v2 := repo+"@"+digest("argo-v1"), repo+"@"+digest("argo-v2")
	_, err = dyn.Resource(argorollouts.RolloutGVR()).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{
			"replicas": int64(3),
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": v1}}},
			},
			"strategy": map[string]any{"blueGreen": map[string]any{
				"activeService": "web-active", "previewService": "web-preview", "autoPromotionEnabled": false,
			}},
		},
	}}, metav1.CreateOptions{FieldManager: "kubectl-create"})
	if err != nil {
		t.Fatal(err)
	}
	drv := argorollouts.New(dyn, ns, "web")
	if _, err := drv.Wait(ctx, argorollouts.Healthy, time.Minute); err != nil {
		t.Fatal(err)
	}

	in, log := argoInputs(c, ns, v2)
	in.Strategy = "blue-green"
	out, err := rollout.Run(ctx, in)
	if out.Status != rollout.StatusPaused || err == nil || !strings.Contains(err.Error(), "paused at the blue-green pre-promotion pause (BlueGreenPause)") {
		t.Fatalf("blue-green deploy: status %q, %v\nlog:\n%s", out.Status, err, log)
	}
	if st := argoStatus(t, drv); st.Stable.Images["app"] != v1 || st.Canary.Images["app"] != v2 || st.Canary.Available != 3 {
		t.Errorf("at the pause: stable %v, new %v with %d available; want v1 active, v2 at full size", st.Stable.Images, st.Canary.Images, st.Canary.Available)
	}
	res, log := argoInputs(c, ns, "")
	res.Strategy, res.Action = "blue-green", "resume"
	out, err = rollout.Run(ctx, res)
	if err != nil || out.Status != rollout.StatusSuccess || out.Digest != digest("argo-v2") || out.PreviousDigest != digest("argo-v1") {
		t.Fatalf("blue-green resume: status %q, %v, outputs %+v\nlog:\n%s", out.Status, err, out, log)
	}
	if st := argoStatus(t, drv); st.Phase != argorollouts.PhaseHealthy || st.Stable.Images["app"] != v2 {
		t.Errorf("after resume: %s, stable %v; want Healthy with v2", st, st.Stable.Images)
	}
}

func argoGVR(group, version, resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
}
