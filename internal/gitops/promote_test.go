package gitops

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/gittest"
)

const token = "tok-3f9a7c1e5d"

func digestN(n int) string { return "sha256:" + strings.Repeat(fmt.Sprintf("%x", n%16), 64) }

func noSleep(context.Context, time.Duration) error { return nil }

const stagingKustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../../base

images:
- name: app # promoted by gantry
  newName: ghcr.io/acme/app
  newTag: "1.0"
`

func newConfigRepo(t *testing.T, srv *gittest.Server) *gittest.Repo {
	return srv.NewRepo(t, "config", map[string]string{
		"envs/staging/kustomization.yaml":    stagingKustomization,
		"envs/production/kustomization.yaml": "resources:\n- ../../base\n",
		"charts/app/values-prod.yaml":        "# prod\nreplicaCount: 3\n",
		"README.md":                          "config\n",
	})
}

type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) Infof(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
}
func (l *testLog) Warningf(f string, a ...any) { l.Infof("warning: "+f, a...) }

func TestPromoteKustomize(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := newConfigRepo(t, srv)
	r := Repo{URL: repo.URL, Token: token}
	ch := Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging", SourceCommit: "0123abcd", SourceRepository: "acme/app", RunURL: "https://github.com/acme/app/actions/runs/7"}
	log := &testLog{}
	res, err := Promote(t.Context(), r, Target{Path: "envs/staging", KustomizeImage: "app"}, ch, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Commit != repo.Head("main") || res.Attempts != 1 || res.File != "envs/staging/kustomization.yaml" || res.Branch != "main" || res.PreviousDigest != "" {
		t.Fatalf("result %+v; head %s", res, repo.Head("main"))
	}
	want := strings.Replace(stagingKustomization, `  newTag: "1.0"`, "  digest: "+digA, 1)
	if got := repo.Show("main", res.File); got != want {
		t.Errorf("file:\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(res.Diff, "-  newTag: \"1.0\"\n+  digest: "+digA) {
		t.Errorf("diff:\n%s", res.Diff)
	}
	// The message as a person reads it with git log.
	subject := repo.Log("main", "%s")[0]
	if subject != "promote staging: ghcr.io/acme/app@sha256:aaaaaaaaaaaa" {
		t.Errorf("subject %q", subject)
	}
	body := repo.Git("log", "-1", "--format=%B", "main")
	for _, s := range []string{"ghcr.io/acme/app@" + digA, "acme/app at commit 0123abcd", "Run: https://github.com/acme/app/actions/runs/7"} {
		if !strings.Contains(body, s) {
			t.Errorf("body lacks %q:\n%s", s, body)
		}
	}
	tr := repo.Git("log", "-1", "--format=%(trailers:only,unfold)", "main")
	for _, s := range []string{"Gantry-Environment: staging", "Gantry-Image: ghcr.io/acme/app@" + digA, "Gantry-Source-Commit: 0123abcd", "Gantry-Run: https://github.com/acme/app/actions/runs/7"} {
		if !strings.Contains(tr, s) {
			t.Errorf("trailers lack %q:\n%s", s, tr)
		}
	}
	if a := repo.Git("log", "-1", "--format=%an <%ae>", "main"); strings.TrimSpace(a) != "gantry <gantry@users.noreply.github.com>" {
		t.Errorf("author %q", a)
	}
	if len(repo.Log("main", "%H")) != 2 {
		t.Errorf("history %q", repo.Log("main", "%s"))
	}
	if srv.Pushes("config") != 1 {
		t.Errorf("pushes %d", srv.Pushes("config"))
	}
	for _, l := range log.lines {
		if strings.Contains(l, token) {
			t.Errorf("token in log line %q", l)
		}
	}

	// The same promotion again: no commit, no push.
	again, err := Promote(t.Context(), r, Target{Path: "envs/staging", KustomizeImage: "app"}, ch, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed || again.Commit != res.Commit || again.PreviousDigest != digA || again.Attempts != 0 || again.Diff != "" {
		t.Errorf("no-op result %+v", again)
	}
	if srv.Pushes("config") != 1 {
		t.Errorf("no-op pushed: %d pushes", srv.Pushes("config"))
	}
}

func TestPromoteHelmAndMissingEntry(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := newConfigRepo(t, srv)
	r := Repo{URL: repo.URL, Token: token, AuthorName: "ci", AuthorEmail: "ci@example.com"}
	res, err := Promote(t.Context(), r, Target{Path: "charts/app/values-prod.yaml", ValuesKey: "image.digest", RepositoryKey: "image.repository"},
		Change{Image: "ghcr.io/acme/app:2.0@" + digA, Environment: "production"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "# prod\nreplicaCount: 3\nimage:\n  digest: " + digA + "\n  repository: ghcr.io/acme/app\n"
	if got := repo.Show("main", "charts/app/values-prod.yaml"); got != want || !res.Changed {
		t.Errorf("values:\n%s\nwant\n%s", got, want)
	}
	res, err = Promote(t.Context(), r, Target{Path: "envs/production"}, Change{Image: "ghcr.io/acme/app@" + digA, Environment: "production"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := repo.Show("main", "envs/production/kustomization.yaml"); got != "resources:\n- ../../base\nimages:\n- name: ghcr.io/acme/app\n  digest: "+digA+"\n" {
		t.Errorf("production:\n%s", got)
	}
}

func TestPromoteInputErrors(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := newConfigRepo(t, srv)
	r := Repo{URL: repo.URL, Token: token}
	ch := Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging"}
	for _, tc := range []struct {
		name   string
		repo   Repo
		target Target
		ch     Change
		want   string
	}{
		{"tag", r, Target{Path: "envs/staging"}, Change{Image: "ghcr.io/acme/app:1.0", Environment: "staging"}, `input "image"`},
		{"no path", r, Target{}, ch, `input "gitops-path" is empty`},
		{"missing dir", r, Target{Path: "envs/qa"}, ch, `input "gitops-path": envs/qa does not exist`},
		{"no kustomization", r, Target{Path: "charts/app"}, ch, `input "gitops-path": charts/app has no kustomization.yaml and no values file; set "image-path"`},
		{"no values.yaml", r, Target{Path: "charts/app", ValuesKey: "image.digest"}, ch, `charts/app has no values.yaml`},
		{"branch", Repo{URL: repo.URL, Token: token, Branch: "nope"}, Target{Path: "envs/staging"}, ch, `input "gitops-branch": branch "nope" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Promote(t.Context(), tc.repo, tc.target, tc.ch, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if srv.Pushes("config") != 0 {
		t.Errorf("pushes %d", srv.Pushes("config"))
	}
}

