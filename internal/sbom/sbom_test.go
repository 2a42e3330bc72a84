package sbom_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/release"
	"github.com/gantry-ci/gantry/internal/sbom"
)

// recorder is a ghaction.Logger that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	infos    []string
	warnings []string
}

func (r *recorder) Infof(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infos = append(r.infos, fmt.Sprintf(format, args...))
}

func (r *recorder) Warningf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

func (r *recorder) Group(string) func() { return func() {} }

// fast retries, so a test of an unreachable registry takes milliseconds.
var fastRetry = remote.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 1}

// TestTwoPlatformIndex is the stage's main path: the build stage's tag
// given instead of a digest, both platforms, both formats, and a release
// record to add to.
func TestTwoPlatformIndex(t *testing.T) {
	t.Parallel()
	ti := pushTestImage(t)
	work := t.TempDir()
	outDir := filepath.Join(work, "sbom")
	recPath := filepath.Join(work, "gantry-release.json")
	indexDigest := ti.index[strings.Index(ti.index, "@")+1:]
	if _, err := release.Write(recPath, release.Record{Image: ti.index, Digest: indexDigest}); err != nil {
		t.Fatal(err)
	}

	log := &recorder{}
	start := time.Now()
	out, err := sbom.Run(t.Context(), sbom.Inputs{
		Image:       ti.tag,
		Formats:     []string{"spdx-json", "cyclonedx-json"},
		OutputDir:   outDir,
		ReleaseFile: recPath,
		Timeout:     2 * time.Minute,
		Log:         log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("two platforms cataloged in %v", time.Since(start).Round(time.Millisecond))

	// The tag was resolved once, with a warning, and only the digest used.
	if out.Digest != ti.index {
		t.Errorf("digest output = %q, want the index by digest %q", out.Digest, ti.index)
	}
	if len(log.warnings) != 1 || !strings.Contains(log.warnings[0], ti.tag+" is a tag") || !strings.Contains(log.warnings[0], indexDigest) {
		t.Errorf("want one warning naming the tag and the digest it resolved to, got %q", log.warnings)
	}

	// Both platforms, both formats, named <os>-<arch>.<format>.json; the
	// attestation manifest is not a platform.
	wantFiles := map[string][]string{
		"linux/amd64": {filepath.Join(outDir, "linux-amd64.spdx.json"), filepath.Join(outDir, "linux-amd64.cyclonedx.json")},
		"linux/arm64": {filepath.Join(outDir, "linux-arm64.spdx.json"), filepath.Join(outDir, "linux-arm64.cyclonedx.json")},
	}
	if fmt.Sprint(out.Files) != fmt.Sprint(wantFiles) {
		t.Errorf("sbom-files = %v, want %v", out.Files, wantFiles)
	}
	entries, _ := os.ReadDir(outDir)
	if len(entries) != 4 {
		t.Errorf("output-dir holds %d entries, want the 4 SBOMs and nothing else", len(entries))
	}

	for platform, want := range expected {
		files := out.Files[platform]
		if len(files) != 2 {
			t.Fatalf("%s: files %v", platform, files)
		}
		manifest := ti.platforms[platform]
		spdx, cdx := readSPDX(t, files[0]), readCycloneDX(t, files[1])
		for format, set := range map[string]map[string]bool{"spdx": spdx.packageSet(), "cyclonedx": cdx.packageSet()} {
			for _, p := range want.has {
				if !set[p] {
					t.Errorf("%s %s SBOM lacks %s; has %v", platform, format, p, slices.Sorted(mapKeys(set)))
				}
			}
			for _, p := range want.hasNot {
				if set[p] {
					t.Errorf("%s %s SBOM has %s, which is in the other platform only", platform, format, p)
				}
			}
			if len(set) != out.Packages[platform] {
				t.Errorf("%s %s SBOM lists %d packages, the packages output says %d", platform, format, len(set), out.Packages[platform])
			}
		}
		// The subject is the platform manifest, by repository and digest.
		if c := cdx.Metadata.Component; c.Name != ti.repo || c.Version != manifest {
			t.Errorf("%s CycloneDX subject = %s@%s, want %s@%s", platform, c.Name, c.Version, ti.repo, manifest)
		}
		if !strings.Contains(spdx.Name, ti.repo) {
			t.Errorf("%s SPDX document name %q does not name the repository", platform, spdx.Name)
		}
		if !spdxDescribes(spdx, ti.repo, manifest) {
			t.Errorf("%s SPDX document does not describe %s@%s: %+v", platform, ti.repo, manifest, spdx.Packages)
		}
	}

	// Per-platform details for the summary and the record.
	if len(out.Platforms) != 2 {
		t.Fatalf("platforms = %+v", out.Platforms)
	}
	for _, p := range out.Platforms {
		if p.Digest != ti.platforms[p.Platform] {
			t.Errorf("%s: digest %s, want the manifest %s", p.Platform, p.Digest, ti.platforms[p.Platform])
		}
		total := 0
		for _, n := range p.ByType {
			total += n
		}
		if total != p.Packages || p.ByType["go-module"] < 5 {
			t.Errorf("%s: by type %v does not add up to %d or lacks the Go modules", p.Platform, p.ByType, p.Packages)
		}
	}
	if out.Platforms[0].ByType["apk"] != 3 || out.Platforms[1].ByType["deb"] != 2 {
		t.Errorf("apk count on amd64 = %d (want 3), deb count on arm64 = %d (want 2)", out.Platforms[0].ByType["apk"], out.Platforms[1].ByType["deb"])
	}
	summary := sbom.Summary(out)
	for _, want := range []string{ti.platforms["linux/arm64"], "apk 3", "deb 2", "linux-amd64.cyclonedx.json"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}

	// Each layer blob was pulled once: both formats come from one catalog.
	for platform := range ti.platforms {
		for _, d := range ti.layerDigests(t, platform) {
			if n := ti.blobGets.get(d); n != 1 {
				t.Errorf("%s: layer %s fetched %d times, want once", platform, d, n)
			}
		}
	}

	// The release record gained an sbom section.
	rec, err := release.Read(recPath)
	if err != nil {
		t.Fatal(err)
	}
	if out.ReleaseFile == "" || !strings.Contains(string(rec.Stages["sbom"]), ti.platforms["linux/arm64"]) || !strings.Contains(string(rec.Stages["sbom"]), "linux-arm64.spdx.json") {
		t.Errorf("release record sbom section = %s (release file %q)", rec.Stages["sbom"], out.ReleaseFile)
	}
}

// spdxDescribes reports whether the document's subject package is the
// repository at the manifest digest.
func spdxDescribes(d spdxDoc, repo, digest string) bool {
	for _, p := range d.Packages {
		if d.describes(p.SPDXID) && p.Name == repo && p.VersionInfo == digest {
			return true
		}
	}
	return false
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// A single-platform image (a manifest, not an index), by digest, one
// format, and no release record: only that file is written, nothing else.
func TestSinglePlatformManifest(t *testing.T) {
	t.Parallel()
	ti := pushTestImage(t)
	img := ti.images["linux/arm64"]
	d, _ := img.Digest()
	ref, _ := name.NewDigest(ti.repo + "-arm64@" + d.String())
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	log := &recorder{}
	out, err := sbom.Run(t.Context(), sbom.Inputs{
		Image:       ref.String(),
		Formats:     []string{"cyclonedx-json"},
		OutputDir:   filepath.Join(work, "out"),
		ReleaseFile: filepath.Join(work, "gantry-release.json"),
		Log:         log,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(work, "out", "linux-arm64.cyclonedx.json")
	if len(out.Files) != 1 || len(out.Files["linux/arm64"]) != 1 || out.Files["linux/arm64"][0] != want {
		t.Errorf("sbom-files = %v, want only %s", out.Files, want)
	}
	if out.Digest != ref.String() || len(log.warnings) != 0 {
		t.Errorf("digest = %q (want %s), warnings %q", out.Digest, ref, log.warnings)
	}
	cdx := readCycloneDX(t, want)
	if cdx.Metadata.Component.Version != d.String() || !cdx.packageSet()["tzdata@2025b-0+deb12u1"] {
		t.Errorf("CycloneDX subject %+v, packages %v", cdx.Metadata.Component, cdx.packageSet())
	}
	if _, err := os.Stat(filepath.Join(work, "gantry-release.json")); !os.IsNotExist(err) {
		t.Errorf("a release record was created where there was none: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(work, "out"))
	if len(entries) != 1 {
		t.Errorf("output-dir holds %d entries, want 1", len(entries))
	}
}

// Asking for one platform of the index catalogs that one only.
func TestPlatformsInput(t *testing.T) {
	t.Parallel()
	ti := pushTestImage(t)
	work := t.TempDir()
	out, err := sbom.Run(t.Context(), sbom.Inputs{
		Image: ti.index, Formats: []string{"spdx-json"}, OutputDir: work, Platforms: []string{"linux/arm64"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Files) != 1 || out.Packages["linux/arm64"] == 0 {
		t.Errorf("sbom-files %v packages %v, want linux/arm64 only", out.Files, out.Packages)
	}
	for _, d := range ti.layerDigests(t, "linux/amd64") {
		if n := ti.blobGets.get(d); n != 0 {
			t.Errorf("linux/amd64 layer %s fetched %d times though only linux/arm64 was asked for", d, n)
		}
	}
}

// Bad input fails with an error that names the input and the fix, and
// leaves no output behind.
func TestErrorsLeaveNoOutput(t *testing.T) {
	t.Parallel()
	ti := pushTestImage(t)
	closed := closedAddr(t)
	cases := []struct {
		name string
		in   sbom.Inputs
		want []string
	}{
		{
			name: "unknown platform",
			in:   sbom.Inputs{Image: ti.index, Platforms: []string{"linux/arm64", "linux/s390x"}},
			want: []string{`input "platforms"`, "linux/s390x", "linux/amd64, linux/arm64"},
		},
		{
			name: "unknown format",
			in:   sbom.Inputs{Image: ti.index, Formats: []string{"spdx-json", "spdx-tag-value"}},
			want: []string{`input "formats"`, `"spdx-tag-value"`, "spdx-json, cyclonedx-json"},
		},
		{
			name: "unreachable registry",
			in:   sbom.Inputs{Image: closed + "/acme/app@sha256:" + strings.Repeat("a", 64)},
			want: []string{`input "image"`, closed, "registry"},
		},
		{
			name: "unreachable registry with a tag",
			in:   sbom.Inputs{Image: closed + "/acme/app:1.0"},
			want: []string{`input "image"`, "is a tag", "pass repo@sha256:"},
		},
		{
			name: "manifest that does not exist",
			in:   sbom.Inputs{Image: ti.repo + "@sha256:" + strings.Repeat("b", 64)},
			want: []string{`input "image"`, "MANIFEST_UNKNOWN"},
		},
		{
			name: "malformed platform",
			in:   sbom.Inputs{Image: ti.index, Platforms: []string{"arm64"}},
			want: []string{`input "platforms"`, `"arm64" is not os/arch`},
		},
		{
			name: "half the credentials",
			in:   sbom.Inputs{Image: ti.index, RegistryUsername: "ci-bot"},
			want: []string{`"registry-username" and "registry-password" go together`},
		},
		{
			name: "release record that is not one",
			in:   sbom.Inputs{Image: ti.index, ReleaseFile: writeFile(t, "not json")},
			want: []string{`input "release-file"`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			outDir := filepath.Join(t.TempDir(), "sbom")
			c.in.OutputDir = outDir
			if c.in.Formats == nil {
				c.in.Formats = []string{"spdx-json", "cyclonedx-json"}
			}
			c.in.Backoff = fastRetry
			_, err := sbom.Run(t.Context(), c.in)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, statErr := os.Stat(outDir); !os.IsNotExist(statErr) {
				entries, _ := os.ReadDir(outDir)
				t.Errorf("output-dir exists after a failed run (%d entries)", len(entries))
			}
		})
	}
}

// When one platform fails (its app layer is gone from the registry), the
// other platform's SBOMs are not written either: no partial output. One
// job at a time, so linux/amd64 is done before linux/arm64 fails.
func TestOnePlatformFailingWritesNothing(t *testing.T) {
	t.Parallel()
	ti := pushTestImage(t)
	layers := ti.layerDigests(t, "linux/arm64")
	ti.blobGets.denyBlob(layers[len(layers)-1])
	outDir := filepath.Join(t.TempDir(), "sbom")
	log := &recorder{}
	_, err := sbom.Run(t.Context(), sbom.Inputs{
		Image: ti.index, Formats: []string{"spdx-json", "cyclonedx-json"}, OutputDir: outDir, Backoff: fastRetry, Jobs: 1, Log: log,
	})
	if err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Fatalf("error = %v, want one naming the failing platform", err)
	}
	if !slices.ContainsFunc(log.infos, func(s string) bool { return strings.HasPrefix(s, "linux/amd64: manifest") }) {
		t.Fatalf("linux/amd64 was not cataloged before linux/arm64 failed, so this test proves nothing: %q", log.infos)
	}
	if _, err := os.Stat(outDir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(outDir)
		t.Errorf("output-dir exists after a failed run, with %d entries", len(entries))
	}
}

// A registry that stops answering mid-pull runs into the timeout input,
// and the error says which input to raise.
func TestTimeout(t *testing.T) {
	t.Parallel()
	ti := pushTestImage(t)
	stall := &stallingRegistry{}
	reg, err := ocitest.StartRegistry(stall.wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	// Copy the index to the stalling registry, then stall its blobs.
	src, _ := name.ParseReference(ti.index)
	idx, err := remote.Index(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := name.ParseReference(reg.Host + "/acme/app:1.0")
	if err := remote.WriteIndex(dst, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	stall.on.Store(true)

	outDir := filepath.Join(t.TempDir(), "sbom")
	start := time.Now()
	_, err = sbom.Run(t.Context(), sbom.Inputs{
		Image: reg.Host + "/acme/app@" + d.String(), Formats: []string{"spdx-json"}, OutputDir: outDir,
		Timeout: 500 * time.Millisecond, Backoff: fastRetry,
	})
	if err == nil || !strings.Contains(err.Error(), `input "timeout"`) {
		t.Fatalf("error = %v, want one naming the timeout input", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run returned %v after the 500ms timeout", took)
	}
	if _, err := os.Stat(outDir); !os.IsNotExist(err) {
		t.Errorf("output-dir exists after a timed-out run")
	}
}

// stallingRegistry holds blob downloads until the client gives up.
type stallingRegistry struct{ on atomic.Bool }

func (s *stallingRegistry) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.on.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			<-r.Context().Done()
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gantry-release.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()
	return host
}
