package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
)

func TestMain(m *testing.M) { actiontest.TestMain(m, main) }

// TestOutsideActions runs gantry-sbom as a process from a shell or another
// CI would: no GITHUB_* at all. It catalogs a directory; the outputs come on
// stdout, the log and the summary are plain on stderr, the exit code is 0.
func TestOutsideActions(t *testing.T) {
	work := t.TempDir()
	src := filepath.Join(work, "src")
	os.Mkdir(src, 0o755)
	gomod := "module example.com/tool\n\ngo 1.26\n\nrequire github.com/sethvargo/go-githubactions v1.3.0\n"
	os.WriteFile(filepath.Join(src, "go.mod"), []byte(gomod), 0o644)
	env := map[string]string{
		"INPUT_PATHS":        "tool=" + src,
		"INPUT_OUTPUT-DIR":   filepath.Join(work, "sbom"),
		"INPUT_RELEASE-FILE": filepath.Join(work, "gantry-release.json"),
	}
	r := actiontest.Exec(t, "gantry-sbom", env)
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
	}
	outs := actiontest.StdoutOutputs(t, r)
	if outs["packages"] != `{"tool":1}` || !strings.Contains(outs["sbom-files"], filepath.Join(work, "sbom", "tool.spdx.json")) {
		t.Errorf("outputs on stdout = %v", outs)
	}
	if _, err := os.Stat(filepath.Join(work, "sbom", "tool.cyclonedx.json")); err != nil {
		t.Errorf("the CycloneDX SBOM was not written: %v", err)
	}
	actiontest.Plain(t, r.Stderr)
	if !strings.Contains(r.Stderr, "| tool | `"+src+"` (directory) | 1 |") {
		t.Errorf("the summary is not on stderr:\n%s", r.Stderr)
	}

	t.Run("bad input", func(t *testing.T) {
		r := actiontest.Exec(t, "gantry-sbom", map[string]string{"INPUT_TIMEOUT": "soon"})
		if r.Code != 1 || !strings.Contains(r.Stderr, `error: input "timeout"`) || r.Stdout != "" {
			t.Errorf("exit %d, stdout %q, stderr:\n%s", r.Code, r.Stdout, r.Stderr)
		}
	})
}
