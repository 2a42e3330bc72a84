package rollout_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/rollout"
)

// configMaps writes ConfigMaps named names into ns, as a manifest file.
func configMaps(t *testing.T, ns string, names ...string) string {
	t.Helper()
	var docs []string
	for _, n := range names {
		docs = append(docs, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: %s}\ndata: {owner: gantry-test}\n", n, ns))
	}
	p := filepath.Join(t.TempDir(), "configmaps.yaml")
	if err := os.WriteFile(p, []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// manifestDir puts manifest files into one directory.
func manifestDir(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.yaml", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// history reads the environment's release records as a user would with
// kubectl get configmaps -l gantry.dev/release-of=<env>: revision → status
// and description.
func history(t *testing.T, c *k8stest.Cluster, ns, env string) map[string]string {
	t.Helper()
	list, err := c.Clientset().CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: rollout.LabelReleaseOf + "=" + env})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, cm := range list.Items {
		var r rollout.Release
		if err := json.Unmarshal([]byte(cm.Data["release.json"]), &r); err != nil {
			t.Fatalf("%s: %v", cm.Name, err)
		}
		if cm.Name != fmt.Sprintf("gantry-release-%s.v%d", env, r.Revision) || cm.Labels[rollout.LabelReleaseStatus] != r.Status {
			t.Errorf("ConfigMap %s labelled %v holds release %d (%s)", cm.Name, cm.Labels, r.Revision, r.Status)
		}
		out[fmt.Sprint(r.Revision)] = r.Status + ": " + r.Description
	}
	return out
}

func configMapExists(t *testing.T, c *k8stest.Cluster, ns, name string) bool {
	t.Helper()
	_, err := c.Clientset().CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestReleaseHistoryRollback: each deploy is recorded; a manual rollback
// with nothing but the namespace returns every workload of the release at
// once (and removes what the left release added), runs the left release's
// on-rollback hook, is recorded itself, and failed releases are never a
// rollback target.
func TestReleaseHistoryRollback(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	v1, v2, v3 := repo+"@"+digest("history-1"), repo+"@"+digest("history-2"), repo+"@"+digest("history-3")

	in, _ := inputs(c, "staging", manifestDir(t, release(t, ns, nil, false, 0), configMaps(t, ns, "settings")), v1)
	deploy(t, in)
	// v2 adds a DaemonSet, a ConfigMap, and the migration hooks.
	in, _ = inputs(c, "staging", manifestDir(t, release(t, ns, nil, true, 0), configMaps(t, ns, "settings", "feature-flags"), hookJobs(t, ns, "")), v2)
	out := deploy(t, in)
	if !strings.Contains(out.Summary, "| release | 2 (deployed): ConfigMap `gantry-release-staging.v2` |") || !strings.Contains(out.Summary, "rollback-to `revision:2`") {
		t.Errorf("summary of release 2 lacks its record:\n%s", out.Summary)
	}
	// v3 crash-loops: rolled back automatically, recorded as such.
	in, log := inputs(c, "staging", manifestDir(t, release(t, ns, map[string]string{"api": "crashloop"}, true, 0), configMaps(t, ns, "settings", "feature-flags")), v3)
	if out, err := rollout.Run(t.Context(), in); err == nil || out.Status != rollout.StatusRolledBack {
		t.Fatalf("crash-looping v3: status %q, %v\n%s", out.Status, err, log)
	}
	h := history(t, c, ns, "staging")
	if !strings.HasPrefix(h["1"], "superseded: deployed "+v1) || !strings.HasPrefix(h["2"], "deployed: deployed "+v2) || !strings.HasPrefix(h["3"], "rolled-back: deploy of "+v3+" failed") || len(h) != 3 {
		t.Fatalf("history after three deploys: %v", h)
	}

	// A failed release is not a target.
	in, _ = inputs(c, "staging", "", "")
	in.Action, in.Namespace, in.RollbackTo = "rollback", ns, "revision:3"
	if _, err := rollout.Run(t.Context(), in); err == nil || !strings.Contains(err.Error(), "release 3 (rolled-back") || !strings.Contains(err.Error(), "pick a release that was deployed") {
		t.Errorf("rollback to the failed release 3: %v", err)
	}

	// previous: back to release 1, every workload, by the namespace alone.
	in, log = inputs(c, "staging", "", "")
	in.Action, in.Namespace, in.RollbackTo = "rollback", ns, "previous"
	out, err := rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusRolledBack || out.Digest != digest("history-1") || out.PreviousDigest != digest("history-2") {
		t.Fatalf("rollback to previous: status %q digest %s previous %s, %v\n%s", out.Status, out.Digest, out.PreviousDigest, err, log)
	}
	got := workloadImages(t, c, ns)
	for _, n := range []string{"api", "worker", "web"} {
		if got[n] != v1 {
			t.Errorf("after the rollback %s runs %s, want %s", n, got[n], v1)
		}
	}
	if _, ok := got["agent"]; ok {
		t.Errorf("the DaemonSet release 2 added is still there after rolling back to release 1")
	}
	if configMapExists(t, c, ns, "feature-flags") || !configMapExists(t, c, ns, "settings") {
		t.Errorf("after the rollback: ConfigMap feature-flags (release 2 only) exists %v, settings exists %v", configMapExists(t, c, ns, "feature-flags"), configMapExists(t, c, ns, "settings"))
	}
	if runs := hookRuns(t, c, ns); len(runs["migrate-down"]) != 1 || runs["migrate-down"][0] != v2+" Complete" {
		t.Errorf("migrate-down runs %v, want one completed with the left release's image %s", runs["migrate-down"], v2)
	}
	if l := log.String(); strings.Index(l, "hook on-rollback: Job") < strings.Index(l, "## Waiting for the rollout") {
		t.Errorf("the on-rollback hook ran before the workloads were back:\n%s", l)
	}
	for _, want := range []string{"| release | 4 (deployed), a rollback to release 1", "ConfigMap " + ns + "/feature-flags: pruned", "DaemonSet " + ns + "/agent: pruned"} {
		if !strings.Contains(out.Summary, want) {
			t.Errorf("rollback summary lacks %q:\n%s", want, out.Summary)
		}
	}
	h = history(t, c, ns, "staging")
	if !strings.HasPrefix(h["4"], "deployed: rolled back to release 1") || !strings.HasPrefix(h["2"], "superseded:") {
		t.Errorf("history after the rollback: %v", h)
	}
	api, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := api.Annotations[rollout.AnnotationRollbackReason]; !strings.Contains(r, "manual rollback (previous) to release 1") {
		t.Errorf("api's rollback reason %q", r)
	}

	// digest: forward again to release 2's image, its DaemonSet back.
	in, log = inputs(c, "staging", "", "")
	in.Action, in.Namespace, in.RollbackTo = "rollback", ns, "digest:"+digest("history-2")
	if out, err := rollout.Run(t.Context(), in); err != nil || out.Digest != digest("history-2") {
		t.Fatalf("rollback to digest v2: %+v %v\n%s", out, err, log)
	}
	if got := workloadImages(t, c, ns); got["api"] != v2 || got["agent"] != v2 {
		t.Errorf("after rolling back to release 2's digest: %v", got)
	}
	if h := history(t, c, ns, "staging"); !strings.HasPrefix(h["5"], "deployed: rolled back to release 2") || !strings.HasPrefix(h["4"], "superseded:") {
		t.Errorf("history: %v", h)
	}

	// The history keeps release-history records, never dropping the deployed one.
	for i := range 3 {
		in, _ = inputs(c, "staging", manifestDir(t, release(t, ns, nil, true, 0)), repo+"@"+digest(fmt.Sprint("history-more-", i)))
		in.ReleaseHistory = 3
		deploy(t, in)
	}
	if h := history(t, c, ns, "staging"); len(h) != 3 || !strings.HasPrefix(h["8"], "deployed:") || h["6"] == "" {
		t.Errorf("history with release-history 3: %v", h)
	}
}

// TestPrune: what the deployed release applied and the new manifests drop
// is listed by the plan and deleted after the rollout succeeded; what
// another tool recreated is kept; prune: false keeps everything.
func TestPrune(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	v1, v2, v3 := repo+"@"+digest("prune-1"), repo+"@"+digest("prune-2"), repo+"@"+digest("prune-3")
	workloads := release(t, ns, nil, false, 0)

	in, _ := inputs(c, "staging", manifestDir(t, workloads, configMaps(t, ns, "keep", "drop", "recreated", "stays")), v1)
	deploy(t, in)
	// Another tool recreates "recreated": no longer Gantry's.
	cms := c.Clientset().CoreV1().ConfigMaps(ns)
	if err := cms.Delete(t.Context(), "recreated", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "recreated", Namespace: ns}}, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatal(err)
	}

	next := manifestDir(t, workloads, configMaps(t, ns, "keep", "stays"))
	plan, _ := inputs(c, "staging", next, v2)
	plan.Action = "plan"
	pout := deploy(t, plan)
	actions := map[string]string{}
	for _, it := range pout.Plan.Items {
		if it.Kind == "ConfigMap" {
			actions[it.Name] = it.Action
		}
	}
	if actions["drop"] != "delete" || actions["recreated"] != "keep" || actions["keep"] != "unchanged" {
		t.Errorf("plan for ConfigMaps: %v, want drop delete, recreated keep, keep unchanged", actions)
	}
	if !strings.Contains(pout.Summary, "| delete | ConfigMap | "+ns+"/drop | pruned: in release 1") {
		t.Errorf("plan summary lacks the deletion:\n%s", pout.Summary)
	}
	if !configMapExists(t, c, ns, "drop") {
		t.Fatal("the plan deleted ConfigMap drop")
	}

	in, log := inputs(c, "staging", next, v2)
	out := deploy(t, in)
	if configMapExists(t, c, ns, "drop") || !configMapExists(t, c, ns, "recreated") || !configMapExists(t, c, ns, "keep") {
		t.Errorf("after the deploy: drop exists %v (want pruned), recreated exists %v, keep exists %v\n%s", configMapExists(t, c, ns, "drop"), configMapExists(t, c, ns, "recreated"), configMapExists(t, c, ns, "keep"), log)
	}
	for _, want := range []string{"ConfigMap " + ns + "/drop: pruned", "ConfigMap " + ns + "/recreated: kept (no longer applied by gantry)"} {
		if !strings.Contains(out.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, out.Summary)
		}
	}

	// prune: false keeps what the manifests drop.
	in, _ = inputs(c, "staging", manifestDir(t, workloads, configMaps(t, ns, "keep")), v3)
	in.Prune = false
	deploy(t, in)
	if !configMapExists(t, c, ns, "stays") {
		t.Error("prune: false deleted ConfigMap stays")
	}
}
