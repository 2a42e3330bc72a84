package gittest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// GitHub is a stand-in for GitHub's pull-request API, not GitHub. It
// serves only the calls Gantry's promote pull-request mode makes (list,
// open, update, read and merge pull requests, add labels, and the GraphQL
// mutation enablePullRequestAutoMerge) for one repository, with GitHub's
// paths and JSON field names as go-github reads them. Nothing else of
// GitHub (checks, reviews, permissions, rate limits, pagination) is there.
// A merge is real: it writes the merge commit onto the base branch of the
// gittest Repo, so a clone, Argo CD or a test sees it.
type GitHub struct {
	// URL is the REST root, as input "github-api-url" takes it (a GitHub
	// Enterprise Server-style …/api/v3/; GraphQL is at …/api/graphql).
	URL string

	t            testing.TB
	repo         *Repo
	owner, name  string
	token        string
	mu           sync.Mutex
	prs          []*PR
	labels       map[int][]string
	autoMergeErr string
	mergeAfter   time.Duration
	closed       bool
}

// PR is a pull request as the stand-in keeps it.
type PR struct {
	Number    int    `json:"number"`
	NodeID    string `json:"node_id"`
	State     string `json:"state"` // open or closed
	Title     string `json:"title"`
	Body      string `json:"body"`
	HTMLURL   string `json:"html_url"`
	Merged    bool   `json:"merged"`
	MergeSHA  string `json:"merge_commit_sha,omitempty"`
	AutoMerge *struct {
		MergeMethod string `json:"merge_method"`
	} `json:"auto_merge"`
	Head struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
	// MergeMethod is how it was merged (merge, squash or rebase).
	MergeMethod string `json:"-"`
}

// StartGitHub serves the pull-request API of repo (whose Name must be
// owner/name) until the test ends; requests must carry token as a bearer
// token.
func StartGitHub(t testing.TB, repo *Repo, token string) *GitHub {
	t.Helper()
	owner, name, ok := strings.Cut(repo.Name, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		t.Fatalf("gittest: StartGitHub needs a repository named owner/name, not %q", repo.Name)
	}
	g := &GitHub{t: t, repo: repo, owner: owner, name: name, token: token, labels: map[int][]string{}}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		srv.Close()
		g.mu.Lock()
		g.closed = true // a pending MergeAfter does nothing now
		g.mu.Unlock()
	})
	g.URL = srv.URL + "/api/v3/"
	return g
}

// RefuseAutoMerge makes enablePullRequestAutoMerge answer with GitHub's
// error message msg (e.g. "Pull request Pull request is in clean status",
// on which Gantry merges directly); "" accepts it again.
func (g *GitHub) RefuseAutoMerge(msg string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.autoMergeErr = msg
}

// MergeAfter makes the stand-in merge a pull request d after auto-merge
// is enabled on it, as GitHub does once its required checks pass; zero
// (the default) leaves it open until Merge.
func (g *GitHub) MergeAfter(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mergeAfter = d
}

// PRs is a copy of the pull requests, in the order they were opened
// (number n at index n-1).
func (g *GitHub) PRs() []PR {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]PR, len(g.prs))
	for i, p := range g.prs {
		out[i] = *p
	}
	return out
}

// Labels are the labels added to pull request n.
func (g *GitHub) Labels(n int) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.labels[n]...)
}

// Merge merges pull request n now with its auto-merge method (default
// squash) and returns the merge commit.
func (g *GitHub) Merge(n int) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.prs[n-1]
	method := "squash"
	if p.AutoMerge != nil {
		method = p.AutoMerge.MergeMethod
	}
	if err := g.merge(p, method); err != nil {
		g.t.Errorf("gittest: merging pull request #%d: %v", n, err)
	}
	return p.MergeSHA
}

func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		httpError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	var raw any
	_ = json.NewDecoder(r.Body).Decode(&raw)
	in, _ := raw.(map[string]any)
	str := func(k string) string { s, _ := in[k].(string); return s }
	path, ok := strings.CutPrefix(r.URL.Path, fmt.Sprintf("/api/v3/repos/%s/%s/", g.owner, g.name))
	switch {
	case r.URL.Path == "/api/graphql" && r.Method == http.MethodPost:
		g.graphql(w, in)
	case !ok:
		httpError(w, http.StatusNotFound, "Not Found")
	case r.Method == http.MethodGet && path == "pulls":
		q := r.URL.Query()
		out := []*PR{}
		for _, p := range g.prs {
			if p.State == q.Get("state") && g.owner+":"+p.Head.Ref == q.Get("head") && (q.Get("base") == "" || p.Base.Ref == q.Get("base")) {
				out = append(out, g.fresh(p))
			}
		}
		writeJSON(w, http.StatusOK, out)
	case r.Method == http.MethodPost && path == "pulls":
		p := &PR{Number: len(g.prs) + 1, State: "open", Title: str("title"), Body: str("body")}
		p.NodeID = fmt.Sprintf("PR_node%d", p.Number)
		p.HTMLURL = fmt.Sprintf("https://github.example/%s/%s/pull/%d", g.owner, g.name, p.Number)
		p.Head.Ref, p.Base.Ref = str("head"), str("base")
		g.prs = append(g.prs, p)
		writeJSON(w, http.StatusCreated, g.fresh(p))
	case strings.HasPrefix(path, "pulls/"):
		num, rest, _ := strings.Cut(strings.TrimPrefix(path, "pulls/"), "/")
		var n int
		if _, err := fmt.Sscan(num, &n); err != nil || n < 1 || n > len(g.prs) {
			httpError(w, http.StatusNotFound, "Not Found")
			return
		}
		p := g.prs[n-1]
		switch {
		case r.Method == http.MethodGet && rest == "":
			writeJSON(w, http.StatusOK, g.fresh(p))
		case r.Method == http.MethodPatch && rest == "":
			p.Title, p.Body = str("title"), str("body")
			writeJSON(w, http.StatusOK, g.fresh(p))
		case r.Method == http.MethodPut && rest == "merge":
			if sha := str("sha"); sha != "" && sha != g.head(p) {
				httpError(w, http.StatusConflict, "Head branch was modified. Review and try the merge again.")
				return
			}
			if err := g.merge(p, or(str("merge_method"), "merge")); err != nil {
				httpError(w, http.StatusMethodNotAllowed, err.Error())
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"sha": p.MergeSHA, "merged": true, "message": "Pull Request successfully merged"})
		default:
			httpError(w, http.StatusNotImplemented, "stand-in: not implemented")
		}
	case r.Method == http.MethodPost && strings.HasPrefix(path, "issues/") && strings.HasSuffix(path, "/labels"):
		var n int
		fmt.Sscan(strings.TrimSuffix(strings.TrimPrefix(path, "issues/"), "/labels"), &n)
		list, _ := raw.([]any) // go-github sends the bare list
		for _, l := range list {
			if s, ok := l.(string); ok {
				g.labels[n] = append(g.labels[n], s)
			}
		}
		writeJSON(w, http.StatusOK, []map[string]string{})
	default:
		httpError(w, http.StatusNotImplemented, "stand-in: not implemented")
	}
}

