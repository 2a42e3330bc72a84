package argorollouts_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/argorollouts"
	"github.com/gantry-ci/gantry/internal/argorollouts/argorolloutstest"
	"github.com/gantry-ci/gantry/internal/k8stest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

const repo = "ghcr.io/acme/web"

// image is repo pinned by a digest made up from tag; kwok runs no
// container, so no registry is needed.
func image(tag string) string {
	return fmt.Sprintf("%s@sha256:%x", repo, sha256.Sum256([]byte(tag)))
}

// step timeouts: generous for a loaded 2-core machine; each transition
// takes about a second here.
const (
	settle = 60 * time.Second
)

// setup starts a namespace with its own controller and creates the
// canary Rollout of the brief (5 kwok pods; setWeight 20, pause until
// promoted, setWeight 50, pause 2s, setWeight 100) at image v1, waits until
// it is Healthy and returns its driver.
func setup(t *testing.T, name string) (*argorollouts.Driver, dynamic.Interface, string) {
	t.Helper()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	argorolloutstest.StartController(t, cp, ns)
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	createRollout(t, dyn, ns, name, image("v1"))
	d := argorollouts.New(dyn, ns, name, argorollouts.WithLogger(testLogger{t}))
	st, err := d.Wait(t.Context(), argorollouts.Healthy, settle)
	if err != nil {
		t.Fatalf("new Rollout not Healthy: %v", err)
	}
	if got := st.Stable.Images["web"]; got != image("v1") || st.Stable.Available != 5 {
		t.Fatalf("new Rollout: stable image %s with %d available, want %s with 5", got, st.Stable.Available, image("v1"))
	}
	return d, dyn, ns
}

func createRollout(t *testing.T, dyn dynamic.Interface, ns, name, img string) {
	t.Helper()
	labels := map[string]any{"app": name}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Rollout",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"replicas": int64(5),
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{
					map[string]any{"name": "web", "image": img, "ports": []any{map[string]any{"containerPort": int64(8080)}}},
					map[string]any{"name": "proxy", "image": "ghcr.io/acme/proxy@sha256:" + strings.Repeat("ab", 32)},
				}},
			},
			"strategy": map[string]any{"canary": map[string]any{"steps": []any{
				map[string]any{"setWeight": int64(20)},
				map[string]any{"pause": map[string]any{}},
				map[string]any{"setWeight": int64(50)},
				map[string]any{"pause": map[string]any{"duration": "2s"}},
				map[string]any{"setWeight": int64(100)},
			}}},
		},
	}}
	// Created by another manager, as kubectl or Argo CD would: SetImage
	// must take the image field over.
	if _, err := dyn.Resource(argorollouts.RolloutGVR()).Namespace(ns).Create(t.Context(), obj, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatalf("creating Rollout %s/%s: %v", ns, name, err)
	}
}

type testLogger struct{ t *testing.T }

func (l testLogger) Infof(format string, args ...any)    { l.t.Logf(format, args...) }
func (l testLogger) Warningf(format string, args ...any) { l.t.Logf("warning: "+format, args...) }
func (l testLogger) Group(title string) func()           { l.t.Log(title); return func() {} }

func wait(t *testing.T, d *argorollouts.Driver, what string, until func(argorollouts.Status) bool) argorollouts.Status {
	t.Helper()
	began := time.Now()
	st, err := d.Wait(t.Context(), until, settle)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	t.Logf("%s after %v", what, time.Since(began).Round(time.Millisecond))
	return st
}

func currentStep(st argorollouts.Status) string {
	for _, s := range st.Steps() {
		if s.State == argorollouts.StepCurrent {
			return s.String()
		}
	}
	return "(none)"
}

