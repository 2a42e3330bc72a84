package main

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/slacknotify/notifytest"
)

func TestMain(m *testing.M) { actiontest.TestMain(m, main) }

// TestOutsideActions runs gantry-notify as a process from a shell, GitLab
// or Jenkins would: no GITHUB_* at all, a bot token, and a real Slack Web
// API (slack-go's slacktest with notifytest's handlers). The message is
// posted, then updated in place from the first run's outputs; outputs come
// on stdout, the log is plain on stderr without the token, and the exit
// code is 0 or 1.
func TestOutsideActions(t *testing.T) {
	ws := notifytest.Start()
	t.Cleanup(ws.Close)
	inputs := func(extra map[string]string) map[string]string {
		env := map[string]string{
			"INPUT_TOKEN":       notifytest.Token,
			"INPUT_CHANNEL":     "#deploys",
			"INPUT_API-URL":     ws.APIURL(),
			"INPUT_TIMEOUT":     "30s",
			"INPUT_STAGE":       "deploy",
			"INPUT_ENVIRONMENT": "staging",
			"INPUT_STATUS":      "success",
			"INPUT_IMAGE":       "ghcr.io/acme/prompt-builder@sha256:ab10",
		}
		maps.Copy(env, extra)
		return env
	}

	var first map[string]string
	t.Run("posts", func(t *testing.T) {
		r := actiontest.Exec(t, "gantry-notify", inputs(nil))
		if r.Code != 0 {
			t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
		}
		first = actiontest.StdoutOutputs(t, r)
		if first["ts"] == "" || first["channel-id"] != "C0DEPLOYS" || first["thread-ts"] != "" {
			t.Fatalf("outputs on stdout = %v, want ts and channel-id C0DEPLOYS", first)
		}
		msg, ok := ws.Message("C0DEPLOYS", first["ts"])
		if !ok {
			t.Fatalf("the workspace has no message %s in C0DEPLOYS", first["ts"])
		}
		preview := notifytest.Preview(msg)
		if !strings.Contains(preview, "*deploy* → *staging* — success") {
			t.Errorf("the message lacks the stage:\n%s", preview)
		}
		t.Logf("message without a GitHub context:\n%s", preview)
		actiontest.Plain(t, r.Stderr, notifytest.Token)
		if !strings.Contains(r.Stderr, "Slack: posted message "+first["ts"]+" in C0DEPLOYS") {
			t.Errorf("the log does not say the message was posted:\n%s", r.Stderr)
		}
		if strings.Contains(r.Stdout, "Slack:") {
			t.Errorf("log lines on stdout, which is for outputs only:\n%s", r.Stdout)
		}
	})
	if first == nil {
		t.FailNow()
	}

	t.Run("updates in place, json outputs", func(t *testing.T) {
		env := inputs(map[string]string{
			"INPUT_MESSAGE-TS":  first["ts"],
			"INPUT_CHANNEL":     first["channel-id"],
			"INPUT_STAGE":       "smoke",
			"INPUT_STATUS":      "failure",
			"INPUT_TEXT":        "GET /healthz answered 503",
			"INPUT_ENVIRONMENT": "",
		})
		r := actiontest.Exec(t, "gantry-notify", env, "--output", "json")
		if r.Code != 0 {
			t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
		}
		var outs map[string]string
		if err := json.Unmarshal([]byte(r.Stdout), &outs); err != nil {
			t.Fatalf("stdout is not a JSON object of outputs: %v\n%s", err, r.Stdout)
		}
		if outs["ts"] != first["ts"] || outs["channel-id"] != "C0DEPLOYS" {
			t.Errorf("outputs = %v, want the first message's ts %s", outs, first["ts"])
		}
		msg, _ := ws.Message("C0DEPLOYS", first["ts"])
		if preview := notifytest.Preview(msg); msg.Edits != 1 || !strings.Contains(preview, "*deploy* → *staging* — success") || !strings.Contains(preview, "*smoke* — failure") {
			t.Errorf("message after %d edits, want both stages:\n%s", msg.Edits, preview)
		}
		actiontest.Plain(t, r.Stderr, notifytest.Token)
		if !strings.Contains(r.Stderr, "Slack: updated message "+first["ts"]) {
			t.Errorf("the log does not say the message was updated:\n%s", r.Stderr)
		}
	})

	t.Run("unwritable GITHUB_OUTPUT", func(t *testing.T) {
		env := inputs(nil)
		env["GITHUB_OUTPUT"] = actiontest.ReadOnlyOutput(t)
		r := actiontest.Exec(t, "gantry-notify", env)
		if r.Code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "::error::") || !strings.Contains(r.Stdout, "GITHUB_OUTPUT") {
			t.Errorf("no error annotation naming GITHUB_OUTPUT:\n%s", r.Stdout)
		}
		actiontest.MaskedFirst(t, r.Stdout, notifytest.Token)
	})
}
