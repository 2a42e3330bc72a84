package rollout_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/argocdtest"
	"github.com/gantry-ci/gantry/internal/gittest"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/metadata"
	"github.com/gantry-ci/gantry/internal/rollout"
)

// The tests of target argocd run the real thing on both sides: the config
// repository is a bare Git repository served by git's own http-backend
// (with a token), and Argo CD v3.6.2 (repo-server, application
// controller, API server, Redis) syncs it to the kwok control plane.

const gitopsToken = "config-repo-t0ken"

// configRepo is an environment overlay as teams keep it: a Deployment and
// a kustomization whose images entry Gantry owns.
func configRepo(t *testing.T, srv *gittest.Server, name, env string) *gittest.Repo {
	t.Helper()
	return srv.NewRepo(t, name, map[string]string{
		"envs/" + env + "/kustomization.yaml": `# ` + env + ` overlay: the image is set by the pipeline
resources:
  - deployment.yaml
images:
  - name: ghcr.io/acme/shop
    newTag: "0.9" # before Gantry
`,
		"envs/" + env + "/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 2
  progressDeadlineSeconds: 8
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
        - name: shop
          image: ghcr.io/acme/shop
`,
		"README.md": "config repository\n",
	})
}

func gitopsInputs(c *k8stest.Cluster, env, app, image string) (rollout.Inputs, *logger) {
	log := &logger{}
	return rollout.Inputs{
		Environment: env, Image: image, Target: rollout.TargetArgoCD,
		Strategy: "rolling", Action: "deploy", RollbackTo: "previous", AutoRollback: true, Lock: "wait", Prune: true, ReleaseHistory: 10,
		Promote: "push", MergeMethod: "squash",
		ArgoCDApplication: app, ArgoCDNamespace: argocdtest.Namespace, KustomizeImage: "ghcr.io/acme/shop",
		GitOpsToken: gitopsToken,
		Timeout:     2 * time.Minute,
		RESTConfig:  c.RESTConfig(), Log: log, Poll: 300 * time.Millisecond,
		Git: metadata.Context{Repository: "acme/shop", SHA: "9d8c7b6a5f4e3d2c1b0a99887766554433221100", RunURL: "https://github.com/acme/shop/actions/runs/77"},
	}, log
}

// runningImage is the image of the shop Deployment's pod template, and
// whether the Deployment has all its replicas updated and ready.
func runningImage(t *testing.T, c *k8stest.Cluster, ns string) (string, bool) {
	t.Helper()
	d, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading Deployment shop: %v", err)
	}
	ready := d.Status.UpdatedReplicas == *d.Spec.Replicas && d.Status.ReadyReplicas == *d.Spec.Replicas && d.Status.ObservedGeneration >= d.Generation
	return d.Spec.Template.Spec.Containers[0].Image, ready
}

// TestGitOpsStaging is the guide's staging: an auto-sync Application
// reached through the Kubernetes API. A deploy commits the digest and ends
// when Argo CD runs it; the same digest again commits nothing; a digest
// whose pods crash is reverted in Git automatically; rollback previous and
// revision:N (Argo CD's history) are revert commits too.
func TestGitOpsStaging(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	argo := argocdtest.Start(t, c)
	srv := gittest.Start(t, gitopsToken)
	repo := configRepo(t, srv, "shop-config", "staging")
	argo.AddRepositoryCredentials(t, repo.URL, "x-access-token", gitopsToken)
	ns := c.Namespace(t)
	argo.CreateApplication(t, "shop-staging", repo.URL, "envs/staging", ns, true)
	argo.WaitApplication(t, "shop-staging", 2*time.Minute, argocdtest.SyncedHealthy(repo.Head("main")))

	good := "ghcr.io/acme/shop@" + digest("good")
	in, log := gitopsInputs(c, "staging", "shop-staging", good)
	out, err := rollout.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, log)
	}
	head := repo.Head("main")
	if out.Status != rollout.StatusSuccess || out.GitOpsCommit != head || out.Digest != digest("good") || out.Revision == "" {
		t.Fatalf("deploy: status %s, commit %s (head %s), digest %s, revision %q\n%s", out.Status, out.GitOpsCommit, head, out.Digest, out.Revision, log)
	}
	if img, ready := runningImage(t, c, ns); img != good || !ready {
		t.Fatalf("after the deploy the Deployment runs %s (all ready: %v), want %s", img, ready, good)
	}
	kust := repo.Show("main", "envs/staging/kustomization.yaml")
	if !strings.Contains(kust, "digest: "+digest("good")) || strings.Contains(kust, "newTag") || !strings.Contains(kust, "# staging overlay: the image is set by the pipeline") {
		t.Errorf("kustomization after the promotion:\n%s", kust)
	}
	msg := repo.Git("log", "-1", "--format=%B", "main")
	for _, want := range []string{good, "9d8c7b6a5f4e3d2c1b0a99887766554433221100", "https://github.com/acme/shop/actions/runs/77", "Gantry-Environment: staging"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the promotion's message does not name %q:\n%s", want, msg)
		}
	}
	if !strings.Contains(out.Summary, "shop-staging") || !strings.Contains(out.Summary, "```diff") || !strings.Contains(out.Summary, "+    digest: "+digest("good")) {
		t.Errorf("summary:\n%s", out.Summary)
	}
	promotion := head

	// The same digest again: no commit, no push, and still success.
	pushes := srv.Pushes("shop-config")
	in, log = gitopsInputs(c, "staging", "shop-staging", good)
	out, err = rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusSuccess || repo.Head("main") != promotion || srv.Pushes("shop-config") != pushes {
		t.Fatalf("no-op deploy: status %s, err %v, head %s (want %s), pushes %d → %d\n%s", out.Status, err, repo.Head("main"), promotion, pushes, srv.Pushes("shop-config"), log)
	}

	// An image whose pods crash (kwok's fault for images named
	// *crashloop*): the Deployment exceeds its progress deadline, Argo CD
	// reports Degraded, Gantry reverts the promotion in Git.
	bad := "ghcr.io/acme/shop-crashloop@" + digest("bad")
	in, log = gitopsInputs(c, "staging", "shop-staging", bad)
	out, err = rollout.Run(t.Context(), in)
	if err == nil || out.Status != rollout.StatusRolledBack {
		t.Fatalf("crashing image: status %s, err %v, want rolled-back with an error\n%s", out.Status, err, log)
	}
	if !strings.Contains(err.Error(), "Degraded") || !strings.Contains(err.Error(), "Deployment") {
		t.Errorf("the error does not say what was unhealthy: %v", err)
	}
	revert := repo.Head("main")
	revertMsg := repo.Git("log", "-1", "--format=%B", "main")
	badCommit := strings.TrimSpace(repo.Git("rev-parse", "main~1"))
	if !strings.Contains(revertMsg, "This reverts commit "+badCommit+".") || !strings.Contains(revertMsg, "Gantry-Revert-Of: "+badCommit) {
		t.Errorf("the rollback commit's message:\n%s", revertMsg)
	}
	if img, ready := runningImage(t, c, ns); img != good || !ready {
		t.Fatalf("after the automatic rollback the Deployment runs %s (all ready: %v), want %s\n%s", img, ready, good, log)
	}
	if !strings.Contains(out.Summary, "reverted by") || !strings.Contains(out.Summary, revert) || !strings.Contains(out.Summary, "Degraded") {
		t.Errorf("summary of the rolled-back deploy:\n%s", out.Summary)
	}

	// A third good digest, then rollback previous: back to "good" (the
	// reverted "bad" promotion is not a version to return to).
	next := "ghcr.io/acme/shop@" + digest("next")
	in, log = gitopsInputs(c, "staging", "shop-staging", next)
	if out, err = rollout.Run(t.Context(), in); err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("deploy next: %s %v\n%s", out.Status, err, log)
	}
	in, log = gitopsInputs(c, "staging", "shop-staging", "")
	in.Action = "rollback"
	out, err = rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusRolledBack || out.Digest != digest("good") {
		t.Fatalf("rollback previous: status %s, digest %s, err %v\n%s", out.Status, out.Digest, err, log)
	}
	if img, ready := runningImage(t, c, ns); img != good || !ready {
		t.Fatalf("after rollback previous the Deployment runs %s (all ready: %v), want %s", img, ready, good)
	}

	// rollback-to revision:N: N is Argo CD's history id of the commit
	// that first ran "next".
	hist := argo.Application(t, "shop-staging").Object["status"].(map[string]any)["history"].([]any)
	nextCommit := strings.TrimSpace(repo.Git("rev-parse", "main~1"))
	id := ""
	for _, h := range hist {
		h := h.(map[string]any)
		if h["revision"] == nextCommit {
			id = fmt.Sprint(h["id"])
		}
	}
	if id == "" {
		t.Fatalf("Argo CD's history has no entry for %s: %v", nextCommit, hist)
	}
	in, log = gitopsInputs(c, "staging", "shop-staging", "")
	in.Action, in.RollbackTo = "rollback", "revision:"+id
	out, err = rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusRolledBack || out.Digest != digest("next") {
		t.Fatalf("rollback revision:%s: status %s, digest %s, err %v\n%s", id, out.Status, out.Digest, err, log)
	}
	if img, _ := runningImage(t, c, ns); img != next {
		t.Fatalf("after rollback revision:%s the Deployment runs %s, want %s", id, img, next)
	}
}

