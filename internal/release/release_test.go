package release_test

import (
	"encoding/json"
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
