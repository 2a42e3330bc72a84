package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/promtest"
)

func TestMain(m *testing.M) { actiontest.TestMain(m, main) }

// TestOutsideActions runs gantry-analyze as a process from a shell, GitLab
// or Jenkins would: no GITHUB_* at all, against a real Prometheus scraping
// a stable and a canary instance of the sample app under load (as
// internal/analysis' tests do). The healthy canary passes; the verdict
// comes on stdout, the log is plain on stderr without the Prometheus token,
// the summary table is on stderr, and the exit code is 0 or 1.
func TestOutsideActions(t *testing.T) {
	var targets []promtest.Target
	for _, track := range []string{"stable", "canary"} {
		app := promtest.StartApp(t, map[string]string{"ERROR_RATE": "0.002"})
		stop := promtest.Load(t, app.URL+"/api/prompts", 60)
		t.Cleanup(func() { stop() })
		targets = append(targets, app.Target(map[string]string{"job": "api", "scenario": "shell", "track": track}))
	}
	prom := promtest.StartPrometheus(t, targets...)

	// Prometheus takes no token; the stage must still hide it.
	const token = "prom-bearer-gantry-shelltest-9f2c"
	inputs := func(t *testing.T) map[string]string {
		return map[string]string{
			"INPUT_PROMETHEUS-URL":   prom.URL,
			"INPUT_PROMETHEUS-TOKEN": token,
			"INPUT_SELECTOR-NEW":     `scenario="shell",track="canary"`,
			"INPUT_SELECTOR-STABLE":  `scenario="shell",track="stable"`,
			"INPUT_STEP":             "10%",
			// Minutes shrunk to seconds (Prometheus scrapes every second).
			// p99 is off: proving it takes ~540 requests, i.e. a longer
			// test, and says nothing more about running outside Actions.
			"INPUT_WINDOW":       "6s",
			"INPUT_INTERVAL":     "2s",
			"INPUT_MAX-HOLD":     "40s",
			"INPUT_P99":          "off",
			"INPUT_MEMORY":       "off",
			"INPUT_MIN-SAMPLES":  "50",
			"INPUT_DECISION-LOG": filepath.Join(t.TempDir(), "decisions.jsonl"),
			"INPUT_TIMEOUT":      "2m",
		}
	}

	t.Run("passes", func(t *testing.T) {
		t.Parallel()
		env := inputs(t)
		r := actiontest.Exec(t, "gantry-analyze", env)
		if r.Code != 0 {
			t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
		}
		outs := actiontest.StdoutOutputs(t, r)
		if outs["verdict"] != string(analysis.Pass) || outs["reason"] == "" || outs["decision-log"] != env["INPUT_DECISION-LOG"] {
			t.Errorf("outputs on stdout = %v, want verdict pass with its reason and the decision log", outs)
		}
		f, err := os.Open(env["INPUT_DECISION-LOG"])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if lines, err := analysis.ReadLog(f); err != nil || len(lines) == 0 {
			t.Errorf("decision log: %v, %d lines", err, len(lines))
		}
		actiontest.Plain(t, r.Stderr, token)
		if !strings.Contains(r.Stderr, "| step | elapsed |") {
			t.Errorf("the summary is not on stderr:\n%s", r.Stderr)
		}
		if last := lastLine(r.Stderr); !strings.HasPrefix(last, "canary analysis: pass: ") {
			t.Errorf("the last log line is %q, want the verdict", last)
		}
	})

	t.Run("unwritable GITHUB_OUTPUT", func(t *testing.T) {
		// The same analysis, at the same time: the verdict is pass, and
		// only writing it fails.
		t.Parallel()
		env := inputs(t)
		env["GITHUB_OUTPUT"] = actiontest.ReadOnlyOutput(t)
		r := actiontest.Exec(t, "gantry-analyze", env)
		if r.Code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "::error::") || !strings.Contains(r.Stdout, "GITHUB_OUTPUT") {
			t.Errorf("no error annotation naming GITHUB_OUTPUT:\n%s", r.Stdout)
		}
		actiontest.MaskedFirst(t, r.Stdout, token)
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
