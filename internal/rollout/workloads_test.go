package rollout_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/argorollouts"
	"github.com/gantry-ci/gantry/internal/argorollouts/argorolloutstest"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/rollout"
)

// release writes a release of several workloads shaped like the seed
// guide's app: Deployment api, StatefulSet worker (2 pods, OrderedReady),
// Deployment web, and with agent a DaemonSet too. faults maps a workload's
// name to a kwok fault on its pod template; partition sets the
// StatefulSet's RollingUpdate partition.
func release(t *testing.T, ns string, faults map[string]string, agent bool, partition int) string {
	t.Helper()
	ann := func(name string) string {
		if f := faults[name]; f != "" {
			return fmt.Sprintf("\n      annotations:\n        %s: %s", k8stest.FaultAnnotation, f)
		}
		return ""
	}
	y := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: %[1]s}
spec:
  replicas: 2
  progressDeadlineSeconds: 60
  selector: {matchLabels: {app: api}}
  template:
    metadata:
      labels: {app: api}%[2]s
    spec:
      containers: [{name: api, image: "%[5]s:latest"}]
---
apiVersion: v1
kind: Service
metadata: {name: worker, namespace: %[1]s}
spec:
  clusterIP: None
  selector: {app: worker}
  ports: [{port: 9000}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: worker, namespace: %[1]s}
