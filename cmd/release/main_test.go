package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/actioncheck"
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/ghrelease"
	"github.com/gantry-ci/gantry/internal/ghrelease/ghreleasetest"
	"github.com/gantry-ci/gantry/internal/release"
)

const identity = `^https://github\.com/acme/prompt-builder/\.github/workflows/release\.yml@refs/tags/v.*$`

// TestBinary builds gantry-release and runs it as the composite action
// does: every input as INPUT_* (hyphens kept, action.yml defaults passed
// through), the GitHub context of a tag push, outputs and summary to the
// runner's files, the stand-in GitHub as GITHUB_API_URL.
func TestBinary(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "gantry-release")
	// make build's flags: the build cache serves the link it made.
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("publishes and writes the outputs", func(t *testing.T) {
		t.Parallel()
		srv := ghreleasetest.Start(t)
		ws := workspace(t)
		env, outFile, summaryFile := actionEnv(t, srv, ws, map[string]string{
			"INPUT_ASSETS":       "dist/*.tar.gz\n",
			"INPUT_RELEASE-FILE": "gantry-release.json",
			"INPUT_VERIFY-CERTIFICATE-IDENTITY-REGEXP": identity,
		})
		stdout, code := runBinary(t, bin, ws, env)
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, stdout)
		}
		actiontest.MaskedFirst(t, stdout, ghreleasetest.Token)

		rels := srv.ReleasesForTag("acme/prompt-builder", "v1.2.3")
		if len(rels) != 1 || rels[0].Draft {
			t.Fatalf("releases %+v, want one published release", rels)
		}
		rel := rels[0]
		out := actiontest.Outputs(t, outFile)
		if out["release-id"] != strconv.FormatInt(rel.ID, 10) {
			t.Errorf("release-id = %q, want %d", out["release-id"], rel.ID)
		}
		if want := srv.URL + "/acme/prompt-builder/releases/tag/v1.2.3"; out["url"] != want {
			t.Errorf("url = %q, want %q", out["url"], want)
		}
		if out["notes-source"] != "changelog" {
			t.Errorf("notes-source = %q", out["notes-source"])
		}
		var assets []string
		if err := json.Unmarshal([]byte(out["assets"]), &assets); err != nil {
			t.Fatalf("assets output %q is not a JSON list: %v", out["assets"], err)
		}
		if want := []string{"app_linux_amd64.tar.gz", "app_linux_arm64.tar.gz", "gantry-release.json", "VERIFY.md"}; !slices.Equal(assets, want) || !slices.Equal(rel.AssetNames(), want) {
			t.Errorf("assets output %v, release assets %v, want %v", assets, rel.AssetNames(), want)
		}
		doc, _ := rel.Asset("VERIFY.md")
		if !strings.Contains(string(doc.Data), "cosign verify ghcr.io/acme/prompt-builder@sha256:3b0b") {
			t.Errorf("VERIFY.md:\n%s", doc.Data)
		}
		summary, _ := os.ReadFile(summaryFile)
		if !strings.Contains(string(summary), "### Gantry release [v1.2.3]("+out["url"]+")") || !strings.Contains(string(summary), "[app_linux_amd64.tar.gz]") || !strings.Contains(string(summary), "16.0 KiB") {
			t.Errorf("summary:\n%s", summary)
		}
	})

	t.Run("a missing file fails before GitHub is called", func(t *testing.T) {
		t.Parallel()
		srv := ghreleasetest.Start(t)
		ws := workspace(t)
		env, outFile, _ := actionEnv(t, srv, ws, map[string]string{"INPUT_ASSETS": "dist/*.tar.gz\ndist/*.deb"})
		stdout, code := runBinary(t, bin, ws, env)
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, stdout)
		}
		if !strings.Contains(stdout, `::error::input "assets": pattern "dist/*.deb" matches no file`) {
			t.Errorf("no error annotation naming the input and pattern:\n%s", stdout)
		}
		actiontest.MaskedFirst(t, stdout, ghreleasetest.Token)
		if calls := srv.Calls(); len(calls) != 0 {
			t.Errorf("GitHub was called: %v", calls)
		}
		if b, _ := os.ReadFile(outFile); len(b) != 0 {
			t.Errorf("outputs written for a failed step: %s", b)
		}
	})
}