func TestWrongTokenNotInError(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := newConfigRepo(t, srv)
	const wrong = "wrong-token-8c2e4b"
	_, err := Promote(t.Context(), Repo{URL: repo.URL, Token: wrong}, Target{Path: "envs/staging"}, Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging"}, Options{})
	if err == nil {
		t.Fatal("promoted with a wrong token")
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), token) {
		t.Errorf("token in error: %v", err)
	}
	if !strings.Contains(err.Error(), `"gitops-token"`) {
		t.Errorf("error does not name the input: %v", err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := newConfigRepo(t, srv)
	head := repo.Head("main")
	res, err := Promote(t.Context(), Repo{URL: repo.URL, Token: token}, Target{Path: "envs/staging", KustomizeImage: "app"},
		Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging"}, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Commit != "" || res.Diff == "" || !strings.Contains(res.Diff, "+  digest: "+digA) {
		t.Errorf("dry run result %+v", res)
	}
	if repo.Head("main") != head || srv.Pushes("config") != 0 {
		t.Error("dry run wrote to the repository")
	}
}

// Another person's commit lands between the clone and the push: the push
// is rejected, Gantry fetches, re-applies on the new tip and pushes again.
func TestRebaseAndRetry(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := newConfigRepo(t, srv)
	var theirs string
	opts := Options{sleep: noSleep, beforePush: func(attempt int) {
		if attempt == 1 {
			theirs = repo.Commit("scale production", map[string]string{"envs/production/replicas.yaml": "replicas: 4\n"})
		}
	}}
	res, err := Promote(t.Context(), Repo{URL: repo.URL, Token: token}, Target{Path: "envs/staging", KustomizeImage: "app"},
		Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || !res.Changed || res.Commit != repo.Head("main") {
		t.Fatalf("result %+v", res)
	}
	if parent := strings.TrimSpace(repo.Git("rev-parse", "main^")); parent != theirs {
		t.Errorf("promotion's parent %s, want the other person's commit %s", parent, theirs)
	}
	if !strings.Contains(repo.Show("main", "envs/staging/kustomization.yaml"), digA) || repo.Show("main", "envs/production/replicas.yaml") != "replicas: 4\n" {
		t.Error("a change was lost")
	}
}

// Four jobs promote four environments of one repository at once: every
// promotion lands, on a linear history.
func TestConcurrentPromotions(t *testing.T) {
	srv := gittest.Start(t, token)
	files := map[string]string{}
	for i := range 4 {
		files[fmt.Sprintf("envs/e%d/kustomization.yaml", i)] = "resources:\n- ../../base\n"
	}
	repo := srv.NewRepo(t, "config", files)
	var wg sync.WaitGroup
	results := make([]Result, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() {
			results[i], errs[i] = Promote(t.Context(), Repo{URL: repo.URL, Token: token}, Target{Path: fmt.Sprintf("envs/e%d", i)},
				Change{Image: "ghcr.io/acme/app@" + digestN(i+1), Environment: fmt.Sprintf("e%d", i)}, Options{Attempts: 8})
		})
	}
	wg.Wait()
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("promotion %d: %v", i, errs[i])
		}
		if got := repo.Show("main", fmt.Sprintf("envs/e%d/kustomization.yaml", i)); !strings.Contains(got, digestN(i+1)) {
			t.Errorf("e%d lost its digest:\n%s", i, got)
		}
	}
	if merges := repo.Git("rev-list", "--merges", "main"); strings.TrimSpace(merges) != "" {
		t.Errorf("merge commits: %s", merges)
	}
	if n := len(repo.Log("main", "%H")); n != 5 {
		t.Errorf("%d commits, want 5", n)
	}
}

