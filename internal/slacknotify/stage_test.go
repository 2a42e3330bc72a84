package slacknotify

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/gantry-ci/gantry/internal/golden"
	"github.com/gantry-ci/gantry/internal/slacknotify/notifytest"
)

// step is one gantry-notify step of a pipeline run.
type step struct {
	stage, env, status, text string
	image                    string
	fields                   []string
	after                    time.Duration // since the run started
}

// runSteps runs steps in order, each handing ts and channel-id to the
// next as a workflow would, and returns the last outputs.
func runSteps(t *testing.T, ws *notifytest.Workspace, rec *recorder, thread bool, steps []step) Outputs {
	t.Helper()
	var out Outputs
	for i, s := range steps {
		in := inputs(t, ws, rec)
		in.Stage, in.Environment, in.Status, in.Text, in.Image, in.Fields = s.stage, s.env, s.status, s.text, s.image, s.fields
		in.Now = at(s.after)
		in.Thread = thread
		if i > 0 {
			in.MessageTS, in.Channel = out.TS, out.ChannelID
		}
		var err error
		out, err = Run(t.Context(), in)
		if err != nil {
			t.Fatalf("step %d (%s %s): %v", i+1, s.stage, s.status, err)
		}
		if !out.Posted {
			t.Fatalf("step %d (%s %s) not posted; warnings: %v", i+1, s.stage, s.status, rec.warnings)
		}
	}
	return out
}

func TestPost(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t)
	rec := &recorder{}
	in := inputs(t, ws, rec)
	in.Stage, in.Status, in.Image = "build", "success", image
	in.Fields = []string{"platforms=linux/amd64, linux/arm64", "digest=sha256:ab10c2f0"}
	out, err := Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	msgs := ws.Messages()
	if len(msgs) != 1 {
		t.Fatalf("workspace has %d messages, want 1", len(msgs))
	}
	if out.TS != msgs[0].TS || out.ChannelID != "C0DEPLOYS" || out.ThreadTS != "" || !out.Posted {
		t.Errorf("outputs = %+v, want ts %s, channel-id C0DEPLOYS, no thread-ts", out, msgs[0].TS)
	}
	if len(rec.warnings) > 0 {
		t.Errorf("warnings: %v", rec.warnings)
	}
	// The token travels in the request body, as slack-go sends it.
	for _, c := range ws.Calls() {
		if c.Form.Get("token") != notifytest.Token {
			t.Errorf("%s carried token %q", c.Method, c.Form.Get("token"))
		}
		if c.Method == "chat.postMessage" && c.Form.Get("unfurl_links") != "false" {
			t.Errorf("chat.postMessage unfurl_links = %q, want false (a link preview would bury the message)", c.Form.Get("unfurl_links"))
		}
	}
	golden.Check(t, goldenMessage(t, msgs[0]))
}

