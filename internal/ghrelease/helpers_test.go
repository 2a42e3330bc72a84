package ghrelease_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/ghrelease"
	"github.com/gantry-ci/gantry/internal/ghrelease/ghreleasetest"
	"github.com/gantry-ci/gantry/internal/release"
)

const (
	repo   = "acme/prompt-builder"
	image  = "ghcr.io/acme/prompt-builder"
	index  = "sha256:3b0b5b0c6f2b7e4f1a4a2c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b"
	amd64  = "sha256:aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01aa01"
	arm64  = "sha256:bb02bb02bb02bb02bb02bb02bb02bb02bb02bb02bb02bb02bb02bb02bb02bb02"
	commit = "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5"
	// identity is what a deploy of this repository verifies.
	identity = `^https://github\.com/acme/prompt-builder/\.github/workflows/release\.yml@refs/tags/v.*$`
)

// testLog records what the stage logs.
type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) Infof(format string, args ...any) { l.add(fmt.Sprintf(format, args...)) }
func (l *testLog) Warningf(format string, args ...any) {
	l.add("warning: " + fmt.Sprintf(format, args...))
}
func (l *testLog) Group(title string) func() { l.add("group: " + title); return func() {} }

func (l *testLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// sleeps records the waits between retries instead of waiting.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// env is one test's stand-in GitHub, workspace and inputs.
type env struct {
	srv    *ghreleasetest.Server
	dir    string
	log    *testLog
	sleeps *sleeps
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{srv: ghreleasetest.Start(t), dir: t.TempDir(), log: &testLog{}, sleeps: &sleeps{}}
	cl, err := os.ReadFile(filepath.Join("testdata", "changelog", "keepachangelog.md"))
	if err != nil {
		t.Fatal(err)
	}
	e.write(t, "CHANGELOG.md", cl)
	e.write(t, "dist/app_linux_amd64.tar.gz", payload(70000, 1))
	e.write(t, "dist/app_linux_arm64.tar.gz", payload(65000, 7))
	return e
}

// payload is binary content with every byte value, NULs included.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
	return b
}

func (e *env) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// inputs are the action's defaults for tag v1.2.3 of repo.
func (e *env) inputs() ghrelease.Inputs {
	return ghrelease.Inputs{
		Tag:                         "v1.2.3",
		Repository:                  repo,
		Token:                       ghreleasetest.Token,
		APIURL:                      e.srv.URL,
		Changelog:                   "CHANGELOG.md",
		GenerateNotes:               "auto",
		Prerelease:                  "auto",
		MakeLatest:                  "auto",
		VerifyCertificateOIDCIssuer: "https://token.actions.githubusercontent.com",
		Timeout:                     time.Minute,
		Git:                         ghrelease.RunContext{ServerURL: "https://github.com", SHA: commit},
		Dir:                         e.dir,
		Log:                         e.log,
		Sleep:                       e.sleeps.sleep,
	}
}

// run runs the stage and checks that the token appears nowhere a person
// or another step could read it.
func (e *env) run(t *testing.T, in ghrelease.Inputs) (ghrelease.Outputs, error) {
	t.Helper()
	out, err := ghrelease.Run(t.Context(), in)
	texts := map[string]string{"log": e.log.String(), "notes": out.Notes, "VERIFY.md": out.Verify, "summary": ghrelease.Summary(out), "url": out.URL}
	if err != nil {
		texts["error"] = err.Error()
	}
	for what, s := range texts {
		if strings.Contains(s, ghreleasetest.Token) {
			t.Errorf("the token appears in the %s:\n%s", what, s)
		}
	}
	for _, r := range e.srv.Releases(repo) {
		if strings.Contains(r.Body+r.Name, ghreleasetest.Token) {
			t.Errorf("the token appears in release %d", r.ID)
		}
	}
	return out, err
}

// one returns the only release of tag, failing when there is not exactly
// one.
func (e *env) one(t *testing.T, tag string) ghreleasetest.Release {
	t.Helper()
	rels := e.srv.ReleasesForTag(repo, tag)
	if len(rels) != 1 {
		t.Fatalf("%d releases for %s, want exactly 1: %+v", len(rels), tag, rels)
	}
	return rels[0]
}

// record writes a release record as gantry-build and gantry-sign leave it;
// sign is the sign section (nil for none).
func (e *env) record(t *testing.T, sign map[string]any) string {
	t.Helper()
	rec := release.Record{
		Image:      image + "@" + index,
		Repository: image,
		Digest:     index,
		Tags:       []string{image + ":1.2.3", image + ":1.2", image + ":latest"},
		Platforms: []release.Platform{
			{Platform: "linux/amd64", Digest: amd64, Size: 1271},
			{Platform: "linux/arm64", Digest: arm64, Size: 1271},
		},
		Source: release.Source{
			Repository: repo, URL: "https://github.com/" + repo, Revision: commit,
			Ref: "refs/tags/v1.2.3", Event: "push", RunURL: "https://github.com/" + repo + "/actions/runs/4242",
		},
		Created: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
	}
	if err := rec.SetStage("build", map[string]any{"pushed": true}); err != nil {
		t.Fatal(err)
	}
	if sign != nil {
		if err := rec.SetStage("sign", sign); err != nil {
			t.Fatal(err)
		}
	}
	p, err := release.Write(filepath.Join(e.dir, "gantry-release.json"), rec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// keylessSign is the sign section of a keyless, recursive run with SBOMs,
// provenance and the scan attested.
func keylessSign() map[string]any {
	return map[string]any{
		"mode": "sign", "signer": "keyless (Fulcio https://fulcio.sigstore.dev)", "verified": false,
		"signed": []map[string]any{
			{"digest": index, "types": []string{"signature", "provenance", "scan"}},
			{"digest": amd64, "platform": "linux/amd64", "types": []string{"sbom/spdx", "sbom/cyclonedx", "signature", "provenance"}},
			{"digest": arm64, "platform": "linux/arm64", "types": []string{"sbom/spdx", "sbom/cyclonedx", "signature", "provenance"}},
		},
	}
}

func keySign() map[string]any {
	return map[string]any{
		"mode": "sign", "signer": "key SHA256:kq3cZ0uVx0vVw2dEj7VlJ1Hc2k2sNQ5C3U0a5f8b9cQ", "verified": false,
		"signed": []map[string]any{
			{"digest": index, "types": []string{"signature", "provenance"}},
			{"digest": amd64, "platform": "linux/amd64", "types": []string{"signature", "provenance"}},
		},
	}
}