// TestCanaryPromote: an update pauses at 20%, survives a manual pause,
// and a one-step promotion carries it through the timed pause to Healthy
// with the new image stable.
func TestCanaryPromote(t *testing.T) {
	t.Parallel()
	d, dyn, ns := setup(t, "web")
	ctx := t.Context()

	// Nothing to promote or abort on a Healthy Rollout.
	if err := d.Promote(ctx, false); err == nil || !strings.Contains(err.Error(), "nothing to promote") {
		t.Errorf("Promote on a Healthy Rollout: %v, want a 'nothing to promote' error", err)
	}
	if err := d.Abort(ctx); err == nil || !strings.Contains(err.Error(), "nothing to abort") {
		t.Errorf("Abort on a Healthy Rollout: %v, want a 'nothing to abort' error", err)
	}

	if err := d.SetImage(ctx, "web", image("v2")); err != nil {
		t.Fatal(err)
	}
	st := wait(t, d, "paused at step 1", argorollouts.PausedAt(1))
	if st.SetWeight != 20 || st.TotalSteps != 5 || st.Message != "CanaryPauseStep" {
		t.Errorf("at the first pause: weight %d, %d steps, message %q; want 20, 5, CanaryPauseStep", st.SetWeight, st.TotalSteps, st.Message)
	}
	if st.Canary.Images["web"] != image("v2") || st.Stable.Images["web"] != image("v1") || st.Images["web"] != image("v2") {
		t.Errorf("images: canary %s, stable %s, template %s; want canary and template v2, stable v1", st.Canary.Images["web"], st.Stable.Images["web"], st.Images["web"])
	}
	if st.Canary.Hash == "" || st.Canary.Hash == st.Stable.Hash || st.Canary.Desired != 1 || st.Stable.Desired != 4 {
		t.Errorf("ReplicaSets: canary %+v, stable %+v; want 1 canary and 4 stable replicas (20%% of 5)", st.Canary, st.Stable)
	}
	if st.Images["proxy"] != "ghcr.io/acme/proxy@sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("SetImage changed the other container: proxy image %s", st.Images["proxy"])
	}
	if got := currentStep(st); got != "▶ 2. pause until promoted" {
		t.Errorf("current step %q, want ▶ 2. pause until promoted", got)
	}
	md := st.Markdown()
	for _, want := range []string{"Paused", "| canary weight | 20% |", "**pause until promoted**", "✅ | setWeight 20%", image("v2")} {
		if !strings.Contains(md, want) {
			t.Errorf("job summary lacks %q:\n%s", want, md)
		}
	}
	assertImageOwner(t, dyn, ns, "web")

	// A manual pause holds; Resume lifts it but the pause step still holds.
	if err := d.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	st = wait(t, d, "manually paused", func(s argorollouts.Status) bool {
		return s.Phase == argorollouts.PhasePaused && s.PausedByUser && s.ObservedGeneration == s.Generation
	})
	if st.Message != "manually paused" {
		t.Errorf("after Pause: message %q, want manually paused", st.Message)
	}
	if err := d.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	st = wait(t, d, "resumed, still at the pause step", func(s argorollouts.Status) bool {
		return argorollouts.PausedAt(1)(s) && !s.PausedByUser
	})
	if st.Message != "CanaryPauseStep" {
		t.Errorf("after Resume: %s, want held by the pause step (CanaryPauseStep)", st)
	}

	promoted := time.Now()
	if err := d.Promote(ctx, false); err != nil {
		t.Fatal(err)
	}
	st = wait(t, d, "the timed pause (step 3)", argorollouts.PausedAt(3))
	if st.SetWeight != 50 {
		t.Errorf("at the timed pause: weight %d, want 50", st.SetWeight)
	}
	st = wait(t, d, "Healthy", argorollouts.Healthy)
	// The controller records when a pause began in whole seconds
	// (metav1.Time), so a 2 s pause may last only a little over 1 s.
	if took := time.Since(promoted); took < time.Second {
		t.Errorf("Healthy %v after Promote: the 2 s pause step was skipped", took)
	}
	if st.Stable.Images["web"] != image("v2") || st.Canary.Hash != "" || st.Step != 5 || st.SetWeight != 100 {
		t.Errorf("after promotion: stable image %s, canary %q, step %d, weight %d; want v2 stable, no canary, step 5, weight 100",
			st.Stable.Images["web"], st.Canary.Hash, st.Step, st.SetWeight)
	}
	if st.Stable.Available != 5 || st.Available != 5 {
		t.Errorf("after promotion: %d stable available, %d in all; want 5", st.Stable.Available, st.Available)
	}
	for _, s := range st.Steps() {
		if s.State != argorollouts.StepDone {
			t.Errorf("after promotion: step %s not done", s)
		}
	}
}

