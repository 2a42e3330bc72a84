package dist_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/gantry-ci/gantry/internal/dist"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// shippedSize is one shipped binary for linux/amd64: its size as released
// (stripped, -s -w) and the size of its release archive (tar, gzip -9),
// which the setup step of every job using it downloads.
type shippedSize struct {
	Binary   string
	Stripped int64
	Archive  int64
}

var (
	sizesOnce  sync.Once
	sizes      []shippedSize
	sizesBuilt time.Duration
	sizesErr   error
)

// BenchmarkShippedBinarySizes builds the release for linux/amd64 with
// scripts/dist.sh itself (every cmd/<name>, its flags: -trimpath,
// -ldflags "-s -w -buildid= …", CGO_ENABLED=0, GOEXPERIMENT=jsonv2; its
// tar.gz archives) and reports each binary's stripped size and its
// archive's size in MB (10^6 bytes): <binary>-MB and <binary>-gz-MB, and
// the totals (total-MB, total-gz-MB), with a table on stdout. The build runs once per test
// binary (a few minutes with a warm build cache: the links and gzip -9),
// whatever -count and -benchtime say; there is nothing to time per op.
func BenchmarkShippedBinarySizes(b *testing.B) {
	sizesOnce.Do(func() { sizes, sizesBuilt, sizesErr = buildRelease(b) })
	if sizesErr != nil {
		b.Fatal(sizesErr)
	}
	for b.Loop() {
	}
	b.ReportMetric(0, "ns/op")
	var stripped, archived int64
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "binary\tstripped MB\ttar.gz MB\tgz/stripped\t\n")
	for _, s := range sizes {
		b.ReportMetric(mb(s.Stripped), s.Binary+"-MB")
		b.ReportMetric(mb(s.Archive), s.Binary+"-gz-MB")
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2f\t\n", s.Binary, mb(s.Stripped), mb(s.Archive), float64(s.Archive)/float64(s.Stripped))
		stripped += s.Stripped
		archived += s.Archive
	}
	fmt.Fprintf(tw, "total (%d)\t%.1f\t%.1f\t%.2f\t\n", len(sizes), mb(stripped), mb(archived), float64(archived)/float64(stripped))
	tw.Flush()
	b.ReportMetric(mb(stripped), "total-MB")
	b.ReportMetric(mb(archived), "total-gz-MB")
	b.Logf("%d shipped binaries, linux/amd64, as scripts/dist.sh builds and packs them: %.1f MB stripped, %.1f MB in tar.gz (built in %v)",
		len(sizes), mb(stripped), mb(archived), sizesBuilt.Round(time.Second))
	// The table once per test binary, on stdout: go test keeps only the
	// first lines of a benchmark's log.
	tableOnce.Do(func() { fmt.Printf("shipped binaries, linux/amd64 (MB = 10^6 bytes):\n%s", table.String()) })
}

var tableOnce sync.Once

func mb(n int64) float64 { return float64(n) / 1e6 }

// buildRelease runs scripts/dist.sh for linux/amd64 into temporary
// directories and returns the sizes of what it made.
func buildRelease(b *testing.B) ([]shippedSize, time.Duration, error) {
	root, err := testproc.RepoRoot()
	if err != nil {
		return nil, 0, err
	}
	const sizeVersion = "v0.0.0"
	out, bins := b.TempDir(), b.TempDir()
	start := time.Now()
	cmd := exec.CommandContext(b.Context(), filepath.Join(root, "scripts", "dist.sh"), sizeVersion, out, bins, "linux/amd64")
	cmd.Dir = root
	if log, err := cmd.CombinedOutput(); err != nil {
		return nil, 0, fmt.Errorf("scripts/dist.sh: %v\n%s", err, log)
	}
	built := time.Since(start)
	entries, err := os.ReadDir(filepath.Join(bins, "linux_amd64"))
	if err != nil {
		return nil, 0, err
	}
	var list []shippedSize
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			return nil, 0, err
		}
		ai, err := os.Stat(filepath.Join(out, dist.ArchiveName(e.Name(), sizeVersion, "linux", "amd64")))
		if err != nil {
			return nil, 0, fmt.Errorf("dist.sh packed no archive of %s: %w", e.Name(), err)
		}
		list = append(list, shippedSize{Binary: e.Name(), Stripped: fi.Size(), Archive: ai.Size()})
	}
	// One binary per cmd/<name>: gantry for cmd/gantry, gantry-<name> else.
	cmds, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		return nil, 0, err
	}
	want := 0
	for _, c := range cmds {
		if c.IsDir() {
			want++
		}
	}
	if len(list) != want || want == 0 {
		return nil, 0, fmt.Errorf("dist.sh built %d binaries for %d commands under cmd/", len(list), want)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Binary < list[j].Binary })
	return list, built, nil
}
