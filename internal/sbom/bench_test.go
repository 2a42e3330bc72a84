package sbom_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/sbom"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// BenchmarkSBOMVsSyftCLI times the SBOMs of both platforms of the test
// image (an Alpine and a Debian root, each with the sample app's Go binary)
// in SPDX and CycloneDX, all reading the same registry:
//
//   - gantry-sbom: sbom.Run in this process (what the build bench does for
//     gantry-build). Later iterations profit from one-time initialisation
//     in syft and its dependencies that a fresh process pays again.
//   - gantry-sbom-binary: the gantry-sbom binary started afresh each time
//     with INPUT_* variables, as an Actions step runs it.
//   - syft-cli: the syft CLI run once per platform by manifest digest, with
//     both formats as outputs of each run.
//
// syft-cli reports gantry/syft and gantry-binary/syft: each gantry time
// per op over syft's (the goal is <= 0.6).
//
// It needs the syft binary: SYFT=path, or bin/syft from `make tools`.
func BenchmarkSBOMVsSyftCLI(b *testing.B) {
	syft := testproc.Tool(b, "syft")
	ti := pushTestImage(b)
	work := b.TempDir()
	bin := filepath.Join(work, "gantry-sbom")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/sbom")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building gantry-sbom: %v\n%s", err, out)
	}

	var gantryPerOp, binaryPerOp time.Duration
	b.Run("gantry-sbom", func(b *testing.B) {
		for b.Loop() {
			_, err := sbom.Run(b.Context(), sbom.Inputs{
				Image: ti.index, Formats: []string{"spdx-json", "cyclonedx-json"}, OutputDir: filepath.Join(work, "gantry"),
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		gantryPerOp = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(gantryPerOp.Milliseconds()), "ms/op")
	})
	b.Run("gantry-sbom-binary", func(b *testing.B) {
		env := []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + work, "TMPDIR=" + os.TempDir(),
			"INPUT_IMAGE=" + ti.index, "INPUT_OUTPUT-DIR=" + filepath.Join(work, "binary"),
			"INPUT_RELEASE-FILE=" + filepath.Join(work, "none.json"), "GITHUB_OUTPUT=" + filepath.Join(work, "github-output"),
		}
		for b.Loop() {
			cmd := exec.CommandContext(b.Context(), bin)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("gantry-sbom: %v\n%s", err, out)
			}
		}
		binaryPerOp = b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(binaryPerOp.Milliseconds()), "ms/op")
	})
	b.Run("syft-cli", func(b *testing.B) {
		env := append(os.Environ(), syftEnv(filepath.Join(work, "syft-home"))...)
		for b.Loop() {
			for platform, manifest := range ti.platforms {
				base := filepath.Join(work, "syft", filepath.Base(filepath.Dir(platform))+"-"+filepath.Base(platform))
				cmd := exec.CommandContext(b.Context(), syft, "registry:"+ti.repo+"@"+manifest, "-q",
					"-o", "spdx-json="+base+".spdx.json", "-o", "cyclonedx-json="+base+".cyclonedx.json")
				cmd.Env = env
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("syft: %v\n%s", err, out)
				}
			}
		}
		perOp := b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(float64(perOp.Milliseconds()), "ms/op")
		if gantryPerOp > 0 && binaryPerOp > 0 {
			b.ReportMetric(float64(gantryPerOp)/float64(perOp), "gantry/syft")
			b.ReportMetric(float64(binaryPerOp)/float64(perOp), "gantry-binary/syft")
		}
	})
}
