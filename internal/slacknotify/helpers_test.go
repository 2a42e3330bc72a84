package slacknotify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runctx"
	"github.com/gantry-ci/gantry/internal/slacknotify/notifytest"
)

// recorder is a ghaction.Logger that keeps every line, and the Sleep that
// records the waits it was asked for and returns at once.
type recorder struct {
	mu       sync.Mutex
	infos    []string
	warnings []string
	sleeps   []time.Duration
}

func (r *recorder) Infof(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infos = append(r.infos, fmt.Sprintf(format, args...))
}

func (r *recorder) Warningf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

func (r *recorder) Group(title string) func() {
	r.Infof("::group::%s", title)
	return func() {}
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sleeps = append(r.sleeps, d)
	return ctx.Err()
}

// all is everything the step logged, for checks that a secret is absent.
func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.infos, "\n") + "\n" + strings.Join(r.warnings, "\n")
}

// runContext is the GitHub context of a run, read from an event payload in
// testdata/events exactly as the binary reads it.
func runContext(t *testing.T, event string, vars map[string]string) RunContext {
	t.Helper()
	env := map[string]string{
		"GITHUB_EVENT_PATH": filepath.Join("..", "..", "testdata", "events", event),
		"GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_RUN_ID":     "4242",
		"GITHUB_RUN_NUMBER": "57",
		"GITHUB_WORKFLOW":   "Release",
		"GITHUB_JOB":        "ship",
		"GITHUB_ACTOR":      "mara-okafor",
	}
	for k, v := range vars {
		env[k] = v
	}
	run, err := runctx.FromEnv(func(k string) string { return env[k] }, time.Unix(1795600000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return RunContextFromRun(run)
}

// tagPush is the context of the v1.2.3 tag push the demo uses.
func tagPush(t *testing.T) RunContext {
	return runContext(t, "push-tag.json", map[string]string{
		"GITHUB_EVENT_NAME": "push",
		"GITHUB_REF":        "refs/tags/v1.2.3",
		"GITHUB_SHA":        "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"GITHUB_REPOSITORY": "acme/Prompt-Builder",
	})
}

// t0 is when the test runs start; step i of a sequence runs i minutes later.
var t0 = time.Date(2026, 11, 24, 15, 30, 0, 0, time.UTC)

func at(d time.Duration) func() time.Time { return func() time.Time { return t0.Add(d) } }

const image = "ghcr.io/acme/prompt-builder@sha256:ab10c2f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f30211a2b3c4d5e"

// inputs are the inputs of a step posting to ws with a bot token.
func inputs(t *testing.T, ws *notifytest.Workspace, rec *recorder) Inputs {
	return Inputs{
		Token:   notifytest.Token,
		Channel: "#deploys",
		APIURL:  ws.APIURL(),
		Timeout: time.Minute,
		Git:     tagPush(t),
		Log:     rec,
		Sleep:   rec.sleep,
		Now:     at(0),
	}
}

func startWorkspace(t *testing.T) *notifytest.Workspace {
	ws := notifytest.Start()
	t.Cleanup(ws.Close)
	return ws
}

// goldenMessage renders a stored message as its golden file holds it: a
// preview to read, then the payload Slack received, with JSON's HTML
// escapes undone so entities read as Slack sees them.
func goldenMessage(t *testing.T, m notifytest.Message) []byte {
	t.Helper()
	var payload struct {
		Text        string `json:"text"`
		ThreadTS    string `json:"thread_ts,omitempty"`
		Blocks      any    `json:"blocks"`
		Attachments any    `json:"attachments,omitempty"`
	}
	payload.Text = m.Text
	if m.ThreadTS != "" {
		payload.ThreadTS = "(the run's message)"
	}
	if err := json.Unmarshal(m.Blocks, &payload.Blocks); err != nil {
		t.Fatalf("blocks are not JSON: %v", err)
	}
	if m.Attachments != nil {
		if err := json.Unmarshal(m.Attachments, &payload.Attachments); err != nil {
			t.Fatalf("attachments are not JSON: %v", err)
		}
	}
	var b bytes.Buffer
	b.WriteString(notifytest.Preview(m))
	b.WriteString("\n")
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(payload); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mrkdwnTexts returns every text a message shows (top-level text, block
// texts, fields and context elements, attachments included).
func mrkdwnTexts(t *testing.T, m notifytest.Message) []string {
	t.Helper()
	texts := []string{m.Text}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["text"].(string); ok {
				texts = append(texts, s)
			}
			for k, c := range x {
				if k != "block_id" {
					walk(c)
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	for _, raw := range []json.RawMessage{m.Blocks, m.Attachments} {
		if raw == nil {
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		walk(v)
	}
	return texts
}
