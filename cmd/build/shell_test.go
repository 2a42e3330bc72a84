package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/ocitest"
)

func TestMain(m *testing.M) { actiontest.TestMain(m, main) }

// TestOutsideActions runs gantry-build as a process from a shell or another
// CI would: no GITHUB_* at all. The image is pushed, its outputs come on
// stdout (name=value, or JSON with --output json), the log is plain on
// stderr without the registry password, and the exit code is 0.
func TestOutsideActions(t *testing.T) {
	const user, secret = "ci-bot", "s3cr3t-build-token"
	reg, err := ocitest.StartRegistry(ocitest.BasicAuth(user, secret))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	base, _ := name.ParseReference(reg.Host + "/library/base:1")
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(base, idx, remote.WithAuth(basic(user, secret))); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	os.MkdirAll(filepath.Join(work, "dist"), 0o755)
	for _, arch := range []string{"amd64", "arm64"} {
		os.WriteFile(filepath.Join(work, "dist", "app-"+arch), []byte("bin "+arch), 0o755)
	}
	env := map[string]string{
		"INPUT_IMAGE":             reg.Host + "/acme/app",
		"INPUT_BASE":              base.String(),
		"INPUT_CONTEXT":           work,
		"INPUT_LAYERS":            "dist/app-{arch}:/app/server",
		"INPUT_TAGS":              "type=raw,value=local",
		"INPUT_REGISTRY-USERNAME": user,
		"INPUT_REGISTRY-PASSWORD": secret,
		"INPUT_RELEASE-FILE":      filepath.Join(work, "gantry-release.json"),
		"SOURCE_DATE_EPOCH":       "1795179791",
	}
	r := actiontest.Exec(t, "gantry-build", env)
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
	}
	outs := actiontest.StdoutOutputs(t, r)
	repo := reg.Host + "/acme/app"
	if !strings.HasPrefix(outs["image"], repo+"@sha256:") || !strings.HasSuffix(outs["image"], outs["digest"]) {
		t.Errorf("outputs image=%q digest=%q", outs["image"], outs["digest"])
	}
	if outs["tags"] != repo+":local" {
		t.Errorf("tags output = %q, want %s:local", outs["tags"], repo)
	}
	actiontest.Plain(t, r.Stderr, secret)
	if !strings.Contains(r.Stderr, "| linux/amd64 | `sha256:") {
		t.Errorf("the summary is not on stderr:\n%s", r.Stderr)
	}
	ref, _ := name.ParseReference(outs["image"])
	if _, err := remote.Index(ref, remote.WithAuth(basic(user, secret))); err != nil {
		t.Errorf("the image of the outputs is not in the registry: %v", err)
	}

	// The same build again, outputs as one JSON object and the summary to
	// a file: the same digest.
	sum := filepath.Join(work, "summary.md")
	r = actiontest.Exec(t, "gantry-build", env, "--output=json", "--summary", sum)
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
	}
	var js map[string]string
	if err := json.Unmarshal([]byte(r.Stdout), &js); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, r.Stdout)
	}
	if js["digest"] != outs["digest"] || js["image"] != outs["image"] {
		t.Errorf("JSON outputs %v, want digest %s", js, outs["digest"])
	}
	if b, _ := os.ReadFile(sum); !strings.Contains(string(b), "| linux/amd64 | `sha256:") {
		t.Errorf("summary file:\n%s", b)
	}
	if strings.Contains(r.Stderr, "| linux/amd64 |") {
		t.Errorf("the summary went to stderr too")
	}

	t.Run("bad flag", func(t *testing.T) {
		r := actiontest.Exec(t, "gantry-build", env, "--tags", "x")
		if r.Code != 1 || !strings.Contains(r.Stderr, `unknown argument "--tags"`) || !strings.Contains(r.Stderr, "INPUT_") {
			t.Errorf("exit %d, stderr:\n%s", r.Code, r.Stderr)
		}
	})
	t.Run("help", func(t *testing.T) {
		r := actiontest.Exec(t, "gantry-build", nil, "--help")
		if r.Code != 0 || !strings.Contains(r.Stdout, "usage: gantry-build") || !strings.Contains(r.Stdout, "--output text|json") {
			t.Errorf("exit %d, stdout:\n%s", r.Code, r.Stdout)
		}
	})
	t.Run("unwritable GITHUB_OUTPUT", func(t *testing.T) {
		env := maps(env, "GITHUB_OUTPUT", actiontest.ReadOnlyOutput(t))
		r := actiontest.Exec(t, "gantry-build", env)
		if r.Code != 1 || !strings.Contains(r.Stdout, "::error::") || !strings.Contains(r.Stdout, "GITHUB_OUTPUT") {
			t.Errorf("exit %d, want 1 and an error naming GITHUB_OUTPUT:\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})
}

// maps returns a copy of env with k set to v.
func maps(env map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range env {
		if key != k {
			out[key] = val
		}
	}
	return out
}
