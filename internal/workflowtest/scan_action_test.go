package workflowtest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// TestScanActionInAWorkflow runs testdata/workflows/scan-action.yml with act:
// actions/scan installs gantry-scan from this checkout, scans the crafted
// repository offline with the fixture DB, fails its gate on the planted
// secret and the HIGH findings (the step fails, its outputs still arrive),
// then passes with the secret ignored and the gate at CRITICAL.
func TestScanActionInAWorkflow(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	cache, result := t.TempDir(), t.TempDir()
	if err := scantest.Build(cache, filepath.Join(act.Repo, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	ignore := "ignore:\n  - rule: aws-access-key-id\n    paths: [config/deploy.env]\n    reason: made-up key planted for the scanner tests\n    expires: 2099-12-31\n"
	if err := os.WriteFile(filepath.Join(result, "ignore.yaml"), []byte(ignore), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	log, err := act.Run(t.Context(), "push", "testdata/workflows/scan-action.yml", map[string]string{
		"CACHE":  cache,
		"RESULT": result,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	t.Logf("act ran the workflow in %v", time.Since(start).Round(time.Second))
	b, err := os.ReadFile(filepath.Join(result, "outputs"))
	if err != nil {
		t.Fatalf("no outputs: %v\n%s", err, log)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	want := map[string]string{
		"gated-outcome": "failure", "gated-verdict": "fail", "gated-critical": "1",
		"passing-outcome": "success", "passing-verdict": "pass", "passing-critical": "0", "passing-high": "1",
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, out[k], v, out)
		}
	}
	if out["gated-high"] == "" || out["gated-high"] == "0" {
		t.Errorf("gated-high = %q, want the HIGH lodash CVE and misconfigurations counted", out["gated-high"])
	}
	for _, f := range []string{out["gated-sarif"], out["passing-json"]} {
		if !filepath.IsAbs(f) {
			t.Errorf("file output %q is not an absolute path", f)
		} else if _, err := os.Stat(f); err != nil {
			t.Errorf("file output: %v", err)
		}
	}
	for _, line := range []string{"findings failed the severity gate", "aws-access-key-id", "CVE-2021-23337"} {
		if !strings.Contains(log, line) {
			t.Errorf("workflow log lacks %q", line)
		}
	}
}
