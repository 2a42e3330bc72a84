package dist_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/dist"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// TestReleaseChain runs Gantry's own release path for one real binary on
// this machine's platform: scripts/dist.sh cross-compiles and packs
// gantry-notify (twice: the archive must be byte for byte reproducible),
// the checksums are embedded into a copy of the action.yml files as the
// release commit does, and scripts/fetch.sh, served the archive over HTTP,
// installs a gantry-notify that runs and warns about its missing inputs
// the way the stage does.
func TestReleaseChain(t *testing.T) {
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const version = "v0.0.1-test"
	platform := runtime.GOOS + "/" + runtime.GOARCH
	dist1, dist2 := t.TempDir(), t.TempDir()
	for _, out := range []string{dist1, dist2} {
		cmd := exec.CommandContext(t.Context(), filepath.Join(root, "scripts", "dist.sh"), version, out, t.TempDir(), platform)
		cmd.Env = append(os.Environ(), "GANTRY_DIST_STAGES=notify")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dist.sh: %v\n%s", err, b)
		}
	}
	name := dist.ArchiveName("gantry-notify", version, runtime.GOOS, runtime.GOARCH)
	a1, err := os.ReadFile(filepath.Join(dist1, name))
	if err != nil {
		t.Fatalf("dist.sh wrote no %s: %v", name, err)
	}
	a2, _ := os.ReadFile(filepath.Join(dist2, name))
	if sha256.Sum256(a1) != sha256.Sum256(a2) {
		t.Errorf("two dist.sh runs of the same commit packed different %s: the release is not reproducible", name)
	}
	if files, _ := os.ReadDir(dist1); len(files) != 1 {
		t.Errorf("dist.sh with GANTRY_DIST_STAGES=notify wrote %d files, want 1", len(files))
	}

	// The release commit: the checksums embedded into the action.yml files.
	sumsFile := filepath.Join(t.TempDir(), "gantry_"+version+"_checksums.txt")
	os.WriteFile(sumsFile, fmt.Appendf(nil, "%x  %s\n", sha256.Sum256(a1), name), 0o644)
	f, _ := os.Open(sumsFile)
	sums, err := dist.ParseSums(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	rel := newServedDir(t, version, dist1)
	tree := copyActions(t)
	if _, err := dist.Embed(tree, dist.Release{Version: version, URL: rel, Sums: sums}); err != nil {
		t.Fatal(err)
	}
	env := embeddedEnv(t, filepath.Join(tree, "actions", "notify", "action.yml"))

	cache := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "bash", filepath.Join(root, "scripts", "fetch.sh"), "notify")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "RUNNER_TEMP=" + t.TempDir(), "RUNNER_TOOL_CACHE=" + cache,
		"GANTRY_RELEASE=" + env["GANTRY_RELEASE"],
		"GANTRY_RELEASE_URL=" + env["GANTRY_RELEASE_URL"],
		"GANTRY_RELEASE_SHA256=" + env["GANTRY_RELEASE_SHA256"],
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetch.sh: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	bin := filepath.Join(lines[len(lines)-1], "gantry-notify")
	run := exec.CommandContext(t.Context(), bin)
	run.Env = []string{"PATH=" + os.Getenv("PATH"), "GITHUB_OUTPUT=" + filepath.Join(t.TempDir(), "out")}
	got, err := run.CombinedOutput()
	// gantry-notify without a token or webhook warns and succeeds (a Slack
	// problem never fails a job).
	if err != nil || !strings.Contains(string(got), `neither "token" nor "webhook" is set`) {
		t.Errorf("the installed gantry-notify without inputs: %v\n%s\nwant the stage's warning about the token/webhook inputs", err, got)
	}
}

// newServedDir serves dir's files under /download/<version>/ and returns
// that URL.
func newServedDir(t *testing.T, version, dir string) string {
	t.Helper()
	srv := startFileServer(t, dir)
	return srv + "/download/" + version
}

func embeddedEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var a actionYAML
	if err := yamlUnmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	for _, s := range a.Runs.Steps {
		if s.Env["GANTRY_RELEASE"] != "" {
			return s.Env
		}
	}
	t.Fatalf("%s embeds no release", path)
	return nil
}
