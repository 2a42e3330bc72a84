package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

func TestMain(m *testing.M) { actiontest.TestMain(m, main) }

// TestOutsideActions runs gantry-scan as a process from a shell would:
// no GITHUB_* at all. Outputs come on stdout, the log is plain on stderr
// without the password, the exit code is 0 or 1, and the temporary
// directory is empty afterwards, whether the gate passed, failed, or the
// run was cancelled with SIGTERM.
func TestOutsideActions(t *testing.T) {
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	if err := scantest.Build(cache, filepath.Join(root, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	const password = "hunter2-registry-token"
	inputs := func(path string) (map[string]string, string) {
		tmp, out := t.TempDir(), t.TempDir()
		return map[string]string{
			"INPUT_PATH":              path,
			"INPUT_OFFLINE":           "true",
			"INPUT_CACHE-DIR":         cache,
			"INPUT_SARIF-FILE":        filepath.Join(out, "scan.sarif"),
			"INPUT_JSON-FILE":         filepath.Join(out, "scan.json"),
			"INPUT_ATTESTATION-FILE":  filepath.Join(out, "scan.vuln.json"),
			"INPUT_REGISTRY-USERNAME": "ci-bot",
			"INPUT_REGISTRY-PASSWORD": password,
			"TMPDIR":                  tmp,
		}, tmp
	}
	clean := t.TempDir()
	os.WriteFile(filepath.Join(clean, "README.md"), []byte("# nothing to find here\n"), 0o644)

	t.Run("gate passes", func(t *testing.T) {
		env, tmp := inputs(clean)
		r := actiontest.Exec(t, "gantry-scan", env)
		if r.Code != 0 {
			t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
		}
		outs := actiontest.StdoutOutputs(t, r)
		if outs["verdict"] != "pass" || outs["sarif-file"] != env["INPUT_SARIF-FILE"] {
			t.Errorf("outputs on stdout = %v", outs)
		}
		actiontest.Plain(t, r.Stderr, password)
		if !strings.Contains(r.Stderr, "passed the gate") && !strings.Contains(r.Stderr, "| ") {
			t.Errorf("the summary is not on stderr:\n%s", r.Stderr)
		}
		emptyDir(t, tmp)
	})

	t.Run("gate fails", func(t *testing.T) {
		env, tmp := inputs(filepath.Join(root, scantest.RepoDir))
		r := actiontest.Exec(t, "gantry-scan", env)
		if r.Code != 1 {
			t.Fatalf("exit %d, want 1 (the gate)\n%s", r.Code, r.Stderr)
		}
		if outs := actiontest.StdoutOutputs(t, r); outs["verdict"] != "fail" || outs["critical"] != "1" {
			t.Errorf("outputs on stdout = %v", outs)
		}
		actiontest.Plain(t, r.Stderr, password)
		if last := lastLine(r.Stderr); !strings.HasPrefix(last, "error: ") {
			t.Errorf("the last log line is %q, want the error", last)
		}
		emptyDir(t, tmp)
	})

	t.Run("json outputs", func(t *testing.T) {
		env, tmp := inputs(clean)
		r := actiontest.Exec(t, "gantry-scan", env, "--output", "json")
		if r.Code != 0 {
			t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
		}
		var outs map[string]string
		if err := json.Unmarshal([]byte(r.Stdout), &outs); err != nil {
			t.Fatalf("stdout is not a JSON object of outputs: %v\n%s", err, r.Stdout)
		}
		if outs["verdict"] != "pass" || outs["critical"] != "0" {
			t.Errorf("outputs = %v", outs)
		}
		emptyDir(t, tmp)
	})

	t.Run("cancelled", func(t *testing.T) {
		// Enough files that the secret scan is still running when the
		// signal comes.
		big := t.TempDir()
		for i := range 4000 {
			d := filepath.Join(big, fmt.Sprintf("d%02d", i%40))
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d.txt", i)), []byte(strings.Repeat("some ordinary text line\n", 200)), 0o644)
		}
		env, tmp := inputs(big)
		cmd := actiontest.Command(t, "gantry-scan", env)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// SIGTERM once trivy has made its folder: the moment a cancelled
		// runner would leave it behind.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) == 0 {
			t.Fatal("the scan made no temporary folder within 30s")
		}
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		if cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("exit after SIGTERM = %v, want 1\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "cancel") {
			t.Errorf("the log does not say the run was cancelled:\n%s", stderr.String())
		}
		emptyDir(t, tmp)
	})

	t.Run("unwritable GITHUB_OUTPUT", func(t *testing.T) {
		env, tmp := inputs(clean)
		env["GITHUB_OUTPUT"] = actiontest.ReadOnlyOutput(t)
		r := actiontest.Exec(t, "gantry-scan", env)
		if r.Code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "::error::") || !strings.Contains(r.Stdout, "GITHUB_OUTPUT") {
			t.Errorf("no error annotation naming GITHUB_OUTPUT:\n%s", r.Stdout)
		}
		emptyDir(t, tmp)
	})
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind in TMPDIR: %s", e.Name())
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
