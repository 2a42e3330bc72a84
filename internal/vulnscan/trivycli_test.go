package vulnscan_test

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/vulnscan"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

// trivyCLI runs the trivy CLI offline against a cache dir holding the DB
// and returns the vulnerability IDs of its JSON report.
func trivyCLI(t testing.TB, cache string, args ...string) map[string]bool {
	t.Helper()
	bin := testproc.Tool(t, "trivy")
	base := []string{"--cache-dir", cache, "--skip-db-update", "--skip-java-db-update", "--offline-scan",
		"--skip-check-update", "--skip-version-check", "--disable-telemetry", "--no-progress", "--quiet",
		"--cache-backend", "memory", "--format", "json"}
	cmd := exec.CommandContext(t.Context(), bin, append(args[:1:1], append(base, args[1:]...)...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("trivy %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rep struct {
		Results []struct {
			Vulnerabilities []struct{ VulnerabilityID string }
		}
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("trivy JSON: %v\n%s", err, out)
	}
	got := map[string]bool{}
	for _, r := range rep.Results {
		for _, v := range r.Vulnerabilities {
			got[v.VulnerabilityID] = true
		}
	}
	return got
}

// TestSameIDsAsTrivyCLI scans the same image (by digest, one platform, from
// the plain-HTTP loopback registry) and the same repository with the real
// trivy v0.74.0 CLI and the same DB, and expects the same vulnerability IDs.
func TestSameIDsAsTrivyCLI(t *testing.T) {
	reg := startRegistry(t)
	tag := pushFixtureImage(t, reg)
	ref, _ := name.ParseReference(tag)
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	digestRef := ref.Context().Digest(desc.Digest.String()).String()
	cache := fixtureCache(t)
	repo := copyRepo(t)

	in := baseInputs(t, cache)
	in.Image, in.Path, in.Platforms = digestRef, repo, []string{"linux/arm64"}
	in.Scanners = []string{"vuln"}
	out, err := vulnscan.Run(t.Context(), in)
	if err != nil && !strings.Contains(err.Error(), "severity gate") {
		t.Fatal(err)
	}
	if len(out.Report.Targets) != 2 {
		t.Fatalf("targets %d, want the arm64 image and the path", len(out.Report.Targets))
	}
	ours := func(sub string) []string {
		return slices.Sorted(maps.Keys(ids(findingsOf(out.Report, sub), vulnscan.KindVulnerability)))
	}

	cliCache := t.TempDir()
	if err := scantest.Copy(cache, cliCache); err != nil {
		t.Fatal(err)
	}
	cliImage := slices.Sorted(maps.Keys(trivyCLI(t, cliCache, "image", "--scanners", "vuln", "--image-src", "remote", "--platform", "linux/arm64", digestRef)))
	if got := ours("(linux/arm64)"); !slices.Equal(got, cliImage) || len(got) != 3 {
		t.Errorf("image vulnerability IDs: gantry-scan %v, trivy CLI %v (want the same 3)", got, cliImage)
	}
	cliFS := slices.Sorted(maps.Keys(trivyCLI(t, cliCache, "fs", "--scanners", "vuln", repo)))
	if got := ours("path "); !slices.Equal(got, cliFS) || len(got) != 2 {
		t.Errorf("repository vulnerability IDs: gantry-scan %v, trivy CLI %v (want the same 2)", got, cliFS)
	}
}
