package workflowtest_test

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

// TestDeployActionInAWorkflow runs testdata/workflows/deploy-action.yml with
// act against a real control plane: plan, deploy, an automatic rollback of a
// crash-looping release (the step fails), and a manual rollback.
func TestDeployActionInAWorkflow(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	dir := t.TempDir()
	manifest := func(name, fault string) string {
		ann := ""
		if fault != "" {
			ann = "\n      annotations: {" + k8stest.FaultAnnotation + ": " + fault + "}"
		}
		p := filepath.Join(dir, name+".yaml")
		os.WriteFile(p, []byte(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata:
      labels: {app: api}%s
    spec:
      containers: [{name: api, image: "ghcr.io/acme/api:latest"}]
`, ns, ann)), 0o644)
		return p
	}
	digest := func(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }
	v1, v2 := "ghcr.io/acme/api@"+digest("v1"), "ghcr.io/acme/api@"+digest("v2")
	result := t.TempDir()
	log, err := act.Run(t.Context(), "push", "testdata/workflows/deploy-action.yml", map[string]string{
		"KUBECONFIG_FILE": c.Kubeconfig,
		"GOOD":            manifest("good", ""),
		"BAD":             manifest("bad", k8stest.FaultCrashLoop),
		"IMAGE_V1":        v1,
		"IMAGE_V2":        v2,
		"IMAGE_V3":        "ghcr.io/acme/api@" + digest("v3"),
		"DIGEST_V1":       digest("v1"),
		"RESULT":          result,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	f, err := os.Open(filepath.Join(result, "outcomes"))
	if err != nil {
		t.Fatalf("no outcomes: %v\n%s", err, log)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		got[k] = v
	}
	want := map[string]string{
		"plan": "planned", "v1": "success", "v1-revision": "1",
		"v2": "rolled-back", "v2-outcome": "failure", "v2-previous": digest("v1"),
		"rollback": "rolled-back", "rollback-digest": digest("v1"),
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if !strings.Contains(log, "CrashLoopBackOff") {
		t.Errorf("the workflow log does not name the failure reason")
	}
	d, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != v1 {
		t.Errorf("after the workflow the Deployment runs %s, want %s", img, v1)
	}
	if _, err := os.Stat(filepath.Join(result, "plan.json")); err != nil {
		t.Errorf("plan-file not written: %v", err)
	}
}
