package vulnscan_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/vulnscan"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

// BenchmarkScanImageVsTrivyCLI times gantry-scan's scan of one image (the
// crafted Alpine image, linux/amd64, by digest from a loopback registry,
// with the fixture DB offline) against the trivy v0.74.0 CLI doing the same
// scan with the same DB in its own cache dir, alternating in the same loop
// so machine noise hits both alike. gantry-scan's time includes everything
// the stage does (resolve, DB check, scan, SARIF/JSON/attestation files);
// the CLI's includes starting the process. One sub-benchmark per scanner
// set. Reported: gantry-ms/op, trivy-ms/op and gantry/trivy (goal: <= 1).
//
// It needs the trivy CLI: TRIVY=path, or bin/trivy from `make tools`.
func BenchmarkScanImageVsTrivyCLI(b *testing.B) {
	trivy := testproc.Tool(b, "trivy")
	reg := startRegistry(b)
	tag := pushFixtureImage(b, reg)
	ref, _ := name.ParseReference(tag)
	desc, err := remote.Head(ref)
	if err != nil {
		b.Fatal(err)
	}
	image := ref.Context().Digest(desc.Digest.String()).String()
	cache := fixtureCache(b)
	cliCache := b.TempDir()
	if err := scantest.Copy(cache, cliCache); err != nil {
		b.Fatal(err)
	}
	home := b.TempDir()

	for _, sc := range []string{"vuln", "vuln,secret,misconfig,license"} {
		b.Run(strings.ReplaceAll(sc, ",", "+"), func(b *testing.B) {
			in := baseInputs(b, cache)
			in.Image, in.Platforms, in.Scanners = image, []string{"linux/amd64"}, strings.Split(sc, ",")
			in.Severity = nil // no gate: time the scan, not the verdict
			args := []string{"image", "--cache-dir", cliCache, "--skip-db-update", "--skip-java-db-update", "--offline-scan",
				"--skip-check-update", "--skip-version-check", "--disable-telemetry", "--no-progress", "--quiet",
				"--cache-backend", "memory", "--format", "json", "--output", os.DevNull,
				"--image-src", "remote", "--platform", "linux/amd64", "--scanners", sc, image}
			sideBySide(b, "trivy", in, func() *exec.Cmd {
				cmd := exec.CommandContext(b.Context(), trivy, args...)
				cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home)
				return cmd
			})
		})
	}
}

// BenchmarkHistoryVsGitleaksCLI times gantry-scan's history scan of
// Gantry's own repository (every commit HEAD reaches) against the gitleaks
// v8.30.1 CLI scanning it with the same rules and git log options,
// alternating in one loop. gantry-scan's time includes its rev-list count
// and its report files; the CLI's, starting the process. Reported:
// gantry-ms/op, gitleaks-ms/op and gantry/gitleaks (goal: <= 1).
//
// It needs the gitleaks CLI: GITLEAKS=path, or bin/gitleaks from `make
// tools`. The report goes to a file of its own: gitleaks removes its
// report path after checking that it can write there, /dev/null included.
func BenchmarkHistoryVsGitleaksCLI(b *testing.B) {
	gitleaks := testproc.Tool(b, "gitleaks")
	repo := root(b)
	rules := filepath.Join(b.TempDir(), "rules.toml")
	if err := os.WriteFile(rules, []byte(vulnscan.GitleaksRules), 0o644); err != nil {
		b.Fatal(err)
	}
	in := baseInputs(b, "")
	in.Scanners, in.Path, in.Severity = []string{"history"}, repo, nil
	args := []string{"git", "--no-banner", "--redact", "--exit-code=0", "--config=" + rules,
		"--log-opts=" + vulnscan.HistoryLogOpts + " HEAD", "--report-format=json", "--report-path=" + filepath.Join(b.TempDir(), "report.json"), repo}
	sideBySide(b, "gitleaks", in, func() *exec.Cmd {
		cmd := exec.CommandContext(b.Context(), gitleaks, args...)
		cmd.Dir = b.TempDir()
		return cmd
	})
}

// sideBySide runs gantry-scan's Run and the CLI alternately in one loop,
// so machine noise hits both alike, and reports gantry-ms/op,
// <cli>-ms/op and gantry/<cli>.
func sideBySide(b *testing.B, cli string, in vulnscan.Inputs, command func() *exec.Cmd) {
	var gantry, other time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := vulnscan.Run(b.Context(), in); err != nil {
			b.Fatal(err)
		}
		gantry += time.Since(start)

		start = time.Now()
		if out, err := command().CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", cli, err, out)
		}
		other += time.Since(start)
	}
	b.ReportMetric(float64(gantry.Milliseconds())/float64(b.N), "gantry-ms/op")
	b.ReportMetric(float64(other.Milliseconds())/float64(b.N), cli+"-ms/op")
	b.ReportMetric(float64(gantry)/float64(other), "gantry/"+cli)
}
