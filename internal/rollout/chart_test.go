package rollout_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	helmrelease "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/rollout"
)

// TestHelmChartRelease deploys the test chart (internal/manifests'
// testdata: API, web and worker Deployments, a vendored subchart, an HPA
// only where autoscaling/v2 is served, helm hooks) on the real control
// plane: values file and set lines land, the image goes in by digest
// through image-values, the capabilities are the cluster's, the chart's
// hooks run as Gantry hooks (pre-install on the first deploy, pre-upgrade
// backup then migrate on the next), and a failing release rolls back as
// one, running the chart's pre-rollback Job.
func TestHelmChartRelease(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	chart, err := filepath.Abs(filepath.Join("..", "manifests", "testdata", "charts", "app"))
	if err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(chart, "..", "values", "staging.yaml")
	v1, v2, v3 := repo+"@"+digest("chart-1"), repo+"@"+digest("chart-2"), repo+"@"+digest("chart-3")
	run := func(img string, set ...string) (rollout.Outputs, *logger, error) {
		in, log := inputs(c, "staging", "", img)
		in.Chart, in.Namespace, in.ReleaseName, in.HelmRelease = chart, ns, "shop", true
		in.Values, in.Set = []string{values}, set
		in.ImageValues = []string{"image.repository=repository", "image.digest=digest"}
		out, err := rollout.Run(t.Context(), in)
		return out, log, err
	}
	apps := c.Clientset().AppsV1()

	out, log, err := run(v1, "web.replicas=2")
	if err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("first deploy of the chart: %q %v\n%s", out.Status, err, log)
	}
	for name, replicas := range map[string]int32{"shop-api": 3, "shop-web": 2, "shop-worker": 1} {
		d, err := apps.Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if *d.Spec.Replicas != replicas || d.Spec.Template.Spec.Containers[0].Image != v1 {
			t.Errorf("%s: %d replicas running %s, want %d running %s", name, *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image, replicas, v1)
		}
	}
	if _, err := apps.Deployments(ns).Get(t.Context(), "shop-fixture-redis", metav1.GetOptions{}); err != nil {
		t.Errorf("the vendored subchart's Deployment: %v", err)
	}
	if _, err := c.Clientset().AutoscalingV2().HorizontalPodAutoscalers(ns).Get(t.Context(), "shop-api", metav1.GetOptions{}); err != nil {
		t.Errorf("the HPA the chart renders where autoscaling/v2 is served: %v", err)
	}
	cm, err := c.Clientset().CoreV1().ConfigMaps(ns).Get(t.Context(), "shop-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := c.Clientset().Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["LOG_LEVEL"] != "debug" || cm.Data["IS_UPGRADE"] != "false" || cm.Data["KUBE_VERSION"] != sv.GitVersion {
		t.Errorf("shop-config %v, want LOG_LEVEL debug (values file), IS_UPGRADE false, KUBE_VERSION %s (the cluster's)", cm.Data, sv.GitVersion)
	}
	runs := hookRuns(t, c, ns)
	if len(runs["shop-migrate"]) != 1 || runs["shop-migrate"][0] != v1+" Complete" || len(runs["shop-backup"]) != 0 || len(runs["shop-smoke"]) != 1 {
		t.Errorf("hooks after the install: %v, want migrate and smoke once, no backup (pre-upgrade only)", runs)
	}
	if _, err := c.Clientset().CoreV1().Pods(ns).Get(t.Context(), "shop-test-connection", metav1.GetOptions{}); err == nil {
		t.Error("the chart's helm test Pod was created")
	}
	if !strings.Contains(log.String(), "not run by gantry-deploy: helm test hook Pod shop-test-connection") {
		t.Errorf("the log does not say the test hook is not run:\n%s", log)
	}

	// An upgrade: backup (weight -5) before migrate, IsUpgrade true.
	out, log, err = run(v2)
	if err != nil {
		t.Fatalf("upgrade: %v\n%s", err, log)
	}
	runs = hookRuns(t, c, ns)
	if len(runs["shop-backup"]) != 1 || runs["shop-backup"][0] != v2+" Complete" || len(runs["shop-migrate"]) != 2 {
		t.Errorf("hooks after the upgrade: %v", runs)
	}
	if l := log.String(); strings.Index(l, "Job "+ns+"/shop-backup-") > strings.Index(l, "Job "+ns+"/shop-migrate-") {
		t.Errorf("backup did not run before migrate:\n%s", l)
	}
	if cm, _ := c.Clientset().CoreV1().ConfigMaps(ns).Get(t.Context(), "shop-config", metav1.GetOptions{}); cm.Data["IS_UPGRADE"] != "true" {
		t.Errorf("after the upgrade IS_UPGRADE is %q", cm.Data["IS_UPGRADE"])
	}

	// A failing release (the worker crash-loops: a kwok fault on its pods
	// through the chart's values) is rolled back as one and the chart's
	// pre-rollback Job runs.
	crash := filepath.Join(t.TempDir(), "crash.yaml")
	if err := os.WriteFile(crash, []byte("worker:\n  podAnnotations:\n    "+k8stest.FaultAnnotation+": crashloop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in, log := inputs(c, "staging", "", v3)
	in.Chart, in.Namespace, in.ReleaseName, in.HelmRelease = chart, ns, "shop", true
	in.Values = []string{values, crash}
	in.ImageValues = []string{"image.repository=repository", "image.digest=digest"}
	out, err = rollout.Run(t.Context(), in)
	if err == nil || out.Status != rollout.StatusRolledBack {
		t.Fatalf("failing upgrade: %q %v\n%s", out.Status, err, log)
	}
	if runs := hookRuns(t, c, ns); len(runs["shop-migrate-down"]) != 1 {
		t.Errorf("the chart's pre-rollback Job ran %d times, want once: %v", len(runs["shop-migrate-down"]), runs)
	}
	d, err := apps.Deployments(ns).Get(t.Context(), "shop-api", metav1.GetOptions{})
	if err != nil || d.Spec.Template.Spec.Containers[0].Image != v2 {
		t.Errorf("after the rollback shop-api runs %v (%v), want %s", d.Spec.Template.Spec.Containers[0].Image, err, v2)
	}

	// helm-release: what helm history reads (helm's Secret storage).
	helmHistory := func() string {
		t.Helper()
		rels, err := storage.Init(driver.NewSecrets(c.Clientset().CoreV1().Secrets(ns))).History("shop")
		if err != nil {
			t.Fatal(err)
		}
		byVersion := map[int]string{}
		for _, r := range rels {
			rel := r.(*helmrelease.Release)
			byVersion[rel.Version] = fmt.Sprintf("%d %s %s", rel.Version, rel.Info.Status, rel.Chart.Metadata.Version)
			if rel.Version == 2 && !strings.Contains(rel.Manifest, "# Source: app/templates/api.yaml") {
				t.Errorf("helm revision 2's manifest lacks api.yaml:\n%s", rel.Manifest)
			}
		}
		var out []string
		for v := 1; v <= len(byVersion); v++ {
			out = append(out, byVersion[v])
		}
		return strings.Join(out, "; ")
	}
	if h := helmHistory(); h != "1 superseded 0.1.0; 2 deployed 0.1.0; 3 failed 0.1.0" {
		t.Errorf("helm history %q", h)
	}
	if !strings.Contains(out.Summary, "| chart | app-0.1.0 as release shop |") {
		t.Errorf("summary lacks the chart:\n%s", out.Summary)
	}
	// A rollback of the whole release to release 1 is helm's "Rollback to 1".
	in, log = inputs(c, "staging", "", "")
	in.Action, in.Namespace, in.RollbackTo = "rollback", ns, "revision:1"
	if out, err := rollout.Run(t.Context(), in); err != nil || out.Digest != digest("chart-1") {
		t.Fatalf("rollback to release 1: %+v %v\n%s", out, err, log)
	}
	if h := helmHistory(); h != "1 superseded 0.1.0; 2 superseded 0.1.0; 3 failed 0.1.0; 4 deployed 0.1.0" {
		t.Errorf("helm history after the rollback %q", h)
	}
}
