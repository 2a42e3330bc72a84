package workflowtest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/promtest"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// TestAnalyzeActionInAWorkflow runs testdata/workflows/analyze-action.yml with
// act against a real Prometheus: the healthy canary's step passes, the
// failing canary's step fails the step (exit code) with verdict fail, and
// the outputs reach the next step.
func TestAnalyzeActionInAWorkflow(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	var targets []promtest.Target
	for _, sc := range []struct {
		name   string
		canary map[string]string
	}{{"healthy", map[string]string{"ERROR_RATE": "0.001"}}, {"errors", map[string]string{"ERROR_RATE": "0.2"}}} {
		for track, env := range map[string]map[string]string{"stable": {"ERROR_RATE": "0.001"}, "canary": sc.canary} {
			app := promtest.StartApp(t, env)
			stop := promtest.Load(t, app.URL+"/api/prompts", 80)
			t.Cleanup(func() { stop() })
			targets = append(targets, app.Target(map[string]string{"job": "api", "scenario": sc.name, "track": track}))
		}
	}
	prom := promtest.StartPrometheus(t, targets...)
	result := t.TempDir()
	log, err := act.Run(t.Context(), "push", "testdata/workflows/analyze-action.yml", map[string]string{
		"PROMETHEUS_URL": prom.URL,
		"RESULT":         result,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(result, name))
		if err != nil {
			t.Fatalf("the workflow did not hand over %s: %v\n%s", name, err, log)
		}
		return strings.TrimSpace(string(b))
	}
	if got := read("healthy"); got != "pass" {
		t.Errorf("healthy canary verdict %q, want pass\n%s", got, log)
	}
	if got := read("bad"); got != "fail" {
		t.Errorf("failing canary verdict %q, want fail", got)
	}
	if got := read("bad-outcome"); got != "failure" {
		t.Errorf("failing canary step outcome %q, want failure (non-zero exit)", got)
	}
	if r := read("bad-reason"); !strings.Contains(r, "error-rate") {
		t.Errorf("reason %q does not name the failing check", r)
	}
	if _, err := os.Stat(read("bad-log")); err != nil {
		t.Errorf("decision-log output: %v", err)
	}
}
