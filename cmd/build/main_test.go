package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/image"
	"github.com/gantry-ci/gantry/internal/ocitest"
)

// TestBinaryRunsFromActionEnvironment runs the binary's stage exactly as the
// composite action does: inputs as INPUT_* (hyphens kept), the GitHub
// context from a real event payload, outputs and summary to runner files.
func TestBinaryRunsFromActionEnvironment(t *testing.T) {
	const secret = "s3cr3t-token-value"
	reg, err := ocitest.StartRegistry(ocitest.BasicAuth("ci-bot", secret))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	// Push the base with credentials too.
	base, err := name.ParseReference(reg.Host + "/library/base:1")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(base, idx, remote.WithAuth(basic("ci-bot", secret))); err != nil {
		t.Fatal(err)
	}

	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		os.WriteFile(filepath.Join(work, "dist", "app-"+arch), []byte("bin "+arch), 0o755)
	}
	outFile := filepath.Join(work, "github-output")
	summaryFile := filepath.Join(work, "summary.md")
	for _, f := range []string{outFile, summaryFile} {
		os.WriteFile(f, nil, 0o644)
	}
	env := map[string]string{
		"INPUT_IMAGE":             reg.Host + "/Acme/Prompt-Builder",
		"INPUT_BASE":              base.String(),
		"INPUT_CONTEXT":           work,
		"INPUT_LAYERS":            "dist/app-{arch}:/app/server",
		"INPUT_ENTRYPOINT":        `["/app/server", "--port", "8080"]`,
		"INPUT_REGISTRY-USERNAME": "ci-bot",
		"INPUT_REGISTRY-PASSWORD": secret,
		"INPUT_RELEASE-FILE":      filepath.Join(work, "gantry-release.json"),
		"GITHUB_OUTPUT":           outFile,
		"GITHUB_STEP_SUMMARY":     summaryFile,
		"GITHUB_EVENT_NAME":       "pull_request",
		"GITHUB_EVENT_PATH":       "../../testdata/events/pull_request.json",
		"GITHUB_REF":              "refs/pull/42/merge",
		"GITHUB_SHA":              "e1e2e3e4e5e6e7e8e9e0e1e2e3e4e5e6e7e8e9e0",
		"GITHUB_HEAD_REF":         "feature/search",
		"GITHUB_BASE_REF":         "main",
		"GITHUB_REPOSITORY":       "acme/Prompt-Builder",
		"SOURCE_DATE_EPOCH":       "1795179791",
	}
	var log bytes.Buffer
	if err := image.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log)); err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, log.String())
	}

	logText := log.String()
	actiontest.MaskedFirst(t, logText, secret)
	outs := actiontest.Outputs(t, outFile)
	repo := reg.Host + "/acme/prompt-builder"
	if !strings.HasPrefix(outs["image"], repo+"@sha256:") || outs["digest"] == "" || !strings.HasSuffix(outs["image"], outs["digest"]) {
		t.Errorf("outputs image=%q digest=%q", outs["image"], outs["digest"])
	}
	// A pull request is tagged pr-<n> and with the PR head commit, not
	// the merge commit GitHub checks out.
	if want := repo + ":pr-42\n" + repo + ":sha-c0ffee0"; outs["tags"] != want {
		t.Errorf("tags output = %q, want %q", outs["tags"], want)
	}
	if !strings.Contains(outs["platform-digests"], `"linux/arm64":"sha256:`) {
		t.Errorf("platform-digests = %q", outs["platform-digests"])
	}
	summary, _ := os.ReadFile(summaryFile)
	if !strings.Contains(string(summary), "| linux/amd64 | `sha256:") || strings.Contains(string(summary), secret) {
		t.Errorf("job summary lacks the platform table or leaks the secret:\n%s", summary)
	}

	ref, _ := name.ParseReference(outs["image"])
	img, err := remote.Index(ref, remote.WithAuth(basic("ci-bot", secret)))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := img.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Errorf("pushed index has %d manifests", len(im.Manifests))
	}
}

func TestBinaryReportsMissingInputs(t *testing.T) {
	env := map[string]string{"INPUT_PLATFORMS": "linux/amd64", "INPUT_TIMEOUT": "soon"}
	var log bytes.Buffer
	err := image.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log))
	if err == nil {
		t.Fatal("run succeeded without image and base")
	}
	for _, want := range []string{`input "image" is required`, `INPUT_IMAGE`, `input "timeout": "soon" is not a duration`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// base is required unless merge is set: with the image given, its
	// absence is the error.
	env["INPUT_IMAGE"], env["INPUT_TIMEOUT"] = "127.0.0.1:1/acme/app", "1m"
	err = image.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log))
	if err == nil || !strings.Contains(err.Error(), `input "base" is required`) || !strings.Contains(err.Error(), `"merge"`) {
		t.Errorf("no base, no merge: error %v, want it to ask for base (or merge)", err)
	}
}
