package detect_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gantry-ci/gantry/internal/runctx"
	"github.com/gantry-ci/gantry/internal/runctx/detect"
)

var author = &object.Signature{Name: "Mara Okafor", Email: "mara@example.com", When: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}

// gitRepo makes a repository in dir on branch main with one commit, and
// origin at remote when it is not "". It returns the repository and the
// commit.
func gitRepo(t *testing.T, dir, remote string) (*git.Repository, plumbing.Hash) {
	t.Helper()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if remote != "" {
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{remote}}); err != nil {
			t.Fatal(err)
		}
	}
	return repo, commit(t, repo, "README.md", "first")
}

// commit writes file in the worktree and commits it.
func commit(t *testing.T, repo *git.Repository, file, content string) plumbing.Hash {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wt.Filesystem.Root(), file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add(file); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit(content, &git.CommitOptions{Author: author})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLocalBranch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	repo, head := gitRepo(t, dir, "git@github.com:acme/Prompt-Builder.git")
	// A tag on an older commit is not this run's.
	if _, err := repo.CreateTag("v0.9.0", head, nil); err != nil {
		t.Fatal(err)
	}
	head = commit(t, repo, "main.go", "second")
	// origin's HEAD, as a clone leaves it, names the default branch.
	if err := repo.Storer.SetReference(plumbing.NewSymbolicReference("refs/remotes/origin/HEAD", "refs/remotes/origin/main")); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "deploy", "chart")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// From a subdirectory, as from the root.
	for _, from := range []string{dir, sub} {
		r, err := detect.Local(from, started)
		if err != nil {
			t.Fatal(err)
		}
		want := runctx.Run{
			CI: runctx.LocalCI, Local: true, EventName: "local", StartedOn: started,
			ServerURL: "https://github.com", APIURL: "https://api.github.com", Repository: "acme/Prompt-Builder", DefaultBranch: "main",
			Ref: "refs/heads/main", RefName: "main", RefType: "branch", SHA: head.String(),
		}
		if !reflect.DeepEqual(*r, want) {
			t.Errorf("Local(%s):\n got %+v\nwant %+v", from, *r, want)
		}
		if r.RunURL() != "" || r.CommitSHA() != head.String() {
			t.Errorf("RunURL %q (want none), CommitSHA %q", r.RunURL(), r.CommitSHA())
		}
	}
}

func TestLocalTag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	repo, head := gitRepo(t, dir, "https://github.example.com/acme/app")
	// The release candidate and the release on the same commit, one
	// annotated, one lightweight: the release wins.
	if _, err := repo.CreateTag("v1.2.3-rc.1", head, &git.CreateTagOptions{Tagger: author, Message: "rc"}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateTag("v1.2.3", head, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateTag("nightly", head, nil); err != nil {
		t.Fatal(err)
	}
	r, err := detect.Local(dir, started)
	if err != nil {
		t.Fatal(err)
	}
	// Not github.com: the API address is not guessed.
	if r.Ref != "refs/tags/v1.2.3" || r.RefName != "v1.2.3" || r.RefType != "tag" || r.SHA != head.String() ||
		r.Repository != "acme/app" || r.ServerURL != "https://github.example.com" || r.APIURL != "" {
		t.Errorf("Local on a tagged commit = %+v", *r)
	}

	// Checked out detached at the tag, annotated only.
	dir2 := t.TempDir()
	repo2, first := gitRepo(t, dir2, "")
	if _, err := repo2.CreateTag("v2.0.0", first, &git.CreateTagOptions{Tagger: author, Message: "v2"}); err != nil {
		t.Fatal(err)
	}
	second := commit(t, repo2, "b.txt", "second")
	detach(t, repo2, first)
	r, err = detect.Local(dir2, started)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != "refs/tags/v2.0.0" || r.SHA != first.String() || r.Repository != "" || r.ServerURL != "" {
		t.Errorf("Local detached at an annotated tag = %+v", *r)
	}

	// Detached on a commit no tag names: no ref at all.
	detach(t, repo2, second)
	r, err = detect.Local(dir2, started)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != "" || r.RefName != "" || r.SHA != second.String() {
		t.Errorf("Local detached = %+v, want no ref and SHA %s", *r, second)
	}
}

func detach(t *testing.T, repo *git.Repository, h plumbing.Hash) {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: h}); err != nil {
		t.Fatal(err)
	}
}

func TestLocalNoCommitOrNoRepository(t *testing.T) {
	t.Parallel()
	// Not a git repository: a run all the same, without a commit.
	r, err := detect.Local(t.TempDir(), started)
	if err != nil {
		t.Fatal(err)
	}
	if want := (runctx.Run{CI: runctx.LocalCI, Local: true, EventName: "local", StartedOn: started}); !reflect.DeepEqual(*r, want) {
		t.Errorf("Local outside a repository = %+v, want %+v", *r, want)
	}

	// A repository without a commit yet: the branch, no SHA.
	dir := t.TempDir()
	if _, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("trunk")},
	}); err != nil {
		t.Fatal(err)
	}
	r, err = detect.Local(dir, started)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != "refs/heads/trunk" || r.RefName != "trunk" || r.SHA != "" {
		t.Errorf("Local in an empty repository = %+v", *r)
	}
}

func TestLocalRemotes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		remote, server, repo string
	}{
		{"https://github.com/acme/app.git", "https://github.com", "acme/app"},
		{"https://github.com/acme/app/", "https://github.com", "acme/app"},
		// Credentials in the URL are not kept.
		{"https://x-access-token:ghs_secret@github.com/acme/app.git", "https://github.com", "acme/app"},
		{"http://gitea.local:3000/acme/app.git", "http://gitea.local:3000", "acme/app"},
		{"git@github.com:acme/app.git", "https://github.com", "acme/app"},
		{"ssh://git@github.com:2222/acme/app.git", "https://github.com", "acme/app"},
		{"git@gitlab.example.com:group/sub/app.git", "", ""}, // deeper than owner/name
		{"/srv/git/app.git", "", ""},
		{"../app", "", ""},
		{"file:///srv/git/acme/app.git", "", ""},
		{`C:\src\acme\app`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			gitRepo(t, dir, tt.remote)
			r, err := detect.Local(dir, started)
			if err != nil {
				t.Fatal(err)
			}
			if r.ServerURL != tt.server || r.Repository != tt.repo {
				t.Errorf("origin %s: server %q, repository %q; want %q, %q", tt.remote, r.ServerURL, r.Repository, tt.server, tt.repo)
			}
		})
	}
}