spec:
  serviceName: worker
  replicas: 2
  selector: {matchLabels: {app: worker}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {partition: %[6]d}
  template:
    metadata:
      labels: {app: worker}%[3]s
    spec:
      containers: [{name: worker, image: "%[5]s:latest"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: 2
  progressDeadlineSeconds: 60
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}%[4]s
    spec:
      containers: [{name: web, image: "%[5]s:latest"}]
`, ns, ann("api"), ann("worker"), ann("web"), repo, partition)
	if agent {
		y += fmt.Sprintf(`---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata:
      labels: {app: agent}%[2]s
    spec:
      containers: [{name: agent, image: "%[3]s:latest"}]
`, ns, ann("agent"), repo)
	}
	p := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// images returns each workload's first container image.
func workloadImages(t *testing.T, c *k8stest.Cluster, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	apps := c.Clientset().AppsV1()
	for _, n := range []string{"api", "web"} {
		if d, err := apps.Deployments(ns).Get(t.Context(), n, metav1.GetOptions{}); err == nil {
			out[n] = d.Spec.Template.Spec.Containers[0].Image
		}
	}
	if s, err := apps.StatefulSets(ns).Get(t.Context(), "worker", metav1.GetOptions{}); err == nil {
		out["worker"] = s.Spec.Template.Spec.Containers[0].Image
	}
	if d, err := apps.DaemonSets(ns).Get(t.Context(), "agent", metav1.GetOptions{}); err == nil {
		out["agent"] = d.Spec.Template.Spec.Containers[0].Image
	} else if !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return out
}

// TestReleaseRollsBackAsOne: a release of three workloads (and a DaemonSet
// the new release adds) whose second, a StatefulSet, crash-loops: every
// workload goes back to what ran before, the added DaemonSet is removed,
// the StatefulSet's stuck pod is deleted (forced rollback), and the
// outputs and the summary say so.
func TestReleaseRollsBackAsOne(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	good, bad := repo+"@"+digest("release-good"), repo+"@"+digest("release-bad")

	in, log := inputs(c, "staging", release(t, ns, nil, false, 0), good)
	out := deploy(t, in)
	if out.Status != rollout.StatusSuccess || out.Digest != digest("release-good") {
		t.Fatalf("first release: %+v", out)
	}
	for n, img := range workloadImages(t, c, ns) {
		if img != good {
			t.Fatalf("after the first release %s runs %s", n, img)
		}
	}
	if !strings.Contains(log.String(), "StatefulSet "+ns+"/worker: rolled out") {
		t.Errorf("the StatefulSet's rollout was not waited for:\n%s", log)
	}

	bad2, log := inputs(c, "staging", release(t, ns, map[string]string{"worker": "crashloop"}, true, 0), bad)
	out, err := rollout.Run(t.Context(), bad2)
	if err == nil {
		t.Fatalf("a release with a crash-looping StatefulSet succeeded\n%s", log)
	}
	if out.Status != rollout.StatusRolledBack || out.Digest != digest("release-good") || out.PreviousDigest != digest("release-good") {
		t.Errorf("outputs status %q digest %s previous %s, want rolled-back with the digest running again\n%s", out.Status, out.Digest, out.PreviousDigest, log)
	}
	for _, want := range []string{"StatefulSet " + ns + "/worker: CrashLoopBackOff in pod worker-1", "the release was rolled back", "DaemonSet " + ns + "/agent removed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	got := workloadImages(t, c, ns)
	for _, n := range []string{"api", "worker", "web"} {
		if got[n] != good {
			t.Errorf("after the rollback %s runs %s, want %s", n, got[n], good)
		}
	}
	if _, ok := got["agent"]; ok {
		t.Errorf("the DaemonSet the failed release created is still there")
	}
	s, err := c.Clientset().AppsV1().StatefulSets(ns).Get(t.Context(), "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Status.ReadyReplicas != 2 || s.Status.UpdateRevision != s.Status.CurrentRevision {
		t.Errorf("StatefulSet after the rollback: %d ready, revisions %s/%s", s.Status.ReadyReplicas, s.Status.CurrentRevision, s.Status.UpdateRevision)
	}
	if !strings.Contains(log.String(), "deleted pod worker-1 of the failed revision") {
		t.Errorf("the stuck StatefulSet pod was not deleted (forced rollback):\n%s", log)
	}
	for _, want := range []string{"Rolled back automatically, as one release", "Deployment " + ns + "/api: rolled back to revision", "Deployment " + ns + "/web: rolled back to revision", "StatefulSet " + ns + "/worker: rolled back to its previous pod template", "DaemonSet " + ns + "/agent: removed"} {
		if !strings.Contains(out.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, out.Summary)
		}
	}
	if strings.Contains(out.Summary, "To return to this exact revision") {
		t.Errorf("the summary of a rolled-back release offers to return to the failed revision:\n%s", out.Summary)
	}
}

// TestStatefulSetPartition: with a RollingUpdate partition the rollout is
// done when the pods at or above it run the new revision; those below keep
// the old one.
func TestStatefulSetPartition(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	a, b := repo+"@"+digest("part-a"), repo+"@"+digest("part-b")
	in, _ := inputs(c, "staging", release(t, ns, nil, false, 0), a)
	deploy(t, in)
	in, log := inputs(c, "staging", release(t, ns, nil, false, 1), b)
	if out := deploy(t, in); out.Status != rollout.StatusSuccess {
		t.Fatalf("partitioned rollout: %+v", out)
	}
	s, err := c.Clientset().AppsV1().StatefulSets(ns).Get(t.Context(), "worker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rev := map[string]string{}
	for _, p := range []string{"worker-0", "worker-1"} {
		pod, err := c.Clientset().CoreV1().Pods(ns).Get(t.Context(), p, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rev[p] = pod.Labels["controller-revision-hash"]
	}
	if rev["worker-1"] != s.Status.UpdateRevision || rev["worker-0"] == s.Status.UpdateRevision {
		t.Errorf("pod revisions %v, update revision %s: want only worker-1 (at the partition) updated", rev, s.Status.UpdateRevision)
	}
	if !strings.Contains(log.String(), "partition 1") {
		t.Errorf("the log does not mention the partition:\n%s", log)
	}
}

// hookJobs writes migration hooks beside a release: a pre-deploy migrate
// Job (failing with fault "fail"), an on-rollback migrate-down Job and a
// post-deploy smoke Job.
func hookJobs(t *testing.T, ns, migrateFault string) string {
	t.Helper()
	fault := ""
	if migrateFault != "" {
		fault = fmt.Sprintf("\n      annotations: {%s: %s}", k8stest.FaultAnnotation, migrateFault)
	}
	job := func(name, point, extra string) string {
		return fmt.Sprintf(`---
apiVersion: batch/v1
kind: Job
metadata:
  name: %[1]s
  namespace: %[2]s
  annotations: {gantry.dev/hook: %[3]s}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {app: %[1]s}%[4]s
    spec:
      restartPolicy: Never
      containers: [{name: %[1]s, image: "%[5]s:latest", command: [npm, run, %[1]s]}]
`, name, ns, point, extra, repo)
	}
	y := job("migrate", "pre-deploy", fault) + job("migrate-down", "on-rollback", "") + job("smoke", "post-deploy", "")
	p := filepath.Join(t.TempDir(), "hooks.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hookRuns lists the hook Jobs in ns by the name they have in the
// manifests, with their image and whether they completed.
func hookRuns(t *testing.T, c *k8stest.Cluster, ns string) map[string][]string {
	t.Helper()
	list, err := c.Clientset().BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{LabelSelector: rollout.LabelHookName})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, j := range list.Items {
		state := "running"
		for _, cond := range j.Status.Conditions {
			if cond.Status == "True" && (cond.Type == "Complete" || cond.Type == "Failed") {
				state = string(cond.Type)
			}
		}
		out[j.Labels[rollout.LabelHookName]] = append(out[j.Labels[rollout.LabelHookName]], j.Spec.Template.Spec.Containers[0].Image+" "+state)
	}
	return out
}

// TestMigrationHooks: a pre-deploy migration Job runs before the release
// under a name of its own per run and with the release's digest; when it
// fails nothing changes; on an automatic rollback the on-rollback Job runs
// after the workloads are back.
func TestMigrationHooks(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	v1, v2, v3 := repo+"@"+digest("hooks-1"), repo+"@"+digest("hooks-2"), repo+"@"+digest("hooks-3")
	dir := t.TempDir()
	write := func(faults map[string]string, migrateFault string) string {
		for _, f := range []struct{ src, dst string }{{release(t, ns, faults, false, 0), "release.yaml"}, {hookJobs(t, ns, migrateFault), "hooks.yaml"}} {
			b, err := os.ReadFile(f.src)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, f.dst), b, 0o644)
		}
		return dir
	}

	// A release with its migration: migrate, then the workloads, then smoke.
	in, log := inputs(c, "staging", write(nil, ""), v1)
	out := deploy(t, in)
	runs := hookRuns(t, c, ns)
	if len(runs["migrate"]) != 1 || runs["migrate"][0] != v1+" Complete" || len(runs["smoke"]) != 1 || len(runs["migrate-down"]) != 0 {
		t.Errorf("hook Jobs after a good release: %v, want migrate and smoke completed with %s, no migrate-down", runs, v1)
	}
	l := log.String()
	if i := strings.Index(l, "hook pre-deploy: Job"); i < 0 || !(i < strings.Index(l, "## Applying") && strings.Index(l, "## Applying") < strings.Index(l, "hook post-deploy: Job")) {
		t.Errorf("hooks out of order:\n%s", l)
	}
	if !strings.Contains(out.Summary, "| pre-deploy | migrate-") || !strings.Contains(out.Summary, "✅ completed") {
		t.Errorf("summary lacks the hooks:\n%s", out.Summary)
	}

	// A plan lists the hooks and runs none.
	plan, _ := inputs(c, "staging", write(nil, ""), v2)
	plan.Action = "plan"
	pout := deploy(t, plan)
	actions := map[string]string{}
	for _, it := range pout.Plan.Items {
		if it.Kind == "Job" {
			actions[it.Name] = it.Action
		}
	}
	if actions["migrate"] != "hook pre-deploy" || actions["smoke"] != "hook post-deploy" || actions["migrate-down"] != "hook on-rollback" {
		t.Errorf("plan's hook items %v", actions)
	}
	if n := len(hookRuns(t, c, ns)["migrate"]); n != 1 {
		t.Errorf("the plan ran hooks: %d migrate Jobs", n)
	}

	// A failing migration stops the deploy before any workload changes.
	in, log = inputs(c, "staging", write(nil, k8stest.FaultJobFail), v2)
	out, err := rollout.Run(t.Context(), in)
	if err == nil || !strings.Contains(err.Error(), "stopped before any workload changed") || !strings.Contains(err.Error(), "pre-deploy hook Job "+ns+"/migrate-") || out.Status != rollout.StatusFailure {
		t.Fatalf("failing migration: status %q, err %v\n%s", out.Status, err, log)
	}
	for n, img := range workloadImages(t, c, ns) {
		if img != v1 {
			t.Errorf("after the failed migration %s runs %s, want still %s", n, img, v1)
		}
	}
	if !strings.Contains(out.Summary, "| pre-deploy | migrate-") || !strings.Contains(out.Summary, "❌ failed") {
		t.Errorf("summary lacks the failed hook:\n%s", out.Summary)
	}
	if strings.Contains(log.String(), "## Applying") {
		t.Errorf("objects were applied after the migration failed:\n%s", log)
	}

	// A crash-looping release: rolled back, then migrate-down runs.
	in, log = inputs(c, "staging", write(map[string]string{"web": "crashloop"}, ""), v3)
	out, err = rollout.Run(t.Context(), in)
	if err == nil || out.Status != rollout.StatusRolledBack {
		t.Fatalf("crash-looping release: status %q, err %v\n%s", out.Status, err, log)
	}
	runs = hookRuns(t, c, ns)
	if len(runs["migrate-down"]) != 1 || runs["migrate-down"][0] != v3+" Complete" {
		t.Errorf("migrate-down runs %v, want one completed with the rolled-back release's image %s", runs["migrate-down"], v3)
	}
	if len(runs["migrate"]) != 3 {
		t.Errorf("migrate ran %d times, want 3 (each run its own Job)", len(runs["migrate"]))
	}
	if l := log.String(); strings.Index(l, "restoring revision") < 0 || strings.Index(l, "hook on-rollback: Job") < strings.Index(l, "restoring revision") {
		t.Errorf("migrate-down ran before the workloads were back:\n%s", l)
	}
	for n, img := range workloadImages(t, c, ns) {
		if img != v1 {
			t.Errorf("after the rollback %s runs %s, want %s", n, img, v1)
		}
	}
}

// TestAutoscaledReplicasKept: a Deployment a HorizontalPodAutoscaler
// targets keeps the replicas it runs across a deploy (the manifests say 3,
// the autoscaler made it 5); without an autoscaler the manifests win.
func TestAutoscaledReplicasKept(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	withHPA := func(hpa bool) string {
		b, err := os.ReadFile(app(t, ns, ""))
		if err != nil {
			t.Fatal(err)
		}
		y := string(b)
		if hpa {
			y += fmt.Sprintf(`---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api, namespace: %s}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 2
  maxReplicas: 8
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
`, ns)
		}
		p := filepath.Join(t.TempDir(), "app.yaml")
		os.WriteFile(p, []byte(y), 0o644)
		return p
	}
	scaleTo := func(n int32) {
		t.Helper()
		s, err := c.Clientset().AppsV1().Deployments(ns).GetScale(t.Context(), "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.Replicas = n
		if _, err := c.Clientset().AppsV1().Deployments(ns).UpdateScale(t.Context(), "api", s, metav1.UpdateOptions{FieldManager: "horizontal-pod-autoscaler-stand-in"}); err != nil {
			t.Fatal(err)
		}
	}
	replicas := func() int32 {
		t.Helper()
		d, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *d.Spec.Replicas
	}

	in, _ := inputs(c, "staging", withHPA(true), repo+"@"+digest("hpa-1"))
	deploy(t, in)
	scaleTo(5) // what the autoscaler would do under load (no metrics server here)
	in, log := inputs(c, "staging", withHPA(true), repo+"@"+digest("hpa-2"))
	deploy(t, in)
	if got := replicas(); got != 5 {
		t.Errorf("after a deploy the autoscaled Deployment has %d replicas, want the 5 it ran\n%s", got, log)
	}
	if !strings.Contains(log.String(), "HorizontalPodAutoscaler api manages its replicas: keeping the 5 it runs (the manifests say 3)") {
		t.Errorf("the log does not say why the replicas were kept:\n%s", log)
	}

	// Without an autoscaler (the HPA deleted), the manifests' 3 disagree
	// with the 5 another manager set: the apply stops and names it, and
	// nothing changes; force-conflicts takes the field over.
	if err := c.Clientset().AutoscalingV2().HorizontalPodAutoscalers(ns).Delete(t.Context(), "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	scaleTo(5)
	in, log = inputs(c, "staging", withHPA(false), repo+"@"+digest("hpa-3"))
	_, err := rollout.Run(t.Context(), in)
	var conflict *rollout.ConflictError
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), `.spec.replicas (managed by "horizontal-pod-autoscaler-stand-in")`) || !strings.Contains(err.Error(), `set input "force-conflicts" to true`) || !strings.Contains(err.Error(), "stopped before any workload changed") || strings.Contains(log.String(), "## Applying") {
		t.Fatalf("apply over another manager's replicas: %v, want the conflict named\n%s", err, log)
	}
	if got, img := replicas(), currentImage(t, c, ns); got != 5 || img != repo+"@"+digest("hpa-2") {
		t.Errorf("after the refused apply: %d replicas, image %s; want 5 and the hpa-2 image unchanged", got, img)
	}
	in, log = inputs(c, "staging", withHPA(false), repo+"@"+digest("hpa-3"))
	in.ForceConflicts = true
	deploy(t, in)
	if got := replicas(); got != 3 {
		t.Errorf("with force-conflicts the deploy left %d replicas, want the manifests' 3", got)
	}
	if !strings.Contains(log.String(), `taking over .spec.replicas (managed by "horizontal-pod-autoscaler-stand-in") (force-conflicts)`) {
		t.Errorf("the take-over was not warned about:\n%s", log)
	}
}

// TestCRDsBeforeCustomResources: a custom resource listed before its
// CustomResourceDefinition in the same manifests is applied after the CRD
// is established.
func TestCRDsBeforeCustomResources(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	group := ns + ".example.gantry.dev"
	b, err := os.ReadFile(app(t, ns, ""))
	if err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`apiVersion: %[1]s/v1
kind: Widget
metadata: {name: front-door}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.%[1]s}
spec:
  group: %[1]s
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
---
`, group) + string(b)
	p := filepath.Join(t.TempDir(), "release.yaml")
	os.WriteFile(p, []byte(y), 0o644)
	in, log := inputs(c, "staging", p, repo+"@"+digest("crd"))
	in.Namespace = ns // the Widget gets it: the CRD in the manifests says it is namespaced
	deploy(t, in)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	got, err := dyn.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(ns).Get(t.Context(), "front-door", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Widget was not applied: %v\n%s", err, log)
	}
	if size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); size != 3 {
		t.Errorf("Widget spec.size = %d, want 3", size)
	}
	if l := log.String(); strings.Index(l, "applied CustomResourceDefinition") < 0 || strings.Index(l, "applied CustomResourceDefinition") > strings.Index(l, "applied Widget") {
		t.Errorf("the CRD was not applied before the Widget:\n%s", l)
	}
}

// argoFront is an Argo Rollouts Rollout "front" for a rolling release:
// 2 pods, canary by replica count (setWeight 50, a 1 s pause, 100), with
// an optional kwok fault on its pods.
func argoFront(t *testing.T, ns, fault string) string {
	t.Helper()
	ann := ""
	if fault != "" {
		ann = fmt.Sprintf("\n      annotations:\n        %s: %s", k8stest.FaultAnnotation, fault)
	}
	y := fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: front, namespace: %[1]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: front}}
  template:
    metadata:
      labels: {app: front}%[2]s
    spec:
      containers: [{name: front, image: "%[3]s:latest"}]
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {duration: 1s}}, {setWeight: 100}]
`, ns, ann, repo)
	p := filepath.Join(t.TempDir(), "front.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRollingReleaseWithArgoRollout: an Argo Rollouts Rollout in a rolling
// release (the real controller) is rolled out with the other workloads,
// waited for until Healthy, fails fast when its new pods crash-loop, and
// goes back with the rest of the release.
func TestRollingReleaseWithArgoRollout(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	argorolloutstest.StartController(t, c, ns)
	v1, v2 := repo+"@"+digest("argo-rolling-1"), repo+"@"+digest("argo-rolling-2")
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	frontImage := func() string {
		u, err := dyn.Resource(argorollouts.RolloutGVR()).Namespace(ns).Get(t.Context(), "front", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		img, _, _ := unstructured.NestedString(cs[0].(map[string]any), "image")
		return img
	}

	in, log := inputs(c, "staging", manifestDir(t, release(t, ns, nil, false, 0), argoFront(t, ns, "")), v1)
	deploy(t, in)
	if !strings.Contains(log.String(), "Rollout "+ns+"/front: rolled out") || frontImage() != v1 {
		t.Fatalf("the Rollout was not rolled out with the release (image %s):\n%s", frontImage(), log)
	}

	in, log = inputs(c, "staging", manifestDir(t, release(t, ns, nil, false, 0), argoFront(t, ns, "crashloop")), v2)
	out, err := rollout.Run(t.Context(), in)
	if err == nil || out.Status != rollout.StatusRolledBack || !strings.Contains(err.Error(), "Rollout "+ns+"/front: CrashLoopBackOff in pod front-") {
		t.Fatalf("crash-looping Rollout: status %q, %v\n%s", out.Status, err, log)
	}
	if img := frontImage(); img != v1 {
		t.Errorf("after the rollback the Rollout runs %s, want %s", img, v1)
	}
	for n, img := range workloadImages(t, c, ns) {
		if img != v1 {
			t.Errorf("after the rollback %s runs %s, want %s", n, img, v1)
		}
	}
	st, err := argorollouts.New(dyn, ns, "front").Status(t.Context())
	if err != nil || st.Phase != argorollouts.PhaseHealthy {
		t.Errorf("the Rollout after the rollback: %s (%s), %v", st.Phase, st.Message, err)
	}
	if !strings.Contains(out.Summary, "Rollout "+ns+"/front: rolled back to its previous pod template") {
		t.Errorf("summary lacks the Rollout's rollback:\n%s", out.Summary)
	}
}
