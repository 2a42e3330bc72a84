package vulnscan_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/vulnscan"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

// dbBuilt is when the fixture DB claims to be built; tests pin the clock
// near it so offline age checks are deterministic.
var dbBuilt = time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)

func root(t testing.TB) string {
	t.Helper()
	r, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fixtureCache builds the fixture DB into a fresh cache dir.
func fixtureCache(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := scantest.Build(dir, filepath.Join(root(t), scantest.FixturesPath), dbBuilt); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pushFixtureImage pushes the crafted Alpine image for two platforms and
// returns its tag reference.
func pushFixtureImage(t testing.TB, reg *ocitest.Registry) string {
	t.Helper()
	idx, err := scantest.Index(filepath.Join(root(t), scantest.ImageDir), []string{"linux/amd64", "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/acme/app:1.0"
	tag, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	return ref
}

func startRegistry(t testing.TB) *ocitest.Registry {
	t.Helper()
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// baseInputs are the action's defaults with files in a temp dir.
func baseInputs(t testing.TB, cache string) vulnscan.Inputs {
	out := t.TempDir()
	return vulnscan.Inputs{
		Scanners:        []string{"vuln", "secret", "misconfig", "license"},
		Severity:        []string{"CRITICAL", "HIGH"},
		SARIFFile:       filepath.Join(out, "scan.sarif"),
		JSONFile:        filepath.Join(out, "scan.json"),
		AttestationFile: filepath.Join(out, "scan.vuln.json"),
		DBRepositories:  vulnscan.DefaultDBRepositories,
		CacheDir:        cache,
		Offline:         true,
		DBMaxAge:        72 * time.Hour,
		Timeout:         5 * time.Minute,
		Now:             func() time.Time { return dbBuilt.Add(2 * time.Hour) },
		ReleaseFile:     filepath.Join(out, "gantry-release.json"),
	}
}

// recorder is a Logger that keeps every line.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Infof(f string, a ...any) { r.add("info: " + fmt.Sprintf(f, a...)) }
func (r *recorder) Warningf(f string, a ...any) {
	r.add("warning: " + fmt.Sprintf(f, a...))
}
func (r *recorder) Group(title string) func() { r.add("group: " + title); return func() {} }
func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, s)
}
func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// findingsOf returns the findings of the targets whose name contains sub.
func findingsOf(rep vulnscan.Report, sub string) []vulnscan.Finding {
	var out []vulnscan.Finding
	for _, t := range rep.Targets {
		if strings.Contains(t.Name, sub) {
			out = append(out, t.Findings...)
		}
	}
	return out
}

func find(fs []vulnscan.Finding, kind, id string) (vulnscan.Finding, bool) {
	for _, f := range fs {
		if f.Kind == kind && f.ID == id {
			return f, true
		}
	}
	return vulnscan.Finding{}, false
}

func ids(fs []vulnscan.Finding, kind string) map[string]bool {
	out := map[string]bool{}
	for _, f := range fs {
		if f.Kind == kind {
			out[f.ID] = true
		}
	}
	return out
}

// validateSARIF checks a SARIF file against the SARIF 2.1.0 JSON schema
// with the jv CLI.
func validateSARIF(t *testing.T, file string) {
	t.Helper()
	jv := testproc.Tool(t, "jv")
	schema := filepath.Join(root(t), "testdata", "sarif", "sarif-schema-2.1.0.json")
	out, err := exec.CommandContext(t.Context(), jv, schema, file).CombinedOutput()
	if err != nil {
		t.Fatalf("SARIF %s is not valid against the SARIF 2.1.0 schema: %v\n%s", file, err, out)
	}
}

func readJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