// TestUpdateInPlace runs a whole pipeline against one message: every step
// knows only the previous step's ts and channel-id, and the stages so far
// come back from the message itself.
func TestUpdateInPlace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		steps     []step
		wantRows  []string // stage rows, in order, as "name env status"
		wantColor string
	}{
		{
			name: "release rolled back",
			steps: []step{
				{stage: "build", status: "started"},
				{stage: "build", status: "success", image: image, after: 95 * time.Second},
				{stage: "scan", status: "pass", text: "0 critical, 2 high (ignored until 2026-12-31)", after: 2 * time.Minute},
				{stage: "deploy", env: "staging", status: "started", after: 3 * time.Minute},
				{stage: "deploy", env: "staging", status: "success", after: 5 * time.Minute},
				{stage: "canary 10%", env: "production", status: "pass", after: 11 * time.Minute},
				{stage: "canary 50%", env: "production", status: "fail", text: "p95 **1.4 s** > 1 s over 5m ([decision log](https://github.com/acme/Prompt-Builder/actions/runs/4242))", after: 17 * time.Minute},
				{stage: "deploy", env: "production", status: "rolled-back", fields: []string{"revision=7", "previous=sha256:77aa01"}, after: 18 * time.Minute},
			},
			wantRows: []string{
				"build  success", "scan  pass", "deploy staging success",
				"canary 10% production pass", "canary 50% production fail", "deploy production rolled-back",
			},
			wantColor: "#E01E5A",
		},
		{
			name: "still running",
			steps: []step{
				{stage: "build", status: "success", image: image},
				{stage: "deploy", env: "staging", status: "in progress", after: time.Minute},
			},
			wantRows:  []string{"build  success", "deploy staging in-progress"},
			wantColor: "#36C5F0",
		},
		{
			name: "re-run job replaces its row",
			steps: []step{
				{stage: "deploy", env: "staging", status: "failure", image: image},
				{stage: "Deploy", env: "Staging", status: "started", after: time.Minute},
				{stage: "deploy", env: "staging", status: "success", after: 3 * time.Minute},
			},
			wantRows:  []string{"deploy staging success"},
			wantColor: "#2EB67D",
		},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			ws := startWorkspace(t)
			rec := &recorder{}
			out := runSteps(t, ws, rec, false, tt.steps)
			msgs := ws.Messages()
			if len(msgs) != 1 {
				t.Fatalf("workspace has %d messages, want the one message updated in place", len(msgs))
			}
			if msgs[0].Edits != len(tt.steps)-1 || out.TS != msgs[0].TS || out.ChannelID != "C0DEPLOYS" {
				t.Errorf("message %s edited %d times, outputs %+v; want %d edits of it", msgs[0].TS, msgs[0].Edits, out, len(tt.steps)-1)
			}
			if len(rec.warnings) > 0 {
				t.Errorf("warnings: %v", rec.warnings)
			}
			st := decodeStored(t, msgs[0])
			var rows []string
			for _, r := range st.Stages {
				rows = append(rows, r.Name+" "+r.Env+" "+r.Status)
			}
			if !slices.Equal(rows, tt.wantRows) {
				t.Errorf("stages:\n got %q\nwant %q", rows, tt.wantRows)
			}
			if st.Image != image {
				t.Errorf("image = %q, want %q carried from the build step", st.Image, image)
			}
			if c := attachmentColor(t, msgs[0]); c != tt.wantColor {
				t.Errorf("colour = %s, want %s", c, tt.wantColor)
			}
			golden.Check(t, goldenMessage(t, msgs[0]))
		})
	}
}

func decodeStored(t *testing.T, m notifytest.Message) runState {
	t.Helper()
	b, err := json.Marshal(map[string]json.RawMessage{"blocks": m.Blocks, "attachments": m.Attachments})
	if err != nil {
		t.Fatal(err)
	}
	var sm slack.Message
	if err := json.Unmarshal(b, &sm); err != nil {
		t.Fatal(err)
	}
	return decodeState(sm)
}

func attachmentColor(t *testing.T, m notifytest.Message) string {
	t.Helper()
	var atts []struct{ Color string }
	if err := json.Unmarshal(m.Attachments, &atts); err != nil || len(atts) != 1 {
		t.Fatalf("attachments %s: want one (%v)", m.Attachments, err)
	}
	return atts[0].Color
}

func TestThreadReplies(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t)
	rec := &recorder{}
	out := runSteps(t, ws, rec, true, []step{
		{stage: "build", status: "success", image: image, fields: []string{"platforms=linux/amd64, linux/arm64"}},
		{stage: "deploy", env: "staging", status: "success", text: "Rolled out 3/3 pods.\nRevision 12.", fields: []string{"url=https://staging.example.com", "revision=12"}, after: 4 * time.Minute},
	})
	msgs := ws.Messages()
	if len(msgs) != 3 {
		t.Fatalf("workspace has %d messages, want the run's message and 2 replies", len(msgs))
	}
	parent := msgs[0]
	if out.TS != parent.TS || out.ThreadTS != parent.TS {
		t.Errorf("outputs ts %q thread-ts %q, want both %q (the thread is the run's message)", out.TS, out.ThreadTS, parent.TS)
	}
	for _, r := range msgs[1:] {
		if r.ThreadTS != parent.TS {
			t.Errorf("reply %s has thread_ts %q, want %q", r.TS, r.ThreadTS, parent.TS)
		}
	}
	// The message stays a summary: the details are in the replies.
	if s := strings.Join(mrkdwnTexts(t, parent), "\n"); strings.Contains(s, "staging.example.com") || strings.Contains(s, "Revision 12") {
		t.Errorf("the run's message holds a step's details in thread mode:\n%s", s)
	}
	t.Run("message", func(t *testing.T) { golden.Check(t, goldenMessage(t, parent)) })
	t.Run("reply", func(t *testing.T) { golden.Check(t, goldenMessage(t, msgs[2])) })
}

