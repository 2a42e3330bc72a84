package ghaction_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// deployInputs are some of gantry-deploy's real inputs (the embedded
// schema checks the file against the real stage's).
type deployInputs struct {
	Environment string `input:"environment" required:"true"`
	Namespace   string `input:"namespace"`
	Strategy    string `input:"strategy" default:"rolling"`
	Timeout     string `input:"timeout" default:"10m"`
	Token       string `input:"github-token" secret:"true"`
}

// TestStageReadsConfig: a stage binary reads the inputs its step leaves
// empty from gantry.yaml in the workspace (environment block over
// section), a step's input wins, the summary says where each came from,
// and a broken file fails the stage naming file, line and key.
func TestStageReadsConfig(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(ws, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("gantry.yaml", "deploy:\n  environment: staging\n  namespace: apps\n  timeout: 5m\n  environments:\n    production:\n      namespace: apps-prod\n")
	run := func(env map[string]string, args ...string) (int, string, string, deployInputs) {
		t.Helper()
		var got deployInputs
		env["GITHUB_WORKSPACE"] = ws
		var o, e bytes.Buffer
		code := ghaction.MainWith(append([]string{"/usr/bin/gantry-deploy"}, args...), func(k string) string { return env[k] }, &o, &e,
			func(_ context.Context, env *ghaction.Env) error { return env.Decode(&got) })
		return code, o.String(), e.String(), got
	}

	code, _, log, got := run(map[string]string{"INPUT_STRATEGY": "canary", "INPUT_GITHUB-TOKEN": "ghs_secret123"})
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	want := deployInputs{Environment: "staging", Namespace: "apps", Strategy: "canary", Timeout: "5m", Token: "ghs_secret123"}
	if got != want {
		t.Errorf("inputs %+v, want %+v", got, want)
	}
	for _, line := range []string{
		"| `environment` | `staging` | gantry.yaml:2 (deploy.environment) |",
		"| `namespace` | `apps` | gantry.yaml:3 (deploy.namespace) |",
		"| `strategy` | `canary` | step input |",
		"| `timeout` | `5m` | gantry.yaml:4 (deploy.timeout) |",
		"| `github-token` | `***` | step input |",
	} {
		if !strings.Contains(log, line) {
			t.Errorf("summary lacks %q:\n%s", line, log)
		}
	}
	if strings.Contains(log, "ghs_secret123") {
		t.Error("the secret is in the log")
	}

	// The environment's block wins over the section.
	_, _, _, got = run(map[string]string{"INPUT_ENVIRONMENT": "production"})
	if got.Namespace != "apps-prod" || got.Timeout != "5m" {
		t.Errorf("production: %+v", got)
	}
	// --input prints the effective value.
	_, out, _, _ := run(map[string]string{"INPUT_ENVIRONMENT": "production"}, "--input", "namespace")
	if out != "apps-prod\n" {
		t.Errorf("--input namespace: %q", out)
	}
	_, out, _, _ = run(map[string]string{}, "--input", "traffic-router")
	if out != "gateway-api\n" {
		t.Errorf("--input traffic-router (a default): %q", out)
	}
	if code, _, log, _ := run(map[string]string{}, "--input", "nope"); code != 1 || !strings.Contains(log, `--input "nope": no such input`) {
		t.Errorf("--input nope: exit %d\n%s", code, log)
	}
	// config: none reads no file.
	if code, _, log, _ := run(map[string]string{"INPUT_CONFIG": "none"}); code != 1 || !strings.Contains(log, `input "environment" is required`) {
		t.Errorf("config none: exit %d\n%s", code, log)
	}
	// A broken file fails the stage before its work, naming line and key.
	write("ci.yaml", "deploy:\n  namespce: apps\n  timeout: soon\n")
	code, _, log, _ = run(map[string]string{"INPUT_CONFIG": "ci.yaml"})
	for _, want := range []string{"ci.yaml:2:3: deploy.namespce: unknown key: did you mean namespace?", `ci.yaml:3:12: deploy.timeout: "soon" is not a duration`} {
		if code != 1 || !strings.Contains(log, want) {
			t.Errorf("broken file: exit %d, log lacks %q:\n%s", code, want, log)
		}
	}
	write("ci.yaml", "deploy:\n  github-token: ghs_x\n")
	if code, _, log, _ := run(map[string]string{"INPUT_CONFIG": "ci.yaml"}); code != 1 || !strings.Contains(log, "deploy.github-token: is a secret") {
		t.Errorf("secret in file: exit %d\n%s", code, log)
	}
}
