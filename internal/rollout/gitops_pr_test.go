package rollout_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/argocdtest"
	"github.com/gantry-ci/gantry/internal/gittest"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/rollout"
)

// TestGitOpsPullRequest is promote: pull-request against the real Argo CD
// and git http-backend, with gittest.GitHub standing in for GitHub's
// pull-request API (it merges into the served repository for real).
// Without auto-merge a deploy opens the pull request and ends pending,
// nothing deployed; a second deploy updates the same pull request. With
// auto-merge the stage waits until the pull request is merged, then for
// Argo CD to run the merge commit; when GitHub refuses auto-merge because
// the pull request is already mergeable, the stage merges it itself.
func TestGitOpsPullRequest(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	argo := argocdtest.Start(t, c)
	srv := gittest.Start(t, gitopsToken)
	repo := configRepo(t, srv, "acme/shop-config", "staging") // owner/name: the API needs both
	gh := gittest.StartGitHub(t, repo, gitopsToken)
	argo.AddRepositoryCredentials(t, repo.URL, "x-access-token", gitopsToken)
	ns := c.Namespace(t)
	argo.CreateApplication(t, "shop-pr", repo.URL, "envs/staging", ns, true)
	initial := repo.Head("main")
	argo.WaitApplication(t, "shop-pr", 2*time.Minute, argocdtest.SyncedHealthy(initial))
	before, _ := runningImage(t, c, ns)
	if before != "ghcr.io/acme/shop:0.9" {
		t.Fatalf("before any deploy the Deployment runs %s, want ghcr.io/acme/shop:0.9", before)
	}
	const head = "gantry/promote-staging"
	inputs := func(image string) (rollout.Inputs, *logger) {
		in, log := gitopsInputs(c, "staging", "shop-pr", image)
		in.Promote, in.GitHubAPIURL = "pull-request", gh.URL
		return in, log
	}

	// (a) No auto-merge: the pull request is the deploy's result.
	first := "ghcr.io/acme/shop@" + digest("pr-first")
	in, log := inputs(first)
	start := time.Now()
	out, err := rollout.Run(t.Context(), in)
	if err != nil || out.Status != rollout.StatusPending {
		t.Fatalf("pull request without auto-merge: status %s, err %v, want %s\n%s", out.Status, err, rollout.StatusPending, log)
	}
	t.Logf("pending deploy took %s", time.Since(start).Round(time.Millisecond))
	prs := gh.PRs()
	if len(prs) != 1 || out.PullRequestURL == "" || out.PullRequestURL != prs[0].HTMLURL || prs[0].State != "open" || prs[0].Base.Ref != "main" || prs[0].Head.Ref != head {
		t.Fatalf("pull request output %q; pull requests %+v", out.PullRequestURL, prs)
	}
	if repo.Head("main") != initial {
		t.Errorf("main moved from %s to %s without a merge", initial, repo.Head("main"))
	}
	if kust := repo.Show(head, "envs/staging/kustomization.yaml"); !strings.Contains(kust, "digest: "+digest("pr-first")) {
		t.Errorf("%s does not carry the digest:\n%s", head, kust)
	}
	if out.GitOpsCommit != repo.Head(head) || !strings.Contains(prs[0].Body, digest("pr-first")) {
		t.Errorf("gitops-commit %s, head branch at %s; pull request body:\n%s", out.GitOpsCommit, repo.Head(head), prs[0].Body)
	}
	if !strings.Contains(out.Summary, "⏳ pending") || !strings.Contains(out.Summary, out.PullRequestURL) {
		t.Errorf("summary of the pending deploy:\n%s", out.Summary)
	}
	if img, _ := runningImage(t, c, ns); img != before {
		t.Errorf("with the pull request open the Deployment runs %s, want %s still", img, before)
	}

	// A second deploy while it is open: the same pull request, updated.
	second := "ghcr.io/acme/shop@" + digest("pr-second")
	in, log = inputs(second)
	out2, err := rollout.Run(t.Context(), in)
	if err != nil || out2.Status != rollout.StatusPending {
		t.Fatalf("second deploy: status %s, err %v\n%s", out2.Status, err, log)
	}
	prs = gh.PRs()
	if len(prs) != 1 || out2.PullRequestURL != out.PullRequestURL || prs[0].State != "open" {
		t.Fatalf("second deploy: pull request %q (first %q); pull requests %+v", out2.PullRequestURL, out.PullRequestURL, prs)
	}
	if kust := repo.Show(head, "envs/staging/kustomization.yaml"); !strings.Contains(kust, "digest: "+digest("pr-second")) || strings.Contains(kust, digest("pr-first")) {
		t.Errorf("%s after the second deploy:\n%s", head, kust)
	}
	if !strings.Contains(prs[0].Title, "sha256:"+digest("pr-second")[7:19]) || repo.Head("main") != initial || out2.GitOpsCommit != repo.Head(head) {
		t.Errorf("second deploy: title %q, main %s (want %s), gitops-commit %s", prs[0].Title, repo.Head("main"), initial, out2.GitOpsCommit)
	}
	if img, _ := runningImage(t, c, ns); img != before {
		t.Errorf("after the second pending deploy the Deployment runs %s, want %s still", img, before)
	}

	// (b) Auto-merge: the open pull request is updated, auto-merge is
	// enabled, "GitHub" merges it a second later (its checks passed); the
	// stage waits for the merge, then for Argo CD on the merge commit.
	merged := "ghcr.io/acme/shop@" + digest("pr-merged")
	gh.MergeAfter(time.Second)
	in, log = inputs(merged)
	in.AutoMerge = true
	start = time.Now()
	out3, err := rollout.Run(t.Context(), in)
	if err != nil || out3.Status != rollout.StatusSuccess {
		t.Fatalf("auto-merge deploy: status %s, err %v\n%s", out3.Status, err, log)
	}
	t.Logf("auto-merge deploy took %s", time.Since(start).Round(time.Millisecond))
	prs = gh.PRs()
	mergeCommit := repo.Head("main")
	if len(prs) != 1 || !prs[0].Merged || prs[0].MergeSHA != mergeCommit || prs[0].AutoMerge == nil || prs[0].MergeMethod != "squash" {
		t.Fatalf("after the auto-merge deploy: main %s; pull requests %+v", mergeCommit, prs)
	}
	if parent := strings.TrimSpace(repo.Git("rev-parse", mergeCommit+"^")); parent != initial {
		t.Errorf("the merge commit's parent is %s, want %s", parent, initial)
	}
	if kust := repo.Show("main", "envs/staging/kustomization.yaml"); !strings.Contains(kust, "digest: "+digest("pr-merged")) {
		t.Errorf("main after the merge:\n%s", kust)
	}
	if out3.PullRequestURL != out.PullRequestURL || out3.GitOpsCommit == "" || out3.GitOpsCommit != prs[0].Head.SHA || out3.Revision == "" {
		t.Errorf("outputs: pull-request-url %q (want %q), gitops-commit %q (pull request head %s), revision %q", out3.PullRequestURL, out.PullRequestURL, out3.GitOpsCommit, prs[0].Head.SHA, out3.Revision)
	}
	if !strings.Contains(log.String(), "not merged yet") || !strings.Contains(log.String(), "merged as "+mergeCommit) {
		t.Errorf("the log does not show the wait for the merge:\n%s", log)
	}
	if st := argocdtest.StatusOf(argo.Application(t, "shop-pr").Object); st.Revision != mergeCommit || st.Sync != "Synced" || st.Health != "Healthy" {
		t.Errorf("Argo CD: %s, want synced and healthy at the merge commit %s", st, mergeCommit)
	}
	if img, ready := runningImage(t, c, ns); img != merged || !ready {
		t.Fatalf("after the merge the Deployment runs %s (all ready: %v), want %s", img, ready, merged)
	}

	// GitHub refuses auto-merge on a pull request that is already
	// mergeable ("clean status"): the stage merges it directly, in a new
	// pull request (the first one is closed).
	gh.RefuseAutoMerge("Pull request Pull request is in clean status")
	direct := "ghcr.io/acme/shop@" + digest("pr-direct")
	in, log = inputs(direct)
	in.AutoMerge = true
	out4, err := rollout.Run(t.Context(), in)
	if err != nil || out4.Status != rollout.StatusSuccess {
		t.Fatalf("direct merge: status %s, err %v\n%s", out4.Status, err, log)
	}
	prs = gh.PRs()
	if len(prs) != 2 || !prs[1].Merged || prs[1].AutoMerge != nil || prs[1].MergeSHA != repo.Head("main") || out4.PullRequestURL != prs[1].HTMLURL {
		t.Fatalf("direct merge: main %s, pull-request-url %q; pull requests %+v", repo.Head("main"), out4.PullRequestURL, prs)
	}
	if img, ready := runningImage(t, c, ns); img != direct || !ready {
		t.Fatalf("after the direct merge the Deployment runs %s (all ready: %v), want %s", img, ready, direct)
	}
}