// graphql answers enablePullRequestAutoMerge, the one mutation Gantry sends.
func (g *GitHub) graphql(w http.ResponseWriter, in map[string]any) {
	q, _ := in["query"].(string)
	vars, _ := in["variables"].(map[string]any)
	id, _ := vars["id"].(string)
	method, _ := vars["method"].(string)
	gqlError := func(typ, msg string) {
		writeJSON(w, http.StatusOK, map[string]any{"data": nil, "errors": []map[string]string{{"type": typ, "message": msg}}})
	}
	if !strings.Contains(q, "enablePullRequestAutoMerge") {
		gqlError("NOT_IMPLEMENTED", "stand-in: only enablePullRequestAutoMerge")
		return
	}
	var p *PR
	for _, c := range g.prs {
		if c.NodeID == id {
			p = c
		}
	}
	switch {
	case p == nil:
		gqlError("NOT_FOUND", fmt.Sprintf("Could not resolve to a node with the global id of '%s'", id))
		return
	case g.autoMergeErr != "":
		gqlError("UNPROCESSABLE", g.autoMergeErr)
		return
	}
	p.AutoMerge = &struct {
		MergeMethod string `json:"merge_method"`
	}{strings.ToLower(method)}
	if d := g.mergeAfter; d > 0 {
		time.AfterFunc(d, func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if p.State == "open" && !g.closed {
				if err := g.merge(p, p.AutoMerge.MergeMethod); err != nil {
					g.t.Errorf("gittest: auto-merging pull request #%d: %v", p.Number, err)
				}
			}
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"enablePullRequestAutoMerge": map[string]any{"pullRequest": map[string]any{"number": p.Number}}}})
}

// merge writes the merge onto the base branch of the real repository: a
// three-way merge of head into base (git merge-tree), committed as one
// commit on base (squash, rebase — Gantry's head is one commit) or a
// two-parent merge commit (merge).
func (g *GitHub) merge(p *PR, method string) error {
	if p.State != "open" {
		return fmt.Errorf("pull request #%d is %s", p.Number, p.State)
	}
	head, base := g.head(p), g.rev("refs/heads/"+p.Base.Ref)
	if head == "" || base == "" {
		return fmt.Errorf("pull request #%d: branch %s or %s is missing", p.Number, p.Head.Ref, p.Base.Ref)
	}
	tree, err := g.git("merge-tree", "--write-tree", base, head)
	if err != nil {
		return fmt.Errorf("pull request #%d is not mergeable: %v", p.Number, err)
	}
	args := []string{"-c", "user.name=GitHub", "-c", "user.email=noreply@github.com", "commit-tree", strings.Fields(tree)[0], "-p", base}
	switch method {
	case "merge":
		args = append(args, "-p", head, "-m", fmt.Sprintf("Merge pull request #%d from %s/%s", p.Number, g.owner, p.Head.Ref))
	case "squash", "rebase":
		args = append(args, "-m", fmt.Sprintf("%s (#%d)\n\n%s", p.Title, p.Number, p.Body))
	default:
		return fmt.Errorf("merge method %q is not merge, squash or rebase", method)
	}
	c, err := g.git(args...)
	if err == nil {
		_, err = g.git("update-ref", "refs/heads/"+p.Base.Ref, c, base)
	}
	if err != nil {
		return err
	}
	p.Head.SHA = head
	p.Merged, p.State, p.MergeSHA, p.MergeMethod = true, "closed", c, method
	return nil
}

// fresh is p with its head commit read from the repository while open.
func (g *GitHub) fresh(p *PR) *PR {
	if p.State == "open" {
		p.Head.SHA = g.head(p)
	}
	return p
}

func (g *GitHub) head(p *PR) string { return g.rev("refs/heads/" + p.Head.Ref) }

func (g *GitHub) rev(ref string) string {
	out, _ := g.git("rev-parse", "--verify", "-q", ref)
	return out
}

// git runs git in the served repository; unlike Repo.Git it does not end
// the test (it runs on the server's goroutines).
func (g *GitHub) git(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = g.repo.Bare
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
