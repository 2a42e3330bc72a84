package argocdtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/argocdtest"
	"github.com/gantry-ci/gantry/internal/gittest"
	"github.com/gantry-ci/gantry/internal/k8stest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

const image = "registry.example/web"

// digest is a made-up sha256 digest: kwok runs no container, so no image
// is pulled.
func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// kustomizeApp is a Kustomize directory as Gantry's GitOps mode writes it:
// a Deployment and an images: entry pinning it to a digest.
func kustomizeApp(d string) map[string]string {
	return map[string]string{
		"deploy/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- deployment.yaml
images:
- name: ` + image + `
  digest: ` + d + `
`,
		"deploy/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      nodeSelector: {type: kwok}
      containers:
      - name: web
        image: ` + image + `:latest
`,
	}
}

// waitDeployment waits until Deployment web in ns runs want with every
// replica ready and updated.
func waitDeployment(t *testing.T, c *k8stest.Cluster, ns, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		d, err := c.Clientset().AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err == nil {
			got := d.Spec.Template.Spec.Containers[0].Image
			last = fmt.Sprintf("image %s, %d/%d ready, %d updated", got, d.Status.ReadyReplicas, *d.Spec.Replicas, d.Status.UpdatedReplicas)
			if got == want && d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == *d.Spec.Replicas &&
				d.Status.UpdatedReplicas == *d.Spec.Replicas && d.Status.Replicas == *d.Spec.Replicas {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("Deployment %s/web: want image %s rolled out; last: %s", ns, want, last)
}

// A Kustomize app syncs by itself; a pushed digest change is rolled out
// after a hard refresh; the REST API reports what the cluster's object says.
func TestKustomizeAppFollowsPushedDigest(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	a := argocdtest.Start(t, c)
	ns := c.Namespace(t)
	repo := gittest.Start(t, "").NewRepo(t, "deploy", kustomizeApp(digest(1)))

	began := time.Now()
	a.CreateApplication(t, "kustomize-digest", repo.URL, "deploy", ns, true)
	st := a.WaitApplication(t, "kustomize-digest", 2*time.Minute, argocdtest.SyncedHealthy(repo.Head("main")))
	t.Logf("first sync: %s after %v", st, time.Since(began).Round(time.Millisecond))
	waitDeployment(t, c, ns, image+"@"+digest(1))

	began = time.Now()
	rev := repo.Commit("web: new digest", map[string]string{"deploy/kustomization.yaml": kustomizeApp(digest(2))["deploy/kustomization.yaml"]})
	a.Refresh(t, "kustomize-digest", true)
	st = a.WaitApplication(t, "kustomize-digest", 2*time.Minute, argocdtest.SyncedHealthy(rev))
	t.Logf("after push + hard refresh: %s after %v", st, time.Since(began).Round(time.Millisecond))
	waitDeployment(t, c, ns, image+"@"+digest(2))

	api := argocdtest.StatusOf(a.APIApplication(t, "kustomize-digest"))
	if api.Sync != "Synced" || api.Health != "Healthy" || api.Revision != rev {
		t.Errorf("GET /api/v1/applications/kustomize-digest: %s; want Synced, Healthy, revision %s", api, rev)
	}
	if cl := argocdtest.StatusOf(a.Application(t, "kustomize-digest").Object); cl.Sync != api.Sync || cl.Health != api.Health || cl.Revision != api.Revision {
		t.Errorf("the API server says %s, the cluster's Application %s", api, cl)
	}
}

// A token-protected repository: without credentials Argo CD cannot read
// it; with a repository Secret it syncs.
func TestPrivateRepositoryNeedsCredentials(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	a := argocdtest.Start(t, c)
	ns := c.Namespace(t)
	const token = "s3cret-token"
	repo := gittest.Start(t, token).NewRepo(t, "private", kustomizeApp(digest(7)))

	a.CreateApplication(t, "private-repo", repo.URL, "deploy", ns, true)
	st := a.WaitApplication(t, "private-repo", time.Minute, func(s argocdtest.Status) bool {
		c := strings.Join(s.Conditions, " ")
		return strings.Contains(c, "ComparisonError") && strings.Contains(c, "authentication required")
	})
	t.Logf("without credentials: %s", st)

	a.AddRepositoryCredentials(t, repo.URL, "x-access-token", token)
	a.Refresh(t, "private-repo", true)
	st = a.WaitApplication(t, "private-repo", 2*time.Minute, argocdtest.SyncedHealthy(repo.Head("main")))
	t.Logf("with credentials: %s", st)
	waitDeployment(t, c, ns, image+"@"+digest(7))
}
