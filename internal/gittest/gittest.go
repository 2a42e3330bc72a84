// Package gittest serves real Git repositories to tests over HTTP with
// git's own server side, `git http-backend` (smart HTTP: clone, fetch and
// push, as a Git host speaks them), behind net/http/cgi. A server may ask
// for a token (HTTP basic auth, any user name), as GitHub does for HTTPS
// pushes. StartSSH serves them over SSH too (deploy keys), and
// StartGitHub stands in for GitHub's pull-request API. Tests only: nothing
// under cmd/ links it.
package gittest

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Server is a Git host for one test: bare repositories under Root, served
// at URL/<name>.git.
type Server struct {
	URL  string
	Root string
	// Token, when set, is the password every request must carry.
	Token string

	mu     sync.Mutex
	pushes map[string]int
	srv    *httptest.Server
}

// Start serves an empty set of repositories until the test ends. With a
// token, requests without it get 401 (a clone without credentials fails as
// it does against a private repository).
func Start(t testing.TB, token string) *Server {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("gittest: git is not on PATH (apt-get install git): %v", err)
	}
	out, err := exec.Command(gitBin, "--exec-path").Output()
	if err != nil {
		t.Fatalf("gittest: git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("gittest: git's http-backend is missing (%s): %v", backend, err)
	}
	s := &Server{Root: t.TempDir(), Token: token, pushes: map[string]int{}}
	h := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			// http-backend refuses pushes from unauthenticated users
			// unless told otherwise; the token check is ours.
			"REMOTE_USER=gantry-test",
		},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Token != "" {
			if _, pass, ok := r.BasicAuth(); !ok || pass != s.Token {
				w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			s.mu.Lock()
			s.pushes[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/git-receive-pack")]++
			s.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// Pushes is how many pushes (receive-pack requests) the repository got.
func (s *Server) Pushes(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushes[name+".git"]
}

// Repo is one bare repository on the server and a work tree of it for the
// test to commit in with the git command line.
type Repo struct {
	Name string
	URL  string
	// Bare is the served repository; Work a clone the test commits and
	// pushes from (as another person or CI job would).
	Bare, Work string
	t          testing.TB
	initial    bool
}

// NewRepo creates name.git with files (path → content) committed on
// branch main and pushed, and returns it.
func (s *Server) NewRepo(t testing.TB, name string, files map[string]string) *Repo {
	t.Helper()
	r := &Repo{Name: name, URL: s.URL + "/" + name + ".git", Bare: filepath.Join(s.Root, name+".git"), Work: filepath.Join(t.TempDir(), name), t: t}
	run(t, "", "git", "init", "-q", "--bare", "-b", "main", r.Bare)
	run(t, r.Bare, "git", "config", "http.receivepack", "true")
	run(t, "", "git", "init", "-q", "-b", "main", r.Work)
	run(t, r.Work, "git", "config", "user.name", "Test Person")
	run(t, r.Work, "git", "config", "user.email", "test@example.com")
	run(t, r.Work, "git", "remote", "add", "origin", r.Bare)
	r.initial = true
	r.Commit("initial config", files)
	r.initial = false
	return r
}

// Commit writes files in the work tree (an empty content deletes the
// file), commits them and pushes main; it returns the commit's hash.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	if !r.initial {
		run(r.t, r.Work, "git", "pull", "-q", "--rebase", "origin", "main")
	}
	for p, content := range files {
		full := filepath.Join(r.Work, p)
		if content == "" {
			run(r.t, r.Work, "git", "rm", "-q", p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		run(r.t, r.Work, "git", "add", p)
	}
	run(r.t, r.Work, "git", "commit", "-q", "--allow-empty", "-m", msg)
	run(r.t, r.Work, "git", "push", "-q", "origin", "HEAD:main")
	return r.Head("main")
}

// Head is the served repository's commit at branch.
func (r *Repo) Head(branch string) string {
	r.t.Helper()
	return strings.TrimSpace(run(r.t, r.Bare, "git", "rev-parse", "refs/heads/"+branch))
}

// Show is a file's content at a revision of the served repository.
func (r *Repo) Show(rev, path string) string {
	r.t.Helper()
	return run(r.t, r.Bare, "git", "show", rev+":"+path)
}

// Log is `git log --format=format` of the served repository at rev, one
// entry per line.
func (r *Repo) Log(rev, format string) []string {
	r.t.Helper()
	out := strings.TrimSpace(run(r.t, r.Bare, "git", "log", "--format="+format, rev))
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// Git runs git in the served (bare) repository and returns its output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return run(r.t, r.Bare, "git", args...)
}

func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gittest: %s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// String names the server in test logs.
func (s *Server) String() string { return fmt.Sprintf("git http-backend at %s (%s)", s.URL, s.Root) }