// TestGitOpsProduction is the guide's production: an Application without
// auto-sync, reached through the Argo CD API server. Without sync the
// deploy is refused before anything is committed; a signed image is
// promoted, synced by Gantry and waited for; an unsigned one is refused by
// verify-before-deploy with nothing committed.
func TestGitOpsProduction(t *testing.T) {
	t.Parallel()
	images := signedImages(t, "acme/shop", []string{"linux/amd64"})
	signed, unsigned, pubFile := images.signed, images.unsigned, images.pub

	c := k8stest.Start(t)
	argo := argocdtest.Start(t, c)
	srv := gittest.Start(t, gitopsToken)
	repo := configRepo(t, srv, "shop-prod-config", "production")
	argo.AddRepositoryCredentials(t, repo.URL, "x-access-token", gitopsToken)
	ns := c.Namespace(t)
	argo.CreateApplication(t, "shop-production", repo.URL, "envs/production", ns, false)
	initial := repo.Head("main")

	api := func(image string) (rollout.Inputs, *logger) {
		in, log := gitopsInputs(c, "production", "shop-production", image)
		in.RESTConfig = nil // the API server, not the Kubernetes API
		in.ArgoCDURL, in.ArgoCDToken = argo.APIURL, "not-checked-auth-is-off"
		in.KustomizeImage = "ghcr.io/acme/shop"
		in.VerifyKey = pubFile
		return in, log
	}

	in, _ := api(signed)
	_, err := rollout.Run(t.Context(), in)
	if err == nil || !strings.Contains(err.Error(), `input "sync"`) || repo.Head("main") != initial {
		t.Fatalf("manual-sync app without sync: err %v, head moved: %v", err, repo.Head("main") != initial)
	}

	in, log := api(unsigned)
	in.Sync = true
	out, err := rollout.Run(t.Context(), in)
	if err == nil || !strings.Contains(err.Error(), "refusing to deploy") || out.Status != rollout.StatusFailure || repo.Head("main") != initial {
		t.Fatalf("unsigned image: status %s, err %v, head moved: %v\n%s", out.Status, err, repo.Head("main") != initial, log)
	}

	// action plan: verified, the diff it would commit shown, nothing
	// committed (a plan needs no sync).
	in, log = api(signed)
	in.Action = "plan"
	out, err = rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusPlanned || repo.Head("main") != initial || !strings.Contains(out.Summary, "+    digest: "+images.signedDigest) {
		t.Fatalf("plan: status %s, err %v, head moved: %v\n%s\n%s", out.Status, err, repo.Head("main") != initial, out.Summary, log)
	}

	in, log = api(signed)
	in.Sync = true
	out, err = rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusSuccess {
		t.Fatalf("signed image: status %s, err %v\n%s", out.Status, err, log)
	}
	if img, ready := runningImage(t, c, ns); img != signed || !ready {
		t.Fatalf("production runs %s (all ready: %v), want %s", img, ready, signed)
	}
	if !strings.Contains(log.String(), "sync of") || !strings.Contains(out.Summary, "Argo CD API") || !strings.Contains(out.Summary, "verified") {
		t.Errorf("the log or summary does not show the sync through the API and the verification:\n%s\n%s", log, out.Summary)
	}
}
