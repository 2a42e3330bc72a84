// Package actiontest holds the checks the stage binaries' tests share: the
// step outputs a run wrote, and a secret masked before anything else was
// logged and never shown again.
package actiontest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Outputs reads the GITHUB_OUTPUT file a step wrote.
func Outputs(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := ghaction.ParseOutputFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// MaskedFirst checks that the log's first line masks secret and that the
// secret appears nowhere after it.
func MaskedFirst(t testing.TB, log, secret string) {
	t.Helper()
	first, rest, _ := strings.Cut(log, "\n")
	if first != "::add-mask::"+secret {
		t.Errorf("the first line of the log is %q, want the secret's mask", first)
	}
	if strings.Contains(rest, secret) {
		t.Errorf("the secret appears in the log after its mask:\n%s", rest)
	}
}

// mainEnv marks a test binary started by Exec: it runs the stage's main
// instead of the tests.
const mainEnv = "GANTRY_ACTIONTEST_MAIN"

// TestMain runs the tests, or, in a process started by Exec, the stage's
// main as its binary would (the same flags, environment and exit code).
// Call it from the stage package's TestMain.
func TestMain(m *testing.M, main func()) {
	if stage := os.Getenv(mainEnv); stage != "" {
		os.Unsetenv(mainEnv)
		os.Args[0] = stage
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Result is what a stage process left: its streams and exit code.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Command returns the stage binary's main (through this test binary and
// TestMain) as a process with exactly env as its environment, plus PATH and
// HOME: no GITHUB_* unless env sets them, as from a shell or another CI.
func Command(t testing.TB, stage string, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = []string{mainEnv + "=" + stage, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if _, ok := env["TMPDIR"]; !ok {
		cmd.Env = append(cmd.Env, "TMPDIR="+os.TempDir())
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// Exec runs Command to its end and returns what it printed and its exit
// code. A crash (exit 2, a Go panic) fails the test: stages never panic.
func Exec(t testing.TB, stage string, env map[string]string, args ...string) Result {
	t.Helper()
	return Run(t, Command(t, stage, env, args...))
}

// Run is Exec for a Command the test has adjusted (a working directory,
// say).
func Run(t testing.TB, cmd *exec.Cmd) Result {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	default:
		t.Fatalf("running %s: %v", cmd.Path, err)
	}
	if r.Code == 2 || strings.Contains(r.Stderr, "goroutine ") || strings.Contains(r.Stderr, "panic:") {
		t.Fatalf("the stage crashed (exit %d):\n%s", r.Code, r.Stderr)
	}
	return r
}

// StdoutOutputs parses the outputs a stage printed on stdout outside
// Actions (the GITHUB_OUTPUT format).
func StdoutOutputs(t testing.TB, r Result) map[string]string {
	t.Helper()
	out, err := ghaction.ParseOutputFile(strings.NewReader(r.Stdout))
	if err != nil {
		t.Fatalf("stdout is not name=value outputs: %v\n%s", err, r.Stdout)
	}
	return out
}

// Plain checks a log written outside Actions: no workflow commands (they
// mean nothing there, and ::add-mask:: would print the secret) and no
// secret.
func Plain(t testing.TB, log string, secrets ...string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "::") {
			t.Errorf("the log outside Actions has a workflow command: %q", line)
		}
	}
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log shows the secret %q", s)
		}
	}
}

// ReadOnlyOutput makes a GITHUB_OUTPUT file that cannot be written and
// returns its path, for the "unwritable runner file" case.
func ReadOnlyOutput(t testing.TB) string {
	t.Helper()
	p := t.TempDir() + "/github-output"
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		// root ignores file modes: a directory in its place is unwritable
		// for everyone.
		f.Close()
		os.Remove(p)
		if err := os.Mkdir(p, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
