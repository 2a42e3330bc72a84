package gittest

import (
	"os/exec"
	"strings"
	"testing"
)

// A clone over HTTP sees what NewRepo committed; a push over HTTP lands in
// the served repository; without the token both are refused.
func TestServeCloneAndPush(t *testing.T) {
	s := Start(t, "s3cret")
	r := s.NewRepo(t, "config", map[string]string{"envs/staging/kustomization.yaml": "resources: []\n"})

	dir := t.TempDir()
	authURL := strings.Replace(r.URL, "http://", "http://x-access-token:s3cret@", 1)
	run(t, "", "git", "clone", "-q", authURL, dir)
	if got := run(t, dir, "git", "show", "HEAD:envs/staging/kustomization.yaml"); got != "resources: []\n" {
		t.Fatalf("cloned file = %q", got)
	}
	run(t, dir, "git", "-c", "user.name=A", "-c", "user.email=a@example.com", "commit", "-q", "--allow-empty", "-m", "second")
	run(t, dir, "git", "push", "-q", "origin", "HEAD:main")
	if got := r.Log("main", "%s"); len(got) != 2 || got[0] != "second" {
		t.Fatalf("served log = %q, want the pushed commit on top", got)
	}
	if s.Pushes("config") != 1 {
		t.Fatalf("pushes = %d, want 1", s.Pushes("config"))
	}

	cmd := exec.Command("git", "ls-remote", r.URL)
	cmd.Env = append(cmd.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("ls-remote without the token succeeded: %s", out)
	}
}
