package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/vulnscan"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

// TestRunAsTheActionDoes runs gantry-scan's main logic with the inputs as
// INPUT_* variables (defaults from the struct tags, as action.yml has them):
// the gate fails, yet the outputs, the job summary and the attestation with
// the run's invocation are all written, and the password never appears.
func TestRunAsTheActionDoes(t *testing.T) {
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	if err := scantest.Build(cache, filepath.Join(root, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	outFile, sumFile := filepath.Join(dir, "output"), filepath.Join(dir, "summary.md")
	for _, f := range []string{outFile, sumFile} {
		os.WriteFile(f, nil, 0o644)
	}
	const password = "hunter2-registry-token"
	vars := map[string]string{
		"INPUT_PATH":              filepath.Join(root, scantest.RepoDir),
		"INPUT_OFFLINE":           "true",
		"INPUT_CACHE-DIR":         cache,
		"INPUT_SARIF-FILE":        filepath.Join(dir, "out", "scan.sarif"),
		"INPUT_JSON-FILE":         filepath.Join(dir, "out", "scan.json"),
		"INPUT_ATTESTATION-FILE":  filepath.Join(dir, "out", "scan.vuln.json"),
		"INPUT_REGISTRY-USERNAME": "ci-bot",
		"INPUT_REGISTRY-PASSWORD": password,
		"GITHUB_OUTPUT":           outFile,
		"GITHUB_STEP_SUMMARY":     sumFile,
		"GITHUB_SERVER_URL":       "https://github.com",
		"GITHUB_REPOSITORY":       "acme/prompt-builder",
		"GITHUB_RUN_ID":           "4242",
		"GITHUB_RUN_ATTEMPT":      "2",
		"GITHUB_WORKFLOW_REF":     "acme/prompt-builder/.github/workflows/release.yml@refs/tags/v1.2.3",
	}
	var log bytes.Buffer
	env := ghaction.New(func(k string) string { return vars[k] }, &log)
	err = vulnscan.Stage(t.Context(), env)
	if !errors.Is(err, vulnscan.ErrGate) {
		t.Fatalf("run = %v, want the gate to fail\n%s", err, log.String())
	}
	outs := actiontest.Outputs(t, outFile)
	if outs["verdict"] != "fail" || outs["critical"] != "1" || outs["high"] == "" || outs["json-file"] != vars["INPUT_JSON-FILE"] {
		t.Errorf("outputs = %v", outs)
	}
	sum, _ := os.ReadFile(sumFile)
	if !strings.Contains(string(sum), "failed the gate") || !strings.Contains(string(sum), "aws-access-key-id") {
		t.Errorf("job summary:\n%s", sum)
	}
	var pred vulnscan.Predicate
	b, _ := os.ReadFile(outs["attestation-file"])
	if err := json.Unmarshal(b, &pred); err != nil {
		t.Fatal(err)
	}
	inv := pred.Invocation
	if inv.URI != "https://github.com/acme/prompt-builder/actions/runs/4242/attempts/2" || inv.EventID != "4242" ||
		inv.BuilderID != "https://github.com/acme/prompt-builder/.github/workflows/release.yml@refs/tags/v1.2.3" {
		t.Errorf("invocation = %+v", inv)
	}
	params := strings.Join(inv.Parameters, "\n")
	if !strings.Contains(params, "offline=true") || !strings.Contains(params, "registry-username=ci-bot") || strings.Contains(params, "registry-password") {
		t.Errorf("invocation parameters = %q", params)
	}
	if !strings.HasPrefix(pred.Scanner.DB.URI, "file://") || pred.Metadata.ScanFinishedOn.Before(pred.Metadata.ScanStartedOn) {
		t.Errorf("predicate db %+v metadata %+v", pred.Scanner.DB, pred.Metadata)
	}
	for _, where := range []string{log.String(), string(sum), string(b)} {
		for _, line := range strings.Split(where, "\n") {
			if strings.Contains(line, password) && !strings.HasPrefix(line, "::add-mask::") {
				t.Errorf("the registry password leaked: %s", line)
			}
		}
	}
	if !strings.Contains(log.String(), "::add-mask::"+password) {
		t.Errorf("the password was not masked first")
	}
}
