package workflowtest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/slacknotify/notifytest"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// TestNotifyActionInAWorkflow runs testdata/workflows/notify-action.yml with
// act against a local Slack workspace: one message is posted, then updated
// in place by a later step with both stages on it; the token stays masked.
func TestNotifyActionInAWorkflow(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	ws := notifytest.Start()
	defer ws.Close()
	result := t.TempDir()
	log, err := act.Run(t.Context(), "push", "testdata/workflows/notify-action.yml", map[string]string{
		"SLACK_TOKEN": notifytest.Token,
		"SLACK_API":   ws.APIURL(),
		"RESULT":      result,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	b, err := os.ReadFile(filepath.Join(result, "outputs"))
	if err != nil {
		t.Fatalf("no outputs: %v\n%s", err, log)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	if out["ts1"] == "" || out["ts1"] != out["ts2"] {
		t.Fatalf("outputs %v: the second step must update the first step's message", out)
	}
	if n := len(ws.Messages()); n != 1 {
		t.Errorf("%d messages in the workspace, want 1", n)
	}
	msg, ok := ws.Message(out["channel"], out["ts1"])
	if !ok {
		t.Fatalf("message %s not in %s", out["ts1"], out["channel"])
	}
	preview := notifytest.Preview(msg)
	for _, want := range []string{"*build*", "*deploy* → *staging*", "CrashLoopBackOff"} {
		if !strings.Contains(preview, want) {
			t.Errorf("final message lacks %q:\n%s", want, preview)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, notifytest.Token) && !strings.Contains(line, "add-mask") {
			t.Errorf("the token appears in the workflow log: %s", line)
		}
	}
}