// workspace is a checkout after a build: a changelog, two tarballs and the
// release record.
func workspace(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	cl, err := os.ReadFile(filepath.Join("..", "..", "internal", "ghrelease", "testdata", "changelog", "keepachangelog.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"CHANGELOG.md":                cl,
		"dist/app_linux_amd64.tar.gz": bytes.Repeat([]byte{0x1f, 0x8b, 0x00, 0xff}, 4096),
		"dist/app_linux_arm64.tar.gz": bytes.Repeat([]byte{0x1f, 0x8b, 0x01, 0x7f}, 3000),
	}
	for name, data := range files {
		p := filepath.Join(ws, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := release.Record{
		Image:      "ghcr.io/acme/prompt-builder@sha256:3b0b5b0c6f2b7e4f1a4a2c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b",
		Repository: "ghcr.io/acme/prompt-builder",
		Digest:     "sha256:3b0b5b0c6f2b7e4f1a4a2c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b",
		Platforms:  []release.Platform{{Platform: "linux/amd64", Digest: "sha256:aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01"}},
		Created:    time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
	}
	rec.SetStage("sign", map[string]any{"mode": "sign", "signer": "keyless (Fulcio https://fulcio.sigstore.dev)",
		"signed": []map[string]any{{"digest": rec.Digest, "types": []string{"signature", "provenance"}}}})
	if _, err := release.Write(filepath.Join(ws, "gantry-release.json"), rec); err != nil {
		t.Fatal(err)
	}
	return ws
}

// actionEnv is the environment the composite action gives gantry-release:
// every input with action.yml's default unless overridden, and a tag push.
func actionEnv(t *testing.T, srv *ghreleasetest.Server, ws string, inputs map[string]string) (env []string, outFile, summaryFile string) {
	t.Helper()
	dir := t.TempDir()
	outFile, summaryFile = filepath.Join(dir, "github-output"), filepath.Join(dir, "summary.md")
	for _, f := range []string{outFile, summaryFile} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{
		"GITHUB_OUTPUT":       outFile,
		"GITHUB_STEP_SUMMARY": summaryFile,
		"GITHUB_REF":          "refs/tags/v1.2.3",
		"GITHUB_REF_NAME":     "v1.2.3",
		"GITHUB_REF_TYPE":     "tag",
		"GITHUB_REPOSITORY":   "acme/prompt-builder",
		"GITHUB_API_URL":      srv.URL,
		"GITHUB_SERVER_URL":   "https://github.com",
		"GITHUB_SHA":          "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"INPUT_TOKEN":         ghreleasetest.Token,
	}
	for _, f := range ghaction.InputFields(ghrelease.Inputs{}) {
		if _, ok := vars[ghaction.InputName(f.Name)]; !ok {
			vars[ghaction.InputName(f.Name)] = f.Default
		}
	}
	for k, v := range inputs {
		vars[k] = v
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env, outFile, summaryFile
}

func runBinary(t *testing.T, bin, dir string, env []string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), 0
}

// TestActionMatchesInputs checks actions/release/action.yml against the Go
// Inputs and Outputs the way gantry check-actions does.
func TestActionMatchesInputs(t *testing.T) {
	t.Parallel()
	a, err := actioncheck.Load(filepath.Join("..", "..", "actions", "release", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	stage := actioncheck.Stage{Name: "release", Binary: "gantry-release", Inputs: ghrelease.Inputs{}, Outputs: ghrelease.Outputs{}}
	problems := append(actioncheck.CheckSafety(a), actioncheck.CheckStage(a, stage)...)
	for _, p := range problems {
		t.Error(p)
	}
}
