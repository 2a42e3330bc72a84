package release_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/release"
)

func TestRecordRoundTripAndStages(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nested", "gantry-release.json")
	r := release.Record{
		Image: "ghcr.io/acme/app@sha256:aaa", Digest: "sha256:aaa", Repository: "ghcr.io/acme/app",
		Platforms: []release.Platform{{Platform: "linux/amd64", Digest: "sha256:bbb", Size: 42}},
		Created:   time.Date(2026, 11, 20, 13, 3, 11, 0, time.UTC),
	}
	if err := r.SetStage("build", map[string]any{"pushed": true}); err != nil {
		t.Fatal(err)
	}
	abs, err := release.Write(path, r)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(abs) {
		t.Errorf("Write returned %q, want an absolute path", abs)
	}
	got, err := release.Read(abs)
	if err != nil {
		t.Fatal(err)
	}
	var build struct{ Pushed bool }
	if err := json.Unmarshal(got.Stages["build"], &build); err != nil {
		t.Fatal(err)
	}
	if got.Schema != release.Schema || got.Digest != r.Digest || len(got.Platforms) != 1 || !build.Pushed {
		t.Errorf("read back %+v", got)
	}

	// A later stage of the same image adds to the record...
	same := release.ForDigest(abs, "sha256:aaa")
	if same.Image != r.Image {
		t.Errorf("ForDigest of the same digest lost the record: %+v", same)
	}
	same.SetStage("scan", map[string]string{"verdict": "pass"})
	if _, err := release.Write(abs, same); err != nil {
		t.Fatal(err)
	}
	both, _ := release.Read(abs)
	if len(both.Stages) != 2 {
		t.Errorf("stages after a second stage = %v, want build and scan", both.Stages)
	}
	// ...but a record left over from another image is not reused.
	if other := release.ForDigest(abs, "sha256:ccc"); other.Image != "" {
		t.Errorf("ForDigest of another digest reused %+v", other)
	}
	entries, _ := os.ReadDir(filepath.Dir(abs))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the record: %v", entries)
	}
}

func TestReadRejectsForeignFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"notjson.json": "not json",
		"other.json":   `{"schema":"something/else"}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := release.Read(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Read(%s) = %v, want an error naming the file", name, err)
		}
	}
}

// TestAdd: the one rule of the stages after the build.
func TestAdd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "gantry-release.json")
	var warnings []string
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }

	// No file: nothing written, nothing to check.
	if p, err := release.Add(path, "sha256:aa", "sbom", map[string]int{"n": 1}, warn); p != "" || err != nil {
		t.Fatalf("no record: %q %v", p, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) || release.Check(path) != nil {
		t.Fatalf("Add without a record created one (%v), or Check refused no file", err)
	}
	// The build's record: the index and one platform.
	if _, err := release.Write(path, release.Record{Image: "r@sha256:aa", Digest: "sha256:aa", Platforms: []release.Platform{{Platform: "linux/arm64", Digest: "sha256:bb"}}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"sha256:aa", "sha256:bb"} {
		if p, err := release.Add(path, d, "scan-"+d[7:], map[string]string{"verdict": "pass"}, warn); err != nil || p == "" {
			t.Fatalf("add for %s: %q %v", d, p, err)
		}
	}
	rec, err := release.Read(path)
	var sec map[string]string
	if err == nil {
		err = json.Unmarshal(rec.Stages["scan-aa"], &sec)
	}
	if err != nil || sec["verdict"] != "pass" || rec.Stages["scan-bb"] == nil {
		t.Fatalf("record after adding: %s %v", rec.Stages, err)
	}
	// Work on no image (a repository scan) adds to the record as it is.
	if p, err := release.Add(path, "", "scan-repo", map[string]string{"verdict": "pass"}, warn); err != nil || p == "" {
		t.Fatalf("add for no image: %q %v", p, err)
	}
	// Another image's record is left alone, with a warning.
	before, _ := os.ReadFile(path)
	if p, err := release.Add(path, "sha256:cc", "sign", map[string]string{}, warn); p != "" || err != nil {
		t.Fatalf("another image: %q %v", p, err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) || len(warnings) != 1 || !strings.Contains(warnings[0], "describes r@sha256:aa, not sha256:cc: its sign section is not added") {
		t.Errorf("another image's record changed, or warnings %q", warnings)
	}
	// Not a record: Check and Add fail naming the input.
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{release.Check(path), func() error { _, err := release.Add(path, "sha256:aa", "sbom", 1, warn); return err }()} {
		if err == nil || !strings.Contains(err.Error(), `input "release-file"`) || !strings.Contains(err.Error(), "is not a Gantry release record") {
			t.Errorf("a broken record: %v", err)
		}
	}
}
