package ghaction_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

type stage struct {
	Token string `input:"token" secret:"true"`
	Name  string `input:"name" required:"true"`
}

type result struct {
	Greeting string   `output:"greeting"`
	Lines    []string `output:"lines"`
}

// greet is a stage: it decodes, logs, writes outputs and a summary.
func greet(_ context.Context, env *ghaction.Env) error {
	var in stage
	if err := env.Decode(&in); err != nil {
		return err
	}
	end := env.Group("Greeting")
	env.Infof("using token %s for %s", in.Token, in.Name)
	env.Warningf("token %s expires soon", in.Token)
	end()
	if err := env.Encode(result{Greeting: "hello " + in.Name, Lines: []string{"a", "b=c"}}); err != nil {
		return err
	}
	env.Summary("### Greeted " + in.Name + "\n")
	return nil
}

func mainWith(env map[string]string, run func(context.Context, *ghaction.Env) error, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = ghaction.MainWith(append([]string{"/usr/bin/gantry-test"}, args...), func(k string) string { return env[k] }, &o, &e, run)
	return code, o.String(), e.String()
}

func TestMainOutsideActions(t *testing.T) {
	t.Parallel()
	env := map[string]string{"INPUT_NAME": "ada", "INPUT_TOKEN": "tok-123456"}

	t.Run("text", func(t *testing.T) {
		code, stdout, stderr := mainWith(env, greet)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		outs, err := ghaction.ParseOutputFile(strings.NewReader(stdout))
		if err != nil || outs["greeting"] != "hello ada" || outs["lines"] != "a\nb=c" || len(outs) != 2 {
			t.Errorf("stdout %q parsed to %v, %v", stdout, outs, err)
		}
		want := "== Greeting\nusing token *** for ada\nwarning: token *** expires soon\n### Greeted ada\n"
		if stderr != want {
			t.Errorf("stderr = %q, want %q", stderr, want)
		}
	})

	t.Run("json and a summary file", func(t *testing.T) {
		sum := filepath.Join(t.TempDir(), "summary.md")
		code, stdout, stderr := mainWith(env, greet, "--output", "json", "--summary="+sum)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		var outs map[string]string
		if err := json.Unmarshal([]byte(stdout), &outs); err != nil || outs["greeting"] != "hello ada" || outs["lines"] != "a\nb=c" {
			t.Errorf("stdout %q: %v, %v", stdout, outs, err)
		}
		if b, _ := os.ReadFile(sum); string(b) != "### Greeted ada\n\n" {
			t.Errorf("summary file = %q", b)
		}
		if strings.Contains(stderr, "Greeted") {
			t.Errorf("the summary also went to stderr: %q", stderr)
		}
	})

	t.Run("json from the environment, even with no outputs", func(t *testing.T) {
		env := map[string]string{"GANTRY_OUTPUT_FORMAT": "json"}
		code, stdout, _ := mainWith(env, func(context.Context, *ghaction.Env) error { return nil })
		if code != 0 || stdout != "{}\n" {
			t.Errorf("exit %d, stdout %q, want {}", code, stdout)
		}
	})

	t.Run("error", func(t *testing.T) {
		code, stdout, stderr := mainWith(map[string]string{"INPUT_TOKEN": "tok-123456"}, greet)
		if code != 1 || stdout != "" {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
		if !strings.HasPrefix(stderr, `error: input "name" is required`) || strings.Contains(stderr, "tok-123456") {
			t.Errorf("stderr = %q", stderr)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"--name", "ada"}, {"--output", "yaml"}, {"--summary"}} {
			code, _, stderr := mainWith(env, greet, args...)
			if code != 1 || !strings.HasPrefix(stderr, "error: gantry-test: ") {
				t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
			}
		}
	})

	t.Run("help", func(t *testing.T) {
		code, stdout, _ := mainWith(env, greet, "-h")
		if code != 0 || !strings.HasPrefix(stdout, "usage: gantry-test") || !strings.Contains(stdout, "INPUT_<NAME>") {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
	})
}

func TestMainInActions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, sum := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	env := map[string]string{"INPUT_NAME": "ada", "INPUT_TOKEN": "tok-123456", "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": out, "GITHUB_STEP_SUMMARY": sum}
	code, stdout, stderr := mainWith(env, greet)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.HasPrefix(stdout, "::add-mask::tok-123456\n::group::Greeting\n") || !strings.Contains(stdout, "::warning::token tok-123456") {
		t.Errorf("log = %q, want workflow commands", stdout)
	}
	f, _ := os.Open(out)
	defer f.Close()
	outs, err := ghaction.ParseOutputFile(f)
	if err != nil || outs["greeting"] != "hello ada" || outs["lines"] != "a\nb=c" {
		t.Errorf("GITHUB_OUTPUT: %v, %v", outs, err)
	}

	t.Run("unwritable GITHUB_OUTPUT", func(t *testing.T) {
		env := map[string]string{"INPUT_NAME": "ada", "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": filepath.Join(dir, "no", "such", "dir")}
		code, stdout, _ := mainWith(env, greet)
		if code != 1 || !strings.Contains(stdout, `::error::writing the output "greeting" to GITHUB_OUTPUT`) {
			t.Errorf("exit %d, log %q", code, stdout)
		}
	})
	t.Run("unwritable GITHUB_STEP_SUMMARY", func(t *testing.T) {
		env := map[string]string{"INPUT_NAME": "ada", "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": filepath.Join(dir, "o2"), "GITHUB_STEP_SUMMARY": dir}
		code, stdout, _ := mainWith(env, greet)
		if code != 1 || !strings.Contains(stdout, "::error::writing the job summary to GITHUB_STEP_SUMMARY") {
			t.Errorf("exit %d, log %q", code, stdout)
		}
	})
}