// assertImageOwner checks that SetImage wrote the image as field manager
// gantry, by server-side apply.
func assertImageOwner(t *testing.T, dyn dynamic.Interface, ns, name string) {
	t.Helper()
	obj, err := dyn.Resource(argorollouts.RolloutGVR()).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager == argorollouts.FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.FieldsV1 != nil &&
			strings.Contains(string(mf.FieldsV1.Raw), `"k:{\"name\":\"web\"}":{".":{},"f:image":{}`) {
			return
		}
	}
	t.Errorf("the image of container web is not owned by an apply of %s; managed fields: %+v", argorollouts.FieldManager, obj.GetManagedFields())
}

// TestCanaryAbortRetry: a second update is aborted (traffic and pods back
// to stable, stable image unchanged), retried, and fully promoted.
func TestCanaryAbortRetry(t *testing.T) {
	t.Parallel()
	d, _, _ := setup(t, "api")
	ctx := t.Context()

	// First update: straight through with a full promotion.
	if err := d.SetImage(ctx, "web", image("v2")); err != nil {
		t.Fatal(err)
	}
	wait(t, d, "first update paused at step 1", argorollouts.PausedAt(1))
	if err := d.Promote(ctx, true); err != nil {
		t.Fatal(err)
	}
	st := wait(t, d, "first update Healthy", argorollouts.Healthy)
	if st.Stable.Images["web"] != image("v2") {
		t.Fatalf("after a full promotion: stable image %s, want v2", st.Stable.Images["web"])
	}
	if err := d.Retry(ctx); err == nil || !strings.Contains(err.Error(), "is not aborted") {
		t.Errorf("Retry on a Healthy Rollout: %v, want an 'is not aborted' error", err)
	}

	// Second update, aborted at 20%.
	if err := d.SetImage(ctx, "web", image("v3")); err != nil {
		t.Fatal(err)
	}
	wait(t, d, "second update paused at step 1", argorollouts.PausedAt(1))
	if err := d.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	// Abort scales the stable ReplicaSet back up at once; its pods become
	// available a moment later (slower on a loaded machine).
	st = wait(t, d, "aborted with the canary scaled to 0 and stable back at 5 available", func(s argorollouts.Status) bool {
		return argorollouts.Aborted(s) && s.Stable.Available == 5
	})
	if st.Canary.Desired != 0 || st.Canary.Replicas != 0 || st.Canary.Images["web"] != image("v3") {
		t.Errorf("after Abort: canary %+v; want the v3 ReplicaSet at 0 replicas", st.Canary)
	}
	if !st.Aborted || !strings.HasPrefix(st.Message, "RolloutAborted") || st.SetWeight != 0 {
		t.Errorf("after Abort: %s (message %q); want aborted, RolloutAborted, weight 0", st, st.Message)
	}
	if st.Stable.Images["web"] != image("v2") || st.Stable.Available != 5 || st.Images["web"] != image("v3") {
		t.Errorf("after Abort: stable %s with %d available, template %s; want stable v2 with 5, template still v3",
			st.Stable.Images["web"], st.Stable.Available, st.Images["web"])
	}
	// Waiting for Healthy on an aborted Rollout fails fast with the
	// controller's message, long before its timeout.
	began := time.Now()
	_, err := d.Wait(ctx, argorollouts.Healthy, settle)
	var degraded *argorollouts.DegradedError
	if !errors.As(err, &degraded) || !strings.Contains(err.Error(), "RolloutAborted") || time.Since(began) > 5*time.Second {
		t.Errorf("Wait(Healthy) on an aborted Rollout: %v after %v; want a DegradedError with RolloutAborted at once", err, time.Since(began))
	}
	if err := d.Abort(ctx); err != nil {
		t.Errorf("Abort of an aborted Rollout: %v, want no error", err)
	}

	// Retry: the update starts again from its first step.
	if err := d.Retry(ctx); err != nil {
		t.Fatal(err)
	}
	st = wait(t, d, "retried, paused at step 1", argorollouts.PausedAt(1))
	if st.Aborted || st.SetWeight != 20 || st.Canary.Images["web"] != image("v3") || st.Canary.Desired != 1 {
		t.Errorf("after Retry: %s, canary %+v; want not aborted, weight 20, one v3 canary pod", st, st.Canary)
	}
	if err := d.Promote(ctx, true); err != nil {
		t.Fatal(err)
	}
	st = wait(t, d, "Healthy after the retry", argorollouts.Healthy)
	if st.Stable.Images["web"] != image("v3") {
		t.Errorf("after Retry and full promotion: stable image %s, want v3", st.Stable.Images["web"])
	}
}

