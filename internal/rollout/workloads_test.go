package rollout_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
