package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/actioncheck"
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/slacknotify"
	"github.com/gantry-ci/gantry/internal/slacknotify/notifytest"
)

// actionEnv is the environment the composite action gives gantry-notify:
// inputs as INPUT_* (hyphens kept) and the GitHub context of a tag push.
func actionEnv(t *testing.T, ws *notifytest.Workspace, inputs map[string]string) (map[string]string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "github-output")
	if err := os.WriteFile(out, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"INPUT_TOKEN":       notifytest.Token,
		"INPUT_CHANNEL":     "#deploys",
		"INPUT_API-URL":     ws.APIURL(),
		"INPUT_TIMEOUT":     "30s",
		"GITHUB_OUTPUT":     out,
		"GITHUB_EVENT_NAME": "push",
		"GITHUB_EVENT_PATH": "../../testdata/events/push-tag.json",
		"GITHUB_REF":        "refs/tags/v1.2.3",
		"GITHUB_SHA":        "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"GITHUB_REPOSITORY": "acme/Prompt-Builder",
		"GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_RUN_ID":     "4242",
		"GITHUB_RUN_NUMBER": "57",
		"GITHUB_WORKFLOW":   "Release",
		"GITHUB_JOB":        "build",
	}
	for k, v := range inputs {
		env[k] = v
	}
	return env, out
}

// TestRunFromActionEnvironment runs the stage as the action does: a first step
// posts, a second updates the same message from the first one's outputs.
func TestRunFromActionEnvironment(t *testing.T) {
	t.Parallel()
	ws := notifytest.Start()
	t.Cleanup(ws.Close)

	env, outFile := actionEnv(t, ws, map[string]string{"INPUT_STATUS": "success", "INPUT_IMAGE": "ghcr.io/acme/prompt-builder@sha256:ab10"})
	var log bytes.Buffer
	if err := slacknotify.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log)); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	first := actiontest.Outputs(t, outFile)
	if first["ts"] == "" || first["channel-id"] != "C0DEPLOYS" || first["thread-ts"] != "" {
		t.Fatalf("outputs %v, want ts and channel-id C0DEPLOYS", first)
	}
	actiontest.MaskedFirst(t, log.String(), notifytest.Token)

	env, outFile = actionEnv(t, ws, map[string]string{
		"INPUT_STATUS": "rolled-back", "INPUT_STAGE": "deploy", "INPUT_ENVIRONMENT": "production",
		"INPUT_MESSAGE-TS": first["ts"], "INPUT_CHANNEL": first["channel-id"], "INPUT_THREAD": "true",
		"INPUT_TEXT": "Canary at 50% failed: p95 1.4 s", "INPUT_FIELDS": "revision=7\nprevious=sha256:77aa",
	})
	log.Reset()
	if err := slacknotify.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log)); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	second := actiontest.Outputs(t, outFile)
	if second["ts"] != first["ts"] || second["channel-id"] != "C0DEPLOYS" || second["thread-ts"] != first["ts"] {
		t.Errorf("outputs %v, want the first message's ts as ts and thread-ts", second)
	}
	msgs := ws.Messages()
	if len(msgs) != 2 || msgs[1].ThreadTS != first["ts"] {
		t.Fatalf("workspace holds %d messages, want the run's message and one reply", len(msgs))
	}
	if msg := notifytest.Preview(msgs[0]); !strings.Contains(msg, "*build* — success") || !strings.Contains(msg, "*deploy* → *production* — rolled back") {
		t.Errorf("the run's message lacks a stage:\n%s", msg)
	}
	actiontest.MaskedFirst(t, log.String(), notifytest.Token)
}

// TestSlackDown: a Slack failure warns and exits 0; with fail-on-error it
// fails the step. Either way the token is never printed.
func TestSlackDown(t *testing.T) {
	t.Parallel()
	for _, failOnError := range []string{"false", "true"} {
		t.Run("fail-on-error="+failOnError, func(t *testing.T) {
			t.Parallel()
			ws := notifytest.Start()
			t.Cleanup(ws.Close)
			// Not retried (a 5xx would be, with real waits): the step
			// reports at once.
			ws.Fail("chat.postMessage", notifytest.Fault{SlackError: "account_inactive"})
			env, outFile := actionEnv(t, ws, map[string]string{"INPUT_STATUS": "failure", "INPUT_FAIL-ON-ERROR": failOnError})
			var log bytes.Buffer
			gh := ghaction.New(func(k string) string { return env[k] }, &log)
			err := slacknotify.Stage(t.Context(), gh)
			if failOnError == "true" {
				if err == nil || !strings.Contains(err.Error(), "account_inactive") {
					t.Fatalf("run = %v, want the Slack failure", err)
				}
				gh.Fail(err) // what main does before exiting 1
			} else {
				if err != nil {
					t.Fatalf("run = %v, want nil: Slack must not fail the job", err)
				}
				if !strings.Contains(log.String(), "::warning::notification not sent to Slack: chat.postMessage: account_inactive") {
					t.Errorf("no warning annotation in:\n%s", log.String())
				}
			}
			if got := actiontest.Outputs(t, outFile); got["ts"] != "" {
				t.Errorf("outputs %v, want no ts", got)
			}
			actiontest.MaskedFirst(t, log.String(), notifytest.Token)
		})
	}
}

func TestBadInputsFail(t *testing.T) {
	t.Parallel()
	ws := notifytest.Start()
	t.Cleanup(ws.Close)
	env, _ := actionEnv(t, ws, map[string]string{"INPUT_THREAD": "maybe", "INPUT_TIMEOUT": "soon"})
	var log bytes.Buffer
	err := slacknotify.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log))
	if err == nil || !strings.Contains(err.Error(), `input "thread"`) || !strings.Contains(err.Error(), `input "timeout"`) {
		t.Errorf("run = %v, want errors for thread and timeout", err)
	}
}

// TestActionMatchesInputs checks actions/notify/action.yml against the Go
// Inputs and Outputs the way gantry check-actions does.
func TestActionMatchesInputs(t *testing.T) {
	t.Parallel()
	a, err := actioncheck.Load(filepath.Join("..", "..", "actions", "notify", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	stage := actioncheck.Stage{Name: "notify", Binary: "gantry-notify", Inputs: slacknotify.Inputs{}, Outputs: slacknotify.Outputs{}}
	problems := append(actioncheck.CheckSafety(a), actioncheck.CheckStage(a, stage)...)
	for _, p := range problems {
		t.Error(p)
	}
}