// controlSeq matches Slack's control sequences: <…> links, mentions and
// broadcasts.
var controlSeq = regexp.MustCompile(`<([^<>]*)>`)

// TestEscaping gives every user-controlled value a hostile spelling and
// checks that the only control sequences in the message are Gantry's own
// links to GitHub.
func TestEscaping(t *testing.T) {
	t.Parallel()
	const hostile = "<!channel> <@U123> <https://evil.example|click> & <!subteam^S1> <#C999>"
	tests := []struct {
		name  string
		setup func(*Inputs)
	}{
		{"commit message", func(in *Inputs) { in.Git.CommitMessage = hostile + "\n\nbody <!here>" }},
		{"commit author", func(in *Inputs) { in.Git.CommitAuthor = hostile }},
		{"branch name", func(in *Inputs) {
			in.Git.Ref = "refs/heads/feat/<!channel>`x`"
		}},
		{"pull request", func(in *Inputs) {
			in.Git = runContext(t, "pull_request.json", map[string]string{
				"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/42/merge",
				"GITHUB_HEAD_REF": "feature/<!here>", "GITHUB_REPOSITORY": "acme/Prompt-Builder",
			})
			in.Git.CommitMessage = hostile
		}},
		{"text", func(in *Inputs) {
			in.Text = hostile + "\n[ok](https://github.com/acme) [bad](javascript:alert(1)) **<@U1>** `<!here>`\n```\n<!channel>\n```"
		}},
		{"fields", func(in *Inputs) {
			in.Fields = []string{"who=" + hostile, "<!here>=x", "url=https://x.example/a?b=<!channel>"}
		}},
		{"stage environment status", func(in *Inputs) {
			in.Stage, in.Environment, in.Status = hostile, hostile, "<!channel>"
		}},
		{"workflow and actor", func(in *Inputs) { in.Git.Workflow, in.Git.Actor = hostile, hostile }},
		{"image", func(in *Inputs) { in.Image = hostile }},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			ws := startWorkspace(t)
			rec := &recorder{}
			in := inputs(t, ws, rec)
			in.Stage, in.Status = "build", "success"
			tt.setup(&in)
			if _, err := Run(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			msgs := ws.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages; warnings %v", len(msgs), rec.warnings)
			}
			for _, text := range mrkdwnTexts(t, msgs[0]) {
				for _, m := range controlSeq.FindAllStringSubmatch(text, -1) {
					if !strings.HasPrefix(m[1], "https://github.com/acme/Prompt-Builder") && !strings.HasPrefix(m[1], "https://github.com/acme|") &&
						!strings.HasPrefix(m[1], "https://x.example/a?b=%3C!channel%3E|") {
						t.Errorf("control sequence %q is not one of Gantry's links, in:\n%s", m[0], text)
					}
				}
				if strings.Contains(text, "evil.example|") && strings.Contains(text, "<https://evil") {
					t.Errorf("hostile link survived: %s", text)
				}
			}
			golden.Check(t, goldenMessage(t, msgs[0]))
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		faults     []notifytest.Fault
		messageTS  bool // update an existing message
		wantSleeps []time.Duration
	}{
		{
			name:       "429 honours Retry-After",
			method:     "chat.postMessage",
			faults:     []notifytest.Fault{{Status: http.StatusTooManyRequests, RetryAfter: "7"}},
			wantSleeps: []time.Duration{7 * time.Second},
		},
		{
			name:       "429 with Retry-After 0 waits a second",
			method:     "chat.postMessage",
			faults:     []notifytest.Fault{{Status: http.StatusTooManyRequests, RetryAfter: "0"}},
			wantSleeps: []time.Duration{time.Second},
		},
		{
			name:       "429 without Retry-After backs off",
			method:     "chat.postMessage",
			faults:     []notifytest.Fault{{Status: http.StatusTooManyRequests}},
			wantSleeps: []time.Duration{time.Second},
		},
		{
			name:       "500 then success",
			method:     "chat.postMessage",
			faults:     []notifytest.Fault{{Status: http.StatusInternalServerError}},
			wantSleeps: []time.Duration{time.Second},
		},
		{
			name:       "502 503 504 back off exponentially",
			method:     "chat.postMessage",
			faults:     []notifytest.Fault{{Status: http.StatusBadGateway}, {Status: http.StatusServiceUnavailable}, {Status: http.StatusGatewayTimeout}},
			wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
		},
		{
			name:       "ok:false internal_error",
			method:     "chat.postMessage",
			faults:     []notifytest.Fault{{SlackError: "internal_error"}},
			wantSleeps: []time.Duration{time.Second},
		},
		{
			name:       "chat.update 429",
			method:     "chat.update",
			messageTS:  true,
			faults:     []notifytest.Fault{{Status: http.StatusTooManyRequests, RetryAfter: "3"}},
			wantSleeps: []time.Duration{3 * time.Second},
		},
		{
			name:       "conversations.history 503",
			method:     "conversations.history",
			messageTS:  true,
			faults:     []notifytest.Fault{{Status: http.StatusServiceUnavailable}},
			wantSleeps: []time.Duration{time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			ws := startWorkspace(t)
			rec := &recorder{}
			var first Outputs
			if tt.messageTS {
				first = runSteps(t, ws, &recorder{}, false, []step{{stage: "build", status: "success", image: image}})
			}
			ws.Fail(tt.method, tt.faults...)
			in := inputs(t, ws, rec)
			in.Stage, in.Status = "deploy", "success"
			in.MessageTS, in.Channel = first.TS, cmpOr(first.ChannelID, in.Channel)
			out, err := Run(t.Context(), in)
			if err != nil || !out.Posted {
				t.Fatalf("Run = %+v, %v; warnings %v", out, err, rec.warnings)
			}
			if !slices.Equal(rec.sleeps, tt.wantSleeps) {
				t.Errorf("waited %v, want %v", rec.sleeps, tt.wantSleeps)
			}
			if len(rec.warnings) > 0 {
				t.Errorf("warnings after a successful retry: %v", rec.warnings)
			}
			if n := len(ws.Messages()); n != 1 {
				t.Errorf("%d messages, want 1 (a retried post must not duplicate, an update must not post)", n)
			}
			st := decodeStored(t, ws.Messages()[0])
			if tt.messageTS && len(st.Stages) != 2 {
				t.Errorf("stages after the retried update: %+v, want build and deploy", st.Stages)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestPermanentFailure: when Slack cannot take the message, the step warns
// and succeeds — unless fail-on-error — and the outputs still hand the
// message on.
func TestPermanentFailure(t *testing.T) {
	t.Parallel()
	always500 := slices.Repeat([]notifytest.Fault{{Status: http.StatusInternalServerError}}, 10)
	tests := []struct {
		name       string
		faults     []notifytest.Fault
		channel    string
		token      string
		wantSleeps []time.Duration
		want       []string // in the warning / error
	}{
		{
			name:       "5xx every time",
			faults:     always500,
			wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
			want:       []string{"chat.postMessage: Slack answered 500 Internal Server Error", "gave up after 4 attempts"},
		},
		{
			name:   "Retry-After beyond the limit",
			faults: []notifytest.Fault{{Status: http.StatusTooManyRequests, RetryAfter: "3600"}},
			want:   []string{"Slack asks to wait 1h0m0s, longer than the 1m0s this step waits"},
		},
		{
			name:    "unknown channel is not retried",
			channel: "#nowhere",
			want:    []string{"chat.postMessage: channel_not_found", `check input "channel"`},
		},
		{
			name:  "bad token is not retried",
			token: "xoxb-9999-wrong-token",
			want:  []string{"chat.postMessage: invalid_auth", `check input "token"`},
		},
		{
			name:   "not in channel",
			faults: []notifytest.Fault{{SlackError: "not_in_channel"}},
			want:   []string{"not_in_channel", "/invite"},
		},
	}
	for _, tt := range tests {
		for _, failOnError := range []bool{false, true} {
			name := strings.ReplaceAll(tt.name, " ", "_")
			if failOnError {
				name += "/fail-on-error"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ws := startWorkspace(t)
				ws.Fail("chat.postMessage", tt.faults...)
				rec := &recorder{}
				in := inputs(t, ws, rec)
				in.Stage, in.Status, in.FailOnError = "deploy", "success", failOnError
				in.Channel = cmpOr(tt.channel, in.Channel)
				in.Token = cmpOr(tt.token, in.Token)
				out, err := Run(t.Context(), in)
				var report string
				if failOnError {
					if err == nil {
						t.Fatal("Run = nil error with fail-on-error, want the Slack failure")
					}
					if len(rec.warnings) != 0 {
						t.Errorf("warnings with fail-on-error: %v (the error is the report)", rec.warnings)
					}
					report = err.Error()
				} else {
					if err != nil {
						t.Fatalf("Run = %v, want nil: a Slack failure must not fail the step", err)
					}
					if len(rec.warnings) != 1 {
						t.Fatalf("warnings = %q, want exactly one", rec.warnings)
					}
					report = rec.warnings[0]
				}
				if out.Posted {
					t.Error("Posted = true")
				}
				if !strings.HasPrefix(report, "notification not sent to Slack: ") {
					t.Errorf("report %q does not start with what happened", report)
				}
				for _, w := range tt.want {
					if !strings.Contains(report, w) {
						t.Errorf("report %q does not contain %q", report, w)
					}
				}
				if !slices.Equal(rec.sleeps, tt.wantSleeps) {
					t.Errorf("waited %v, want %v", rec.sleeps, tt.wantSleeps)
				}
				if strings.Contains(report+rec.all(), in.Token) {
					t.Errorf("the token is in the log or error:\n%s\n%s", report, rec.all())
				}
			})
		}
	}

	t.Run("update that fails keeps the message for the next job", func(t *testing.T) {
		t.Parallel()
		ws := startWorkspace(t)
		first := runSteps(t, ws, &recorder{}, false, []step{{stage: "build", status: "success"}})
		ws.Fail("chat.update", always500...)
		rec := &recorder{}
		in := inputs(t, ws, rec)
		in.Stage, in.Status, in.MessageTS, in.Channel = "deploy", "started", first.TS, first.ChannelID
		out, err := Run(t.Context(), in)
		if err != nil || len(rec.warnings) != 1 {
			t.Fatalf("Run = %v, warnings %v; want nil and one warning", err, rec.warnings)
		}
		if out.TS != first.TS || out.ChannelID != first.ChannelID {
			t.Errorf("outputs %+v, want the message passed on (ts %s, channel-id %s)", out, first.TS, first.ChannelID)
		}
	})
}

func TestNoCredentials(t *testing.T) {
	t.Parallel()
	for _, failOnError := range []bool{false, true} {
		rec := &recorder{}
		_, err := Run(t.Context(), Inputs{Status: "success", FailOnError: failOnError, Log: rec, Sleep: rec.sleep})
		switch {
		case failOnError && err == nil:
			t.Error("fail-on-error without token or webhook: nil error")
		case !failOnError && (err != nil || len(rec.warnings) != 1 || !strings.Contains(rec.warnings[0], "forks")):
			t.Errorf("without token or webhook: err %v, warnings %q; want nil and a warning that explains forks", err, rec.warnings)
		}
	}
}

func TestMessageGone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults map[string][]notifytest.Fault
		ts     string
		want   string // in the warning
	}{
		{name: "unknown ts posts a new message", ts: "1795000000.000001", want: "posting a new one"},
		{name: "update refused posts a new message", faults: map[string][]notifytest.Fault{"chat.update": {{SlackError: "cant_update_message"}}}, want: "cant_update_message"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			ws := startWorkspace(t)
			first := runSteps(t, ws, &recorder{}, false, []step{{stage: "build", status: "success"}})
			for m, f := range tt.faults {
				ws.Fail(m, f...)
			}
			rec := &recorder{}
			in := inputs(t, ws, rec)
			in.Stage, in.Status, in.MessageTS, in.Channel = "deploy", "success", cmpOr(tt.ts, first.TS), first.ChannelID
			out, err := Run(t.Context(), in)
			if err != nil || !out.Posted {
				t.Fatalf("Run = %+v, %v", out, err)
			}
			if len(ws.Messages()) != 2 || out.TS == first.TS || out.TS != ws.Messages()[1].TS {
				t.Errorf("outputs %+v, messages %d: want a second message, and its ts", out, len(ws.Messages()))
			}
			if len(rec.warnings) != 1 || !strings.Contains(rec.warnings[0], tt.want) {
				t.Errorf("warnings %q, want one containing %q", rec.warnings, tt.want)
			}
		})
	}
}

// TestHistoryUnreadable: without channels:history the update still
// happens (right status and colour), with a warning naming the scope.
func TestHistoryUnreadable(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t)
	first := runSteps(t, ws, &recorder{}, false, []step{{stage: "build", status: "success"}})
	ws.Fail("conversations.history", notifytest.Fault{SlackError: "missing_scope", Needed: "channels:history"})
	rec := &recorder{}
	in := inputs(t, ws, rec)
	in.Stage, in.Status, in.MessageTS, in.Channel = "deploy", "failure", first.TS, first.ChannelID
	out, err := Run(t.Context(), in)
	if err != nil || !out.Posted || out.TS != first.TS {
		t.Fatalf("Run = %+v, %v", out, err)
	}
	if len(rec.warnings) != 1 || !strings.Contains(rec.warnings[0], "channels:history") {
		t.Errorf("warnings %q, want one naming channels:history", rec.warnings)
	}
	m, _ := ws.Message(first.ChannelID, first.TS)
	if c := attachmentColor(t, m); c != classFailure.colour() {
		t.Errorf("colour %s, want failure's", c)
	}
}

