package gitops

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/gittest"
)

func TestPullRequestMode(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := srv.NewRepo(t, "acme/config", map[string]string{"envs/staging/kustomization.yaml": stagingKustomization})
	gh := gittest.StartGitHub(t, repo, token)
	api := gh.URL
	r := Repo{URL: repo.URL, Token: token}
	tg := Target{Path: "envs/staging", KustomizeImage: "app"}
	opts := Options{Mode: ModePullRequest, PullRequest: PullRequestOptions{APIURL: api, Labels: []string{"gantry"}}}
	base := repo.Head("main")

	res, err := Promote(t.Context(), r, tg, Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging", RunURL: "https://ci/run/1"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	pr := res.PullRequest
	if pr == nil || !pr.Created || pr.Number != 1 || res.Branch != "gantry/promote-staging" || pr.HeadSHA != res.Commit || res.CommitURL != "" && !strings.Contains(res.CommitURL, res.Commit) {
		t.Fatalf("result %+v, pr %+v", res, pr)
	}
	if repo.Head("main") != base {
		t.Error("pull-request mode pushed to the base branch")
	}
	if repo.Head("gantry/promote-staging") != res.Commit || !strings.Contains(repo.Show("gantry/promote-staging", "envs/staging/kustomization.yaml"), digA) {
		t.Error("head branch does not carry the promotion")
	}
	if p := gh.PRs()[0]; p.Title != "promote staging: ghcr.io/acme/app@sha256:aaaaaaaaaaaa" || !strings.Contains(p.Body, digA) || !strings.Contains(p.Body, "https://ci/run/1") || p.Base.Ref != "main" {
		t.Errorf("pull request %+v", p)
	}
	if fmt.Sprint(gh.Labels(1)) != "[gantry]" {
		t.Errorf("labels %v", gh.Labels(1))
	}

	// A second promotion updates the same pull request.
	res2, err := Promote(t.Context(), r, tg, Change{Image: "ghcr.io/acme/app@" + digB, Environment: "staging"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res2.PullRequest.Created || res2.PullRequest.Number != 1 || len(gh.PRs()) != 1 {
		t.Errorf("second promotion: %+v, %d pull requests", res2.PullRequest, len(gh.PRs()))
	}
	if !strings.Contains(repo.Show("gantry/promote-staging", "envs/staging/kustomization.yaml"), digB) || gh.PRs()[0].Title != "promote staging: ghcr.io/acme/app@sha256:bbbbbbbbbbbb" {
		t.Error("head branch or title not updated")
	}
	if strings.TrimSpace(repo.Git("rev-parse", "gantry/promote-staging^")) != base {
		t.Error("the head branch is not one commit on the base")
	}

	// Auto-merge is enabled; GitHub (the stand-in) merges later.
	opts.PullRequest.AutoMerge = true
	opts.PullRequest.PollInterval = 20 * time.Millisecond
	res3, err := Promote(t.Context(), r, tg, Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res3.PullRequest.AutoMerge || res3.PullRequest.Merged {
		t.Fatalf("auto-merge: %+v", res3.PullRequest)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		gh.Merge(1)
	}()
	mc, err := WaitMerged(t.Context(), r, opts, res3.PullRequest)
	if err != nil || mc != repo.Head("main") || !strings.Contains(repo.Show("main", "envs/staging/kustomization.yaml"), digA) {
		t.Fatalf("WaitMerged = %q, %v (main %s)", mc, err, repo.Head("main"))
	}
	if p := gh.PRs()[0]; p.MergeMethod != "squash" || p.AutoMerge == nil {
		t.Errorf("merged with method %q (auto-merge %v), want squash", p.MergeMethod, p.AutoMerge)
	}

	// Base has the digest now: no pull request.
	res4, err := Promote(t.Context(), r, tg, Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging"}, opts)
	if err != nil || res4.Changed || res4.PullRequest != nil || len(gh.PRs()) != 1 {
		t.Fatalf("no-op: %+v, %v", res4, err)
	}

	// GitHub says the pull request is already mergeable: merged directly.
	gh.RefuseAutoMerge("Pull request Pull request is in clean status")
	res5, err := Promote(t.Context(), r, tg, Change{Image: "ghcr.io/acme/app@" + digB, Environment: "staging"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p := res5.PullRequest; !p.Created || p.Number != 2 || !p.Merged || p.MergeCommit != repo.Head("main") {
		t.Fatalf("direct merge: %+v", p)
	}
	if !strings.Contains(repo.Show("main", "envs/staging/kustomization.yaml"), digB) {
		t.Error("main lacks the merged digest")
	}
	if p := gh.PRs()[1]; p.MergeMethod != "squash" {
		t.Errorf("merged directly with method %q, want squash", p.MergeMethod)
	}
	if mc, err := WaitMerged(t.Context(), r, opts, res5.PullRequest); err != nil || mc != res5.PullRequest.MergeCommit {
		t.Errorf("WaitMerged after direct merge = %q, %v", mc, err)
	}
}

func TestPullRequestInputs(t *testing.T) {
	ch := Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging"}
	tg := Target{Path: "envs/staging"}
	for _, tc := range []struct {
		repo Repo
		o    PullRequestOptions
		want string
	}{
		{Repo{URL: "https://git.example.com/acme/config.git", Token: "t"}, PullRequestOptions{}, `needs input "github-api-url"`},
		{Repo{URL: "acme/config"}, PullRequestOptions{}, `needs input "gitops-token"`},
		{Repo{URL: "acme/config", Token: "t"}, PullRequestOptions{MergeMethod: "fast"}, "merge method"},
		{Repo{URL: "http://127.0.0.1:1/config.git", Token: "t"}, PullRequestOptions{APIURL: "http://127.0.0.1:1/"}, "owner/name"},
	} {
		_, err := Promote(t.Context(), tc.repo, tg, ch, Options{Mode: ModePullRequest, PullRequest: tc.o})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
}