// TestWorkloadRef: a Rollout that takes its pod template from a
// Deployment (spec.workloadRef) gets the image set on the Deployment, and
// the controller rolls it out as a canary.
func TestWorkloadRef(t *testing.T) {
	t.Parallel()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	argorolloutstest.StartController(t, cp, ns)
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	labels := map[string]any{"app": "web"}
	deployments := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(ns)
	// Scaled to 0: the Rollout runs the pods.
	_, err = deployments.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": "web-template", "namespace": ns},
		"spec": map[string]any{
			"replicas": int64(0),
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "web", "image": image("v1")}}},
			},
		},
	}}, metav1.CreateOptions{FieldManager: "kubectl-create"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dyn.Resource(argorollouts.RolloutGVR()).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Rollout",
		"metadata":   map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{
			"replicas":    int64(5),
			"selector":    map[string]any{"matchLabels": labels},
			"workloadRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-template"},
			"strategy": map[string]any{"canary": map[string]any{"steps": []any{
				map[string]any{"setWeight": int64(20)},
				map[string]any{"pause": map[string]any{}},
			}}},
		},
	}}, metav1.CreateOptions{FieldManager: "kubectl-create"})
	if err != nil {
		t.Fatal(err)
	}
	d := argorollouts.New(dyn, ns, "web", argorollouts.WithLogger(testLogger{t}))
	st := wait(t, d, "Healthy", argorollouts.Healthy)
	if st.Images["web"] != image("v1") || st.Stable.Images["web"] != image("v1") {
		t.Fatalf("new Rollout: template image %s, stable %s; want v1", st.Images["web"], st.Stable.Images["web"])
	}

	if err := d.SetImage(ctx, "web", image("v2")); err != nil {
		t.Fatal(err)
	}
	dep, err := deployments.Get(ctx, "web-template", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 || containers[0].(map[string]any)["image"] != image("v2") {
		t.Errorf("the Deployment's containers after SetImage: %v, want web at v2", containers)
	}
	st = wait(t, d, "paused at step 1", argorollouts.PausedAt(1))
	if st.Canary.Images["web"] != image("v2") || st.Stable.Images["web"] != image("v1") || st.SetWeight != 20 {
		t.Errorf("at the pause: canary %s, stable %s, weight %d; want v2, v1, 20", st.Canary.Images["web"], st.Stable.Images["web"], st.SetWeight)
	}
	if err := d.Promote(ctx, false); err != nil {
		t.Fatal(err)
	}
	st = wait(t, d, "Healthy after Promote", argorollouts.Healthy)
	if st.Stable.Images["web"] != image("v2") {
		t.Errorf("after Promote: stable image %s, want v2", st.Stable.Images["web"])
	}
}