// webhookServer is an incoming webhook: it answers the queued statuses
// first, then 200 "ok", and keeps the payloads it accepted.
type webhookServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	payloads []map[string]any
	hits     int
}

func startWebhook(t *testing.T, statuses ...int) *webhookServer {
	h := &webhookServer{statuses: statuses}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.hits++
		if r.URL.Path != "/services/T000/B000/s3cr3tw3bh00k" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("no_service"))
			return
		}
		if len(h.statuses) > 0 {
			code := h.statuses[0]
			h.statuses = h.statuses[1:]
			if code == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "2")
			}
			w.WriteHeader(code)
			// Like a proxy's error page, it echoes the request: the
			// webhook's secret path must not reach the log.
			w.Write([]byte("upstream failed for POST " + r.URL.Path))
			return
		}
		var p map[string]any
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte("invalid_payload"))
			return
		}
		h.payloads = append(h.payloads, p)
		w.Write([]byte("ok"))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *webhookServer) hook() string { return h.URL + "/services/T000/B000/s3cr3tw3bh00k" }

func TestWebhook(t *testing.T) {
	t.Parallel()
	t.Run("posts", func(t *testing.T) {
		t.Parallel()
		h := startWebhook(t, http.StatusTooManyRequests, http.StatusBadGateway)
		rec := &recorder{}
		in := Inputs{
			Webhook: h.hook(), Status: "success", Stage: "deploy", Environment: "staging",
			Image: image, MessageTS: "1795600000.000001", Thread: true, Text: "Deployed **1.2.3**",
			APIURL: "https://slack.com/api/", Git: tagPush(t), Log: rec, Sleep: rec.sleep, Now: at(0),
		}
		out, err := Run(t.Context(), in)
		if err != nil || !out.Posted {
			t.Fatalf("Run = %+v, %v; warnings %v", out, err, rec.warnings)
		}
		if out.TS != "" || out.ChannelID != "" || out.ThreadTS != "" {
			t.Errorf("outputs %+v, want none: a webhook says nothing about the message", out)
		}
		if want := []time.Duration{2 * time.Second, 2 * time.Second}; !slices.Equal(rec.sleeps, want) {
			t.Errorf("waited %v, want %v (Retry-After, then backoff)", rec.sleeps, want)
		}
		if len(h.payloads) != 1 {
			t.Fatalf("webhook got %d payloads, want 1", len(h.payloads))
		}
		p := h.payloads[0]
		if p["unfurl_links"] != false {
			t.Errorf("unfurl_links = %v, want false", p["unfurl_links"])
		}
		blocks, _ := json.Marshal(p["blocks"])
		atts, _ := json.Marshal(p["attachments"])
		text, _ := p["text"].(string)
		golden.Check(t, goldenMessage(t, notifytest.Message{Text: text, Blocks: blocks, Attachments: atts}))
		if strings.Contains(rec.all(), "s3cr3tw3bh00k") || !strings.Contains(rec.all(), "upstream failed for POST /***") {
			t.Errorf("the webhook URL is in the log, or the log lacks the redacted retry:\n%s", rec.all())
		}
	})
	t.Run("failures never show the URL", func(t *testing.T) {
		t.Parallel()
		revoked := startWebhook(t)
		closed := startWebhook(t)
		closed.Close()
		tests := []struct {
			name, hook string
			want       string
		}{
			{"revoked", revoked.URL + "/services/T000/B000/r3v0k3dh00k", `Slack answered 404 Not Found: no_service (check input "webhook"`},
			{"unreachable", closed.URL + "/services/T000/B000/s3cr3tw3bh00k", "connection refused"},
		}
		for _, tt := range tests {
			rec := &recorder{}
			in := Inputs{Webhook: tt.hook, Status: "failure", APIURL: "https://slack.com/api/", Log: rec, Sleep: rec.sleep, Now: at(0), FailOnError: true}
			_, err := Run(t.Context(), in)
			if err == nil {
				t.Fatalf("%s: Run = nil error with fail-on-error", tt.name)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: error %q does not contain %q", tt.name, err, tt.want)
			}
			u := strings.TrimPrefix(tt.hook, "http://")
			for _, secret := range []string{tt.hook, u, "r3v0k3dh00k", "s3cr3tw3bh00k"} {
				if strings.Contains(err.Error()+rec.all(), secret) {
					t.Errorf("%s: %q appears in the error or log:\n%s\n%s", tt.name, secret, err, rec.all())
				}
			}
		}
	})
	t.Run("bad URL is an input error that does not quote it", func(t *testing.T) {
		t.Parallel()
		_, err := Run(t.Context(), Inputs{Webhook: "hooks.slack.com/services/T/B/n0tAUrl", APIURL: "https://slack.com/api/"})
		if err == nil || !strings.Contains(err.Error(), `input "webhook"`) || strings.Contains(err.Error(), "n0tAUrl") {
			t.Errorf("error %v: want one naming the input and not quoting the value", err)
		}
	})
}

