package sbom_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/release"
	"github.com/gantry-ci/gantry/internal/sbom"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// notifyBinary builds this repository's ./cmd/notify once per test binary,
// alone in a directory, as a release job builds Gantry's own binaries. It is
// small, and its few modules are in the build cache already.
var notifyBinary = sync.OnceValues(func() (string, error) {
	notifyBuilt.Store(true)
	root, err := testproc.RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "gantry-sbom-paths-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gantry-notify")
	// make build's flags: the build cache serves the link it made.
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, "./cmd/notify")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ./cmd/notify: %v\n%s", err, b)
	}
	return bin, nil
})

// notifyBuilt tells TestMain there is a directory to remove.
var notifyBuilt atomic.Bool

func notify(t testing.TB) string {
	t.Helper()
	bin, err := notifyBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// goModules is what `go version -m` says a binary holds: name@version of
// its main module and every dependency, as an SBOM names them, and the Go
// version that built it.
type goModules struct {
	main      string // path of the main module
	mainVer   string // its version; "" for (devel), which no SBOM can know
	deps      map[string]bool
	goVersion string // as the binary records it: go1.26.8-X:jsonv2
}

func goVersionM(t testing.TB, bin string) goModules {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "version", "-m", "-json", bin).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", bin, err)
	}
	var bi debug.BuildInfo
	if err := json.Unmarshal(out, &bi); err != nil {
		t.Fatalf("go version -m -json: %v\n%s", err, out)
	}
	m := goModules{main: bi.Main.Path, mainVer: bi.Main.Version, deps: map[string]bool{}, goVersion: bi.GoVersion}
	if m.mainVer == "(devel)" {
		m.mainVer = ""
	}
	for _, d := range bi.Deps {
		// A module replaced by another module's version is that version;
		// one replaced by a local directory keeps its name and has none.
		path, version := d.Path, d.Version
		if r := d.Replace; r != nil {
			version = r.Version
			if !strings.HasPrefix(r.Path, ".") && !strings.HasPrefix(r.Path, "/") {
				path = r.Path
			}
		}
		m.deps[path+"@"+version] = true
	}
	if len(m.deps) == 0 || m.main == "" {
		t.Fatalf("go version -m lists no dependencies or no main module for %s:\n%s", bin, out)
	}
	return m
}

// checkGoModules compares the Go modules of an SBOM with `go version -m`:
// every dependency with the same version, the main module (by name alone
// when the binary records no version for it: built without VCS stamping,
// it is "(devel)"), the standard library at the binary's Go version, and
// nothing else.
func checkGoModules(t *testing.T, label string, got map[string]bool, want goModules) {
	t.Helper()
	for d := range want.deps {
		if !got[d] {
			t.Errorf("%s lacks %s, which go version -m lists; has %v", label, d, slices.Sorted(mapKeys(got)))
		}
	}
	isMain := func(p string) bool {
		name, version, _ := strings.Cut(p, "@")
		return name == want.main && (want.mainVer == "" || version == want.mainVer)
	}
	if !slices.ContainsFunc(slices.Collect(mapKeys(got)), isMain) {
		t.Errorf("%s lacks the main module %s@%s; has %v", label, want.main, want.mainVer, slices.Sorted(mapKeys(got)))
	}
	stdlib := "stdlib@" + want.goVersion
	if !got[stdlib] {
		t.Errorf("%s lacks the Go standard library %s; has %v", label, stdlib, slices.Sorted(mapKeys(got)))
	}
	for p := range got {
		if !want.deps[p] && !isMain(p) && p != stdlib {
			t.Errorf("%s lists %s, which go version -m does not", label, p)
		}
	}
}