// TestErrors: bad input and a missing Rollout fail before anything
// changes, each with a message that names the input and the fix.
func TestErrors(t *testing.T) {
	t.Parallel()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	argorolloutstest.InstallCRDs(t, cp.RESTConfig())
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// No Rollout in the namespace at all.
	err = argorollouts.New(dyn, ns, "web").Check(ctx)
	want := fmt.Sprintf("Rollout %s/web not found (there is no Rollout in namespace %s): create the Rollout first, or give the name and namespace of an existing one", ns, ns)
	if err == nil || err.Error() != want || !errors.Is(err, argorollouts.ErrRolloutNotFound) {
		t.Errorf("Check of a missing Rollout:\n got %v\nwant %s", err, want)
	}

	// No controller runs here: the Rollout only needs to exist.
	createRollout(t, dyn, ns, "web", image("v1"))
	createRollout(t, dyn, ns, "api", image("v1"))
	err = argorollouts.New(dyn, ns, "wbe").Check(ctx)
	want = fmt.Sprintf("Rollout %s/wbe not found (Rollouts in namespace %s: api, web): create the Rollout first, or give the name and namespace of an existing one", ns, ns)
	if err == nil || err.Error() != want {
		t.Errorf("Check of a misspelt Rollout:\n got %v\nwant %s", err, want)
	}
	for _, call := range []func(d *argorollouts.Driver) error{
		func(d *argorollouts.Driver) error { _, err := d.Status(ctx); return err },
		func(d *argorollouts.Driver) error { return d.Promote(ctx, false) },
		func(d *argorollouts.Driver) error { return d.Abort(ctx) },
		func(d *argorollouts.Driver) error { return d.Pause(ctx) },
		func(d *argorollouts.Driver) error { return d.SetImage(ctx, "web", image("v2")) },
		func(d *argorollouts.Driver) error {
			_, err := d.Wait(ctx, argorollouts.Healthy, time.Minute)
			return err
		},
	} {
		if err := call(argorollouts.New(dyn, ns, "wbe")); !errors.Is(err, argorollouts.ErrRolloutNotFound) {
			t.Errorf("a call on a missing Rollout: %v, want ErrRolloutNotFound", err)
		}
	}

	d := argorollouts.New(dyn, ns, "web")
	if err := d.Check(ctx); err != nil {
		t.Fatalf("Check of an existing Rollout: %v", err)
	}
	before, err := dyn.Resource(argorollouts.RolloutGVR()).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("x")))
	for _, tc := range []struct {
		container, image, want string
	}{
		{"web", repo + ":v2", `Rollout ` + ns + `/web: image "` + repo + `:v2" is not pinned by digest: give repo@sha256:<64 hex digits> (the build stage's digest output), not a tag`},
		{"web", repo, `is not pinned by digest`},
		{"web", repo + "@sha256:1234", `is not a valid image by digest (repo@sha256:<64 hex digits>)`},
		{"web", repo + ":v2@" + digest, `has both a tag and a digest: give ` + repo + `@` + digest + ` without the tag`},
		{"web", "", `the image is empty`},
		{"", image("v2"), `the container name is empty`},
		{"api", image("v2"), `Rollout ` + ns + `/web has no container "api" (its containers: proxy, web): give one of those names`},
	} {
		err := d.SetImage(ctx, tc.container, tc.image)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetImage(%q, %q):\n got %v\nwant …%s…", tc.container, tc.image, err, tc.want)
		}
	}
	after, err := dyn.Resource(argorollouts.RolloutGVR()).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.GetResourceVersion() != before.GetResourceVersion() {
		t.Errorf("rejected SetImage calls changed the Rollout (resourceVersion %s → %s)", before.GetResourceVersion(), after.GetResourceVersion())
	}

	if err := d.Retry(ctx); err == nil || !strings.Contains(err.Error(), "is not aborted (no phase reported yet): nothing to retry") {
		t.Errorf("Retry of a Rollout that never ran: %v", err)
	}
	// Without a controller nothing moves: Wait ends at its timeout and
	// says why.
	_, err = d.Wait(ctx, argorollouts.Healthy, 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not reach the awaited state within 1.5s") || !strings.Contains(err.Error(), "check that it is running and watches namespace "+ns) {
		t.Errorf("Wait without a controller: %v", err)
	}

	for _, tc := range []struct {
		ns, name, want string
	}{
		{"", "web", "the Rollout's namespace is empty"},
		{ns, "", "the Rollout's name is empty"},
		{"Prod", "web", `namespace "Prod" is not a valid namespace name`},
		{ns, "web/x", `"web/x" is not a valid Rollout name`},
	} {
		if err := argorollouts.New(dyn, tc.ns, tc.name).Check(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%q, %q): %v, want …%s…", tc.ns, tc.name, err, tc.want)
		}
	}
	if err := argorollouts.New(nil, ns, "web").Check(ctx); err == nil || !strings.Contains(err.Error(), "no Kubernetes client") {
		t.Errorf("Check without a client: %v", err)
	}
}
