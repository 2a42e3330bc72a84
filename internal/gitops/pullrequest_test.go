package gitops

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/gittest"
)

// ghStandIn is a stand-in for GitHub's API, not GitHub: it implements
// only the calls pull-request mode makes (list, create, update, get and
// merge pull requests, add labels, the enablePullRequestAutoMerge GraphQL
// mutation) for one repository, and merges for real in the gittest
// repository (a squash commit with the head's tree on the base).
type ghStandIn struct {
	t    *testing.T
	repo *gittest.Repo
	// autoMerge is the GraphQL answer: "" enables auto-merge, else it is
	// the error message GitHub gives.
	autoMerge string

	mu     sync.Mutex
	prs    []*fakePR
	calls  []string
	labels map[int][]string
}

type fakePR struct {
	Number      int    `json:"number"`
	NodeID      string `json:"node_id"`
	State       string `json:"state"`
	Title       string `json:"title"`
	Body        string `json:"body"`
	HTMLURL     string `json:"html_url"`
	Merged      bool   `json:"merged"`
	MergeCommit string `json:"merge_commit_sha,omitempty"`
	Head        struct {
		Ref string `json:"ref"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

func (g *ghStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, r.Method+" "+r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer "+token {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	const prefix = "/api/v3/repos/acme/config/"
	path := strings.TrimPrefix(r.URL.Path, prefix)
	var raw any
	if r.Body != nil {
		_ = json.NewDecoder(r.Body).Decode(&raw)
	}
	in, _ := raw.(map[string]any)
	str := func(k string) string { s, _ := in[k].(string); return s }
	switch {
	case r.URL.Path == "/api/graphql":
		if g.autoMerge != "" {
			writeJSON(w, map[string]any{"data": nil, "errors": []map[string]string{{"type": "UNPROCESSABLE", "message": g.autoMerge}}})
			return
		}
		writeJSON(w, map[string]any{"data": map[string]any{"enablePullRequestAutoMerge": map[string]any{"pullRequest": map[string]any{"number": 1}}}})
	case r.Method == http.MethodGet && path == "pulls":
		q := r.URL.Query()
		out := []*fakePR{}
		for _, p := range g.prs {
			if p.State == q.Get("state") && "acme:"+p.Head.Ref == q.Get("head") && p.Base.Ref == q.Get("base") {
				out = append(out, p)
			}
		}
		writeJSON(w, out)
	case r.Method == http.MethodPost && path == "pulls":
		p := &fakePR{Number: len(g.prs) + 1, State: "open", Title: str("title"), Body: str("body")}
		p.NodeID = fmt.Sprintf("PR_node%d", p.Number)
		p.HTMLURL = fmt.Sprintf("https://github.example/acme/config/pull/%d", p.Number)
		p.Head.Ref, p.Base.Ref = str("head"), str("base")
		g.prs = append(g.prs, p)
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, p)
	case strings.HasPrefix(path, "pulls/"):
		var n int
		rest := ""
		fmt.Sscanf(strings.TrimPrefix(path, "pulls/"), "%d", &n)
		if i := strings.Index(strings.TrimPrefix(path, "pulls/"), "/"); i >= 0 {
			rest = strings.TrimPrefix(path, "pulls/")[i+1:]
		}
		if n < 1 || n > len(g.prs) {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		p := g.prs[n-1]
		switch {
		case r.Method == http.MethodGet && rest == "":
			writeJSON(w, p)
		case r.Method == http.MethodPatch && rest == "":
			p.Title, p.Body = str("title"), str("body")
			writeJSON(w, p)
		case r.Method == http.MethodPut && rest == "merge":
			if sha := str("sha"); sha != strings.TrimSpace(g.repo.Git("rev-parse", "refs/heads/"+p.Head.Ref)) {
				http.Error(w, `{"message":"Head branch was modified"}`, http.StatusConflict)
				return
			}
			g.merge(p, str("merge_method"))
			writeJSON(w, map[string]any{"sha": p.MergeCommit, "merged": true, "message": "Pull Request successfully merged"})
		default:
			http.Error(w, `{"message":"stand-in: not implemented"}`, http.StatusNotImplemented)
		}
	case r.Method == http.MethodPost && strings.HasPrefix(path, "issues/") && strings.HasSuffix(path, "/labels"):
		var n int
		fmt.Sscanf(strings.TrimPrefix(path, "issues/"), "%d", &n)
		var labels []string
		list, _ := raw.([]any) // go-github sends the bare list
		for _, l := range list {
			labels = append(labels, l.(string))
		}
		g.labels[n] = append(g.labels[n], labels...)
		writeJSON(w, []map[string]string{})
	default:
		http.Error(w, `{"message":"stand-in: not implemented"}`, http.StatusNotImplemented)
	}
}

// merge squashes the head onto the base in the real repository.
func (g *ghStandIn) merge(p *fakePR, method string) {
	if method != "squash" {
		g.t.Errorf("merge method %q, want squash", method)
	}
	tree := strings.TrimSpace(g.repo.Git("rev-parse", "refs/heads/"+p.Head.Ref+"^{tree}"))
	base := strings.TrimSpace(g.repo.Git("rev-parse", "refs/heads/"+p.Base.Ref))
	c := strings.TrimSpace(g.repo.Git("-c", "user.name=GitHub", "-c", "user.email=noreply@github.com", "commit-tree", tree, "-p", base, "-m", p.Title+"\n\n"+p.Body))
	g.repo.Git("update-ref", "refs/heads/"+p.Base.Ref, c, base)
	p.Merged, p.State, p.MergeCommit = true, "closed", c
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func startStandIn(t *testing.T, repo *gittest.Repo) (*ghStandIn, string) {
	g := &ghStandIn{t: t, repo: repo, labels: map[int][]string{}}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL + "/api/v3/"
}

func TestPullRequestMode(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := srv.NewRepo(t, "acme/config", map[string]string{"envs/staging/kustomization.yaml": stagingKustomization})
	gh, api := startStandIn(t, repo)
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
	if p := gh.prs[0]; p.Title != "promote staging: ghcr.io/acme/app@sha256:aaaaaaaaaaaa" || !strings.Contains(p.Body, digA) || !strings.Contains(p.Body, "https://ci/run/1") || p.Base.Ref != "main" {
		t.Errorf("pull request %+v", p)
	}
	if fmt.Sprint(gh.labels[1]) != "[gantry]" {
		t.Errorf("labels %v", gh.labels)
	}

	// A second promotion updates the same pull request.
	res2, err := Promote(t.Context(), r, tg, Change{Image: "ghcr.io/acme/app@" + digB, Environment: "staging"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res2.PullRequest.Created || res2.PullRequest.Number != 1 || len(gh.prs) != 1 {
		t.Errorf("second promotion: %+v, %d pull requests", res2.PullRequest, len(gh.prs))
	}
	if !strings.Contains(repo.Show("gantry/promote-staging", "envs/staging/kustomization.yaml"), digB) || gh.prs[0].Title != "promote staging: ghcr.io/acme/app@sha256:bbbbbbbbbbbb" {
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
		gh.mu.Lock()
		defer gh.mu.Unlock()
		gh.merge(gh.prs[0], "squash")
	}()
	mc, err := WaitMerged(t.Context(), r, opts, res3.PullRequest)
	if err != nil || mc != repo.Head("main") || !strings.Contains(repo.Show("main", "envs/staging/kustomization.yaml"), digA) {
		t.Fatalf("WaitMerged = %q, %v (main %s)", mc, err, repo.Head("main"))
	}

	// Base has the digest now: no pull request.
	res4, err := Promote(t.Context(), r, tg, Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging"}, opts)
	if err != nil || res4.Changed || res4.PullRequest != nil || len(gh.prs) != 1 {
		t.Fatalf("no-op: %+v, %v", res4, err)
	}

	// GitHub says the pull request is already mergeable: merged directly.
	gh.autoMerge = "Pull request Pull request is in clean status"
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