// TestTokenNeverLogged runs the paths that report errors with a token and
// checks the token shows up nowhere a person or another step could read
// it: log lines, warnings, errors, outputs and the message.
func TestTokenNeverLogged(t *testing.T) {
	t.Parallel()
	ws := startWorkspace(t)
	first := runSteps(t, ws, &recorder{}, false, []step{{stage: "build", status: "success"}})
	ws.Fail("conversations.history", notifytest.Fault{SlackError: "missing_scope", Needed: "channels:history"})
	ws.Fail("chat.update", notifytest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}, notifytest.Fault{SlackError: "invalid_auth"})
	rec := &recorder{}
	in := inputs(t, ws, rec)
	in.Stage, in.Status, in.MessageTS, in.Channel, in.FailOnError = "deploy", "failure", first.TS, first.ChannelID, true
	out, err := Run(t.Context(), in)
	if err == nil {
		t.Fatal("want an error")
	}
	b, _ := json.Marshal(out)
	for _, where := range []string{err.Error(), rec.all(), string(b)} {
		if strings.Contains(where, notifytest.Token) || strings.Contains(where, "gantrytesttoken") {
			t.Errorf("the token appears in:\n%s", where)
		}
	}
	// And a server echoing the token into its error page is redacted too.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "bad token " + r.PostForm.Get("token")})
	}))
	t.Cleanup(echo.Close)
	rec = &recorder{}
	in = inputs(t, ws, rec)
	in.APIURL, in.Status = echo.URL+"/api/", "success"
	if _, err := Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rec.all(), notifytest.Token) || !strings.Contains(rec.all(), "bad token ***") {
		t.Errorf("an echoed token is not redacted:\n%s", rec.all())
	}
}

func TestInputErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Inputs
		want string
	}{
		{"token without channel", Inputs{Token: "xoxb-1"}, `input "channel" is required with a token`},
		{"api-url", Inputs{Webhook: "https://hooks.slack.com/x", APIURL: "slack.com/api"}, `input "api-url"`},
		{"fields", Inputs{Webhook: "https://hooks.slack.com/x", Fields: []string{"no equals sign"}}, `input "fields": line 1 is not key=value`},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			if tt.in.APIURL == "" {
				tt.in.APIURL = "https://slack.com/api/"
			}
			_, err := Run(t.Context(), tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestTimeoutStopsRetries: the step's timeout bounds the whole notification,
// waits included.
func TestTimeoutStopsRetries(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never answers: only the timeout ends it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	rec := &recorder{}
	in := Inputs{
		Token: notifytest.Token, Channel: "C0DEPLOYS", Status: "success", APIURL: "http://" + l.Addr().String() + "/api/",
		Timeout: 200 * time.Millisecond, Log: rec, Sleep: rec.sleep, Now: at(0),
	}
	start := time.Now()
	if _, err := Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s with a 200ms timeout", d)
	}
	if len(rec.warnings) != 1 || !strings.Contains(rec.warnings[0], "deadline exceeded") {
		t.Errorf("warnings %q, want one about the deadline", rec.warnings)
	}
}