func TestHistoryDigestAtAndRollback(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := newConfigRepo(t, srv)
	r := Repo{URL: repo.URL, Token: token}
	tg := Target{Path: "envs/staging", KustomizeImage: "app"}
	var commits []string
	for i, d := range []string{digA, digB} {
		res, err := Promote(t.Context(), r, tg, Change{Image: "ghcr.io/acme/app@" + d, Environment: "staging", SourceCommit: fmt.Sprint("src", i)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		commits = append(commits, res.Commit)
		repo.Commit("unrelated", map[string]string{"README.md": fmt.Sprint("readme ", i, "\n")})
	}
	// Roll back to the first promotion.
	img, err := DigestAt(t.Context(), r, tg, commits[0][:10])
	if err != nil || img != "ghcr.io/acme/app@"+digA {
		t.Fatalf("DigestAt = %q, %v", img, err)
	}
	rb, err := Promote(t.Context(), r, tg, Change{Image: img, Environment: "staging", RevertOf: commits[1]}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	msg := repo.Git("log", "-1", "--format=%B", rb.Commit)
	if !strings.HasPrefix(msg, "roll back staging: ghcr.io/acme/app@sha256:aaaaaaaaaaaa\n") || !strings.Contains(msg, "This reverts commit "+commits[1]+".") ||
		!strings.Contains(repo.Git("log", "-1", "--format=%(trailers:key=Gantry-Revert-Of,valueonly)", rb.Commit), commits[1]) {
		t.Errorf("rollback message:\n%s", msg)
	}
	if rb.PreviousDigest != digB || rb.PreviousImage != "ghcr.io/acme/app@"+digB {
		t.Errorf("previous digest %q, image %q", rb.PreviousDigest, rb.PreviousImage)
	}

	hist, err := History(t.Context(), r, tg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("history %+v", hist)
	}
	want := []struct{ commit, digest, revert string }{{rb.Commit, digA, commits[1]}, {commits[1], digB, ""}, {commits[0], digA, ""}}
	for i, w := range want {
		h := hist[i]
		if h.Commit != w.commit || h.Digest != w.digest || h.Image != "ghcr.io/acme/app@"+w.digest || h.RevertOf != w.revert || h.Environment != "staging" || h.Time.IsZero() || h.Subject == "" {
			t.Errorf("entry %d = %+v, want %+v", i, h, w)
		}
	}
	if two, err := History(t.Context(), r, tg, 2); err != nil || len(two) != 2 {
		t.Errorf("limited history %d entries, %v", len(two), err)
	}
	if _, err := DigestAt(t.Context(), r, tg, "deadbeef"); err == nil {
		t.Error("DigestAt found an unknown revision")
	}
}