// TestPaths catalogs a Go binary on disk twice: its directory, under a
// given name, and the file itself, named by its base name. Both must list
// exactly the modules `go version -m` reports, name the entry rather than
// the runner's path, and leave the release record alone (it describes an
// image, and there is none).
func TestPaths(t *testing.T) {
	t.Parallel()
	bin := notify(t)
	dir := filepath.Dir(bin)
	want := goVersionM(t, bin)
	work := t.TempDir()
	outDir := filepath.Join(work, "sbom")
	recPath := filepath.Join(work, "gantry-release.json")
	if _, err := release.Write(recPath, release.Record{Image: "example.com/acme/app@sha256:" + strings.Repeat("c", 64), Digest: "sha256:" + strings.Repeat("c", 64)}); err != nil {
		t.Fatal(err)
	}
	recBefore, _ := os.ReadFile(recPath)

	log := &recorder{}
	out, err := sbom.Run(t.Context(), sbom.Inputs{
		Paths:       []string{"notify-dir=" + dir, bin},
		Formats:     []string{"spdx-json", "cyclonedx-json"},
		OutputDir:   outDir,
		ReleaseFile: recPath,
		Timeout:     2 * time.Minute,
		Log:         log,
	})
	if err != nil {
		t.Fatal(err)
	}

	if out.Digest != "" || len(out.Platforms) != 0 {
		t.Errorf("digest %q, platforms %+v: want none without an image", out.Digest, out.Platforms)
	}
	wantFiles := map[string][]string{
		"notify-dir":    {filepath.Join(outDir, "notify-dir.spdx.json"), filepath.Join(outDir, "notify-dir.cyclonedx.json")},
		"gantry-notify": {filepath.Join(outDir, "gantry-notify.spdx.json"), filepath.Join(outDir, "gantry-notify.cyclonedx.json")},
	}
	if fmt.Sprint(out.Files) != fmt.Sprint(wantFiles) {
		t.Fatalf("sbom-files = %v, want %v", out.Files, wantFiles)
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != 4 {
		t.Errorf("output-dir holds %d entries, want the 4 SBOMs and nothing else", len(entries))
	}
	sum := sha256.Sum256(mustRead(t, bin))
	fileDigest := fmt.Sprintf("sha256:%x", sum)

	for name, files := range out.Files {
		spdx, cdx := readSPDX(t, files[0]), readCycloneDX(t, files[1])
		for format, set := range map[string]map[string]bool{"spdx": spdx.packageSet(), "cyclonedx": cdx.packageSet()} {
			checkGoModules(t, name+" "+format+" SBOM", set, want)
			if len(set) != out.Packages[name] {
				t.Errorf("%s %s SBOM lists %d packages, the packages output says %d", name, format, len(set), out.Packages[name])
			}
		}
		// The subject is the entry's name, not where the runner had it.
		if spdx.Name != name || !strings.Contains(spdx.Namespace, "/"+name+"-") {
			t.Errorf("%s: SPDX name %q, namespace %q: want the entry's name", name, spdx.Name, spdx.Namespace)
		}
		if !slices.ContainsFunc(spdx.Packages, func(p spdxPackage) bool { return spdx.describes(p.SPDXID) && p.Name == name }) {
			t.Errorf("%s: the SPDX document does not describe a package named %s: %+v", name, name, spdx.Packages)
		}
		if c := cdx.Metadata.Component; c.Name != name {
			t.Errorf("%s: CycloneDX subject %q, want the entry's name", name, c.Name)
		}
		for _, f := range files {
			if b := mustRead(t, f); strings.Contains(string(b), dir) {
				t.Errorf("%s names the runner's directory %s", f, dir)
			}
		}
	}
	// A file's subject carries its digest, so the SBOM says which build
	// of the binary it describes.
	if c := readCycloneDX(t, out.Files["gantry-notify"][1]).Metadata.Component; c.Version != fileDigest {
		t.Errorf("file SBOM subject version %q, want the binary's digest %s", c.Version, fileDigest)
	}

	if len(out.Paths) != 2 || out.Paths[0].Name != "notify-dir" || out.Paths[0].Kind != "directory" || out.Paths[1].Kind != "file" || out.Paths[1].Path != bin {
		t.Errorf("paths = %+v, want notify-dir (directory) then gantry-notify (file), in input order", out.Paths)
	}
	for _, p := range out.Paths {
		if p.ByType["go-module"] != p.Packages {
			t.Errorf("%s: by type %v, want only go-module packages (%d)", p.Name, p.ByType, p.Packages)
		}
	}
	summary := sbom.Summary(out)
	for _, s := range []string{"**Paths**", "| notify-dir | `" + dir + "` (directory) |", "go-module", "gantry-notify.cyclonedx.json"} {
		if !strings.Contains(summary, s) {
			t.Errorf("summary lacks %q:\n%s", s, summary)
		}
	}
	if strings.Contains(summary, "**Image**") {
		t.Errorf("summary has an image section without an image:\n%s", summary)
	}

	if recAfter, _ := os.ReadFile(recPath); out.ReleaseFile != "" || string(recAfter) != string(recBefore) {
		t.Errorf("the release record was changed (release file %q) by a run without an image", out.ReleaseFile)
	}
}

// An image and paths in one run: the platforms and the path entry side by
// side in the outputs, the release record gets the image's platforms only.
func TestImageAndPaths(t *testing.T) {
	t.Parallel()
	ti := pushTestImage(t)
	bin := notify(t)
	work := t.TempDir()
	outDir := filepath.Join(work, "sbom")
	recPath := filepath.Join(work, "gantry-release.json")
	indexDigest := ti.index[strings.Index(ti.index, "@")+1:]
	if _, err := release.Write(recPath, release.Record{Image: ti.index, Digest: indexDigest}); err != nil {
		t.Fatal(err)
	}
	out, err := sbom.Run(t.Context(), sbom.Inputs{
		Image:       ti.index,
		Paths:       []string{bin},
		Formats:     []string{"spdx-json"},
		OutputDir:   outDir,
		ReleaseFile: recPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Digest != ti.index {
		t.Errorf("digest = %q, want %q", out.Digest, ti.index)
	}
	if keys := slices.Sorted(maps.Keys(out.Files)); fmt.Sprint(keys) != "[gantry-notify linux/amd64 linux/arm64]" {
		t.Errorf("sbom-files keys = %v, want both platforms and gantry-notify", keys)
	}
	if out.Packages["gantry-notify"] == 0 || out.Packages["linux/amd64"] == 0 {
		t.Errorf("packages = %v", out.Packages)
	}
	checkGoModules(t, "gantry-notify SBOM", readSPDX(t, filepath.Join(outDir, "gantry-notify.spdx.json")).packageSet(), goVersionM(t, bin))
	summary := sbom.Summary(out)
	for _, s := range []string{"**Image** `" + ti.index + "`", "| linux/arm64 |", "| gantry-notify |"} {
		if !strings.Contains(summary, s) {
			t.Errorf("summary lacks %q:\n%s", s, summary)
		}
	}
	rec, err := release.Read(recPath)
	if err != nil {
		t.Fatal(err)
	}
	section := string(rec.Stages["sbom"])
	if out.ReleaseFile == "" || !strings.Contains(section, "linux-arm64.spdx.json") || strings.Contains(section, "gantry-notify") {
		t.Errorf("release record sbom section = %s, want the platforms and not the path", section)
	}
}

// A missing path, or a name that would overwrite another entry's or a
// platform's files, fails before anything is written, and the error names
// the input and the entry.
func TestPathErrorsLeaveNoOutput(t *testing.T) {
	t.Parallel()
	bin := notify(t)
	ti := pushTestImage(t)
	missing := filepath.Join(t.TempDir(), "dist", "gantry-linux-amd64")
	cases := []struct {
		name string
		in   sbom.Inputs
		want []string
	}{
		{
			name: "missing path",
			in:   sbom.Inputs{Paths: []string{bin, "app=" + missing, "also-missing"}},
			want: []string{`input "paths"`, missing + " does not exist", "also-missing does not exist"},
		},
		{
			name: "missing path with an image",
			in:   sbom.Inputs{Image: ti.index, Paths: []string{missing}},
			want: []string{`input "paths"`, missing + " does not exist"},
		},
		{
			name: "name of a platform",
			in:   sbom.Inputs{Image: ti.index, Paths: []string{"linux-amd64=" + bin}},
			want: []string{`input "paths"`, "linux-amd64", "platform linux/amd64", "NAME=PATH"},
		},
		{
			name: "neither image nor paths",
			in:   sbom.Inputs{},
			want: []string{`inputs "image" and "paths" are both empty`},
		},
		{
			name: "same name twice",
			in:   sbom.Inputs{Paths: []string{bin, "gantry-notify=" + filepath.Dir(bin)}},
			want: []string{`input "paths"`, `both named "gantry-notify"`},
		},
		{
			name: "no base name",
			in:   sbom.Inputs{Paths: []string{"."}},
			want: []string{`input "paths"`, `the base name "."`, "NAME=."},
		},
		{
			name: "name that is no file name",
			in:   sbom.Inputs{Paths: []string{"my app=" + bin, "=" + bin}},
			want: []string{`NAME "my app"`, "empty NAME"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			outDir := filepath.Join(t.TempDir(), "sbom")
			c.in.OutputDir = outDir
			c.in.Formats = []string{"spdx-json", "cyclonedx-json"}
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
				t.Errorf("output-dir exists after a failed run")
			}
		})
	}
	// A missing path is found before the registry is asked anything.
	ti.blobGets.requests.Store(0)
	if _, err := sbom.Run(t.Context(), sbom.Inputs{Image: ti.index, Paths: []string{missing}, Formats: []string{"spdx-json"}, OutputDir: t.TempDir()}); err == nil {
		t.Fatal("Run succeeded with a missing path")
	}
	if n := ti.blobGets.requests.Load(); n != 0 {
		t.Errorf("the registry got %d requests before the missing path was reported", n)
	}
}

// A path written NAME=PATH splits at the first "=" unless what comes
// before it is a path itself.
func TestPathsInputSyntax(t *testing.T) {
	t.Parallel()
	cases := []struct {
		entry   string
		wantErr string
	}{
		{entry: "dist/gantry-linux-amd64"},
		{entry: "gantry=dist/gantry-linux-amd64"},
		{entry: "name=dist/a=b"},    // a path holding "=" needs a name
		{entry: "  spaced = dist "}, // blanks around either part
		{entry: "dist/a=b", wantErr: `the base name "a=b"`},
		{entry: "name=", wantErr: "names no path"},
		{entry: "..", wantErr: `the base name ".."`},
		{entry: "-x=dist", wantErr: "not a plain file name"},
		{entry: ".hidden=dist", wantErr: "not a plain file name"},
	}
	for _, c := range cases {
		in := sbom.Inputs{Paths: []string{c.entry}, Formats: []string{"spdx-json"}, OutputDir: "sbom"}
		err := in.Validate()
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%q: %v", c.entry, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%q: error %v, want one with %q", c.entry, err, c.wantErr)
		}
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
