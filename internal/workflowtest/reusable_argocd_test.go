package workflowtest_test

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/argocdtest"
	"github.com/gantry-ci/gantry/internal/gittest"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// argoConfigFiles is a config repository as docs/gitops.md's guide keeps
// it: one Kustomize overlay per environment, whose images entry Gantry
// owns.
func argoConfigFiles(envs ...string) map[string]string {
	files := map[string]string{"README.md": "config repository\n"}
	for _, env := range envs {
		files["envs/"+env+"/kustomization.yaml"] = `# ` + env + ` overlay: the image is set by the pipeline
resources:
  - deployment.yaml
images:
  - name: ghcr.io/acme/shop
    newTag: "0.9" # before Gantry
`
		files["envs/"+env+"/deployment.yaml"] = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
        - name: shop
          image: ghcr.io/acme/shop
`
	}
	return files
}

// TestReusableDeployArgoCD runs .github/workflows/deploy.yml with target
// argocd through the caller testdata/workflows/reusable-deploy-argocd.yml
// with act: the guide's GitOps flow (docs/gitops.md), against a real Argo
// CD (internal/argocdtest) on the control plane and a real Git host
// (git http-backend with a token) for the config repository.
//
//   - staging: Application shop-staging syncs automatically; the job
//     reaches it through the Kubernetes API with the kubeconfig secret.
//   - production: Application shop-production syncs manually; the job
//     needs staging, reaches it through the Argo CD API (argocd-url and
//     the argocd-token secret) and syncs it (sync: true). No strategy
//     input: the workflow resolves rolling for production too.
//
// Each job commits the digest into its environment's overlay of the one
// config repository and ends when its Application runs that commit; both
// Deployments then run the image by digest.
func TestReusableDeployArgoCD(t *testing.T) {
	t.Parallel()
	const token = "config-repo-act-t0ken-5150"
	act := workflowtest.New(t)
	c := k8stest.Start(t)
	argo := argocdtest.Start(t, c)
	srv := gittest.Start(t, token)
	repo := srv.NewRepo(t, "shop-config", argoConfigFiles("staging", "production"))
	initial := repo.Head("main")
	argo.AddRepositoryCredentials(t, repo.URL, "x-access-token", token)
	stagingNS, productionNS := c.Namespace(t), c.Namespace(t)
	argo.CreateApplication(t, "shop-staging", repo.URL, "envs/staging", stagingNS, true)
	argo.CreateApplication(t, "shop-production", repo.URL, "envs/production", productionNS, false)
	// Staging runs the config repository's tag before Gantry's first
	// promotion, as in the guide.
	argo.WaitApplication(t, "shop-staging", 2*time.Minute, argocdtest.SyncedHealthy(initial))

	digest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("reusable-deploy-argocd")))
	image := "ghcr.io/acme/shop@" + digest
	result := t.TempDir()
	wf := renderCaller(t, act.Repo, "reusable-deploy-argocd.yml", map[string]string{
		"IMAGE":          image,
		"GITOPS_TOKEN":   token,
		"KUBECONFIG":     c.Kubeconfig,
		"ARGOCD_URL":     argo.APIURL,
		"ARGOCD_TOKEN":   "not-checked-auth-is-off",
		"STAGING_APP":    "shop-staging",
		"PRODUCTION_APP": "shop-production",
		"RESULT":         result,
	})
	start := time.Now()
	log, err := runReusable(t.Context(), t, act, wf, nil)
	t.Logf("act ran the workflow in %v", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	out := readOutputs(t, filepath.Join(result, "outputs"), log)
	for _, env := range []string{"staging", "production"} {
		if out[env+"-status"] != "success" || out[env+"-digest"] != digest || out[env+"-revision"] == "" {
			t.Errorf("%s outputs: status %q, digest %q, revision %q; want success, %s and Argo CD's history id (all: %v)\n%s",
				env, out[env+"-status"], out[env+"-digest"], out[env+"-revision"], digest, out, log)
		}
		if !strings.Contains(log, "strategy rolling for "+env) {
			t.Errorf("the log does not show the strategy for %s resolved to rolling (target argocd)", env)
		}
	}

	// The config repository: two promotion commits on top of the initial
	// one, staging's first, each touching its own overlay only; they are
	// the jobs' gitops-commit outputs.
	commits := repo.Log("main", "%H")
	if len(commits) != 3 || commits[2] != initial {
		t.Fatalf("config repository history %v, want the initial commit %s and two promotions\n%s", commits, initial, repo.Git("log", "--stat", "main"))
	}
	for i, env := range []string{"production", "staging"} {
		commit := commits[i]
		if out[env+"-gitops-commit"] != commit {
			t.Errorf("%s gitops-commit output %q, want the promotion %s", env, out[env+"-gitops-commit"], commit)
		}
		files := strings.Fields(repo.Git("show", "--name-only", "--format=", commit))
		if len(files) != 1 || files[0] != "envs/"+env+"/kustomization.yaml" {
			t.Errorf("the %s promotion %s changed %v, want envs/%s/kustomization.yaml only", env, commit, files, env)
		}
		msg := repo.Git("log", "-1", "--format=%B", commit)
		if !strings.Contains(msg, image) || !strings.Contains(msg, "Gantry-Environment: "+env) {
			t.Errorf("the %s promotion's message does not name the image and environment:\n%s", env, msg)
		}
		kust := repo.Show("main", "envs/"+env+"/kustomization.yaml")
		if !strings.Contains(kust, "digest: "+digest) || strings.Contains(kust, "newTag") {
			t.Errorf("envs/%s/kustomization.yaml after the promotion:\n%s", env, kust)
		}
	}

	// Argo CD runs the promotions: both Applications Synced and Healthy
	// (staging, auto-sync, may have moved on to production's commit, which
	// leaves its overlay as it is), both Deployments run the image by digest.
	if s := argocdtest.StatusOf(argo.Application(t, "shop-production").Object); !argocdtest.SyncedHealthy(commits[0])(s) {
		t.Errorf("Application shop-production: %s, want Synced and Healthy at %s", s, commits[0])
	}
	if s := argocdtest.StatusOf(argo.Application(t, "shop-staging").Object); !argocdtest.SyncedHealthy("")(s) || (s.Revision != commits[0] && s.Revision != commits[1]) {
		t.Errorf("Application shop-staging: %s, want Synced and Healthy at %s or %s", s, commits[1], commits[0])
	}
	for env, ns := range map[string]string{"staging": stagingNS, "production": productionNS} {
		d, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "shop", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != image {
			t.Errorf("%s's Deployment runs %s, want %s", env, img, image)
		}
	}

	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, token) && !strings.Contains(line, "add-mask") {
			t.Errorf("the config repository's token appears in the workflow log: %s", line)
		}
	}
}