func TestMainTurnsAPanicIntoAnError(t *testing.T) {
	t.Parallel()
	boom := func(context.Context, *ghaction.Env) error {
		var m map[string]int
		m["x"]++ // a nil map: a real runtime panic
		return errors.New("unreachable")
	}
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_WORKFLOW": "CI", "GITHUB_JOB": "build", "GITHUB_RUN_ID": "77"}
	code, stdout, stderr := mainWith(env, boom)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := `::error::gantry-test crashed (assignment to entry in nil map) in workflow "CI", job "build", run "77": this is a bug in Gantry; re-run with RUNNER_DEBUG=1 for the stack trace and report it`
	if strings.TrimSpace(stdout) != want || stderr != "" {
		t.Errorf("log = %q\nwant %q", stdout, want)
	}
	if strings.Contains(stdout, "goroutine") {
		t.Errorf("a stack trace without RUNNER_DEBUG: %s", stdout)
	}

	env["RUNNER_DEBUG"] = "1"
	_, stdout, _ = mainWith(env, boom)
	if !strings.Contains(stdout, "goroutine") || !strings.Contains(stdout, "the stack trace is in the log above") {
		t.Errorf("RUNNER_DEBUG=1 log has no stack trace:\n%s", stdout)
	}

	_, _, stderr = mainWith(map[string]string{}, boom)
	if !strings.Contains(stderr, "error: gantry-test crashed (assignment to entry in nil map) in a run outside GitHub Actions") {
		t.Errorf("outside Actions: %q", stderr)
	}
}

func TestOutputValueCannotForgeAnotherOutput(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	e := ghaction.New(func(string) string { return "" }, &w)
	evil := "x\n_GitHubActionsFileCommandDelimeter_\nimage=attacker/app\nghadelimiter_\nimage=attacker"
	if err := e.SetOutput("notes", evil); err != nil {
		t.Fatal(err)
	}
	outs, err := ghaction.ParseOutputFile(&w)
	if err != nil || len(outs) != 1 || outs["notes"] != evil {
		t.Errorf("outputs = %q, %v; want only notes, intact", outs, err)
	}
}
