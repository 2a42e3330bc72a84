package workflowtest_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/ghrelease/ghreleasetest"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// TestReusableRelease runs build-and-push.yml and release.yml chained as a
// tag push does (testdata/workflows/reusable-release.yml) with act, against
// a local registry and a stand-in of the GitHub REST API: one published
// release for the tag, its notes the CHANGELOG section of the version plus
// the image by digest, the SBOMs, the signed release record and VERIFY.md
// attached byte for byte.
func TestReusableRelease(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	gh := ghreleasetest.Start(t)
	cache := t.TempDir()
	if err := scantest.Build(cache, filepath.Join(act.Repo, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	const password = "act-release-key-password-4711"
	keys := t.TempDir()
	priv, pub, err := signing.GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(keys, "cosign.key")
	write(t, keyPath, string(priv), 0o600)
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg, baseRef := registryWith(t, "library/base:1", idx)
	result, handoff := t.TempDir(), t.TempDir()
	wf := renderCaller(t, act.Repo, "reusable-release.yml", map[string]string{
		"REGISTRY":     reg.Host,
		"BASE":         baseRef.String(),
		"CACHE":        cache,
		"KEY":          keyPath,
		"KEY_PASSWORD": password,
		"API":          gh.URL,
		"TOKEN":        gh.Token,
		"RESULT":       result,
	})
	start := time.Now()
	log, err := runReusable(t.Context(), t, act, wf, map[string]string{
		"GANTRY_ACT_HANDOFF": handoff,
		"GITHUB_REPOSITORY":  "acme/prompt-builder",
	})
	t.Logf("act ran the workflow in %v", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	out := readOutputs(t, filepath.Join(result, "outputs"), log)
	image := out["image"]
	if !strings.Contains(image, "@sha256:") {
		t.Fatalf("build output image %q\n%s", image, log)
	}

	rels := gh.ReleasesForTag("acme/prompt-builder", "v1.4.0")
	if len(rels) != 1 {
		t.Fatalf("%d releases for v1.4.0 in acme/prompt-builder, want 1 (all calls: %v)\n%s", len(rels), gh.Calls(), log)
	}
	rel := rels[0]
	if rel.Draft || rel.Prerelease {
		t.Errorf("release draft=%v prerelease=%v, want a published release", rel.Draft, rel.Prerelease)
	}
	if out["release-id"] != strconv.FormatInt(rel.ID, 10) || out["notes-source"] != "changelog" || out["url"] == "" {
		t.Errorf("outputs %v, want release-id %d, notes-source changelog and a url", out, rel.ID)
	}
	for _, want := range []string{"Prompt templates can be shared by link.", "keeps the cursor position", image} {
		if !strings.Contains(rel.Body, want) {
			t.Errorf("the release notes lack %q:\n%s", want, rel.Body)
		}
	}
	for _, notWant := range []string{"Prompt history export", "Login redirect loop", "compare/v1.3.2"} {
		if strings.Contains(rel.Body, notWant) {
			t.Errorf("the release notes carry %q from outside the 1.4.0 section:\n%s", notWant, rel.Body)
		}
	}

	// The assets: every SBOM the build job wrote, the signed release record
	// and VERIFY.md, each exactly as produced.
	names := rel.AssetNames()
	sort.Strings(names)
	sboms, _ := filepath.Glob(filepath.Join(handoff, "gantry-build", "sbom", "*.json"))
	if len(sboms) < 4 {
		t.Fatalf("the build job handed over %d SBOM files, want SPDX and CycloneDX for two platforms", len(sboms))
	}
	want := map[string]string{"gantry-release.json": filepath.Join(handoff, "gantry-release", "gantry-release.json")}
	for _, f := range sboms {
		want[filepath.Base(f)] = f
	}
	for n, f := range want {
		a, ok := rel.Asset(n)
		if !ok {
			t.Errorf("asset %s missing (have %v)", n, names)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if string(a.Data) != string(b) {
			t.Errorf("asset %s differs from the file the pipeline wrote", n)
		}
	}
	var record struct {
		Digest string                     `json:"digest"`
		Stages map[string]json.RawMessage `json:"stages"`
	}
	if a, ok := rel.Asset("gantry-release.json"); ok {
		if err := json.Unmarshal(a.Data, &record); err != nil || !strings.HasSuffix(image, record.Digest) || record.Stages["sign"] == nil {
			t.Errorf("the attached release record (%v) is not the signed record of %s: digest %q, stages %v", err, image, record.Digest, keysOf(record.Stages))
		}
	}
	verify, ok := rel.Asset("VERIFY.md")
	if !ok {
		t.Fatalf("no VERIFY.md among %v", names)
	}
	for _, want := range []string{"cosign verify", "--key cosign.pub", image, "cosign verify-attestation", "spdxjson"} {
		if !strings.Contains(string(verify.Data), want) {
			t.Errorf("VERIFY.md lacks %q:\n%s", want, verify.Data)
		}
	}
	// The commands VERIFY.md prints work as printed: the cosign CLI, run
	// where cosign.pub is, accepts the image's signature and attestations
	// (plain HTTP only because the test registry is local).
	cosign, err := testproc.FindTool("cosign")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	write(t, filepath.Join(work, "cosign.pub"), string(pub), 0o644)
	var ran int
	for _, line := range strings.Split(string(verify.Data), "\n") {
		if !strings.HasPrefix(line, "cosign verify") {
			continue
		}
		ran++
		args := append(strings.Fields(strings.TrimPrefix(line, "cosign ")), "--allow-http-registry")
		cmd := exec.CommandContext(t.Context(), cosign, args...)
		cmd.Dir = work
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("VERIFY.md's %q failed: %v\n%s", line, err, b)
		}
	}
	if ran < 3 {
		t.Errorf("VERIFY.md holds %d cosign commands, want the signature and the attestations:\n%s", ran, verify.Data)
	}
	for _, line := range strings.Split(log, "\n") {
		if (strings.Contains(line, gh.Token) || strings.Contains(line, password)) && !strings.Contains(line, "add-mask") {
			t.Errorf("a secret appears in the workflow log: %s", line)
		}
	}
}
