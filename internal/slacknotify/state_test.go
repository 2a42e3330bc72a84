package slacknotify

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// messageOf renders st the way Run does and returns it as Slack would
// hand it back.
func messageOf(st runState) slack.Message {
	v := view{state: st, details: true}
	m := v.render()
	var sm slack.Message
	sm.Blocks = slack.Blocks{BlockSet: m.Blocks}
	sm.Attachments = m.Attachments
	return sm
}

func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("ünïcødé & <tags> ", 40)
	st := runState{
		Image: image,
		Stages: []stageRow{
			{Name: "build", Status: "success", Start: 1795534200, End: 1795534295},
			{Name: "canary 50%", Env: "production", Status: "fail", Note: "p95 **1.4 s** > 1 s"},
			{Name: "deploy", Env: "production", Status: "rolled-back", Note: long},
			{Name: "scan", Status: "started", Start: 1795534300},
		},
	}
	m := messageOf(st)
	for _, b := range m.Blocks.BlockSet {
		if n := len(b.ID()); n > maxBlockID {
			t.Errorf("block_id of %d characters, Slack's limit is %d: %s", n, maxBlockID, b.ID())
		}
	}
	got := decodeState(m)
	if got.Image != st.Image || len(got.Stages) != len(st.Stages) {
		t.Fatalf("decoded %+v, want %+v", got, st)
	}
	for i, want := range st.Stages {
		g := got.Stages[i]
		if i == 2 {
			// The long note is cut to fit the block_id, from the end.
			if !strings.HasPrefix(long, g.Note) || len(g.Note) < 20 {
				t.Errorf("note %q is not a prefix of the original", g.Note)
			}
			g.Note = want.Note
		}
		if !reflect.DeepEqual(g, want) {
			t.Errorf("stage %d = %+v, want %+v", i, g, want)
		}
	}
}

func TestDecodeStateIgnoresForeignBlocks(t *testing.T) {
	t.Parallel()
	var m slack.Message
	m.Blocks = slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(mrkdwn("someone else's"), nil, nil, slack.SectionBlockOptionBlockID("abc123")),
		slack.NewSectionBlock(mrkdwn("a future format"), nil, nil, slack.SectionBlockOptionBlockID("gantry:v2:stage:n=x")),
		slack.NewSectionBlock(mrkdwn("no name"), nil, nil, slack.SectionBlockOptionBlockID(stagePrefix+"s=success")),
		slack.NewSectionBlock(mrkdwn("bad encoding"), nil, nil, slack.SectionBlockOptionBlockID(stagePrefix+"n=%zz")),
		slack.NewDividerBlock(),
	}}
	if st := decodeState(m); len(st.Stages) != 0 || st.Image != "" {
		t.Errorf("decoded %+v from blocks Gantry did not write", st)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	now := time.Unix(1795534200, 0)
	var st runState
	st.apply(stageUpdate{Stage: "deploy", Env: "staging", Status: "started", Image: image}, now)
	st.apply(stageUpdate{Stage: "deploy", Env: "production", Status: "started"}, now)
	i := st.apply(stageUpdate{Stage: "Deploy", Env: "STAGING", Status: "success", Note: "3/3 pods"}, now.Add(90*time.Second))
	if i != 0 || len(st.Stages) != 2 {
		t.Fatalf("index %d, stages %+v: want deploy→staging updated in place", i, st.Stages)
	}
	if r := st.Stages[0]; r.Status != "success" || r.End-r.Start != 90 || r.Note != "3/3 pods" {
		t.Errorf("deploy→staging = %+v, want success after 90s with its note", r)
	}
	// A note is kept when a later update of the stage brings none.
	st.apply(stageUpdate{Stage: "deploy", Env: "staging", Status: "success"}, now.Add(100*time.Second))
	if st.Stages[0].Note != "3/3 pods" {
		t.Errorf("note dropped: %+v", st.Stages[0])
	}
	// Running again starts a new clock.
	st.apply(stageUpdate{Stage: "deploy", Env: "staging", Status: "started"}, now.Add(200*time.Second))
	if r := st.Stages[0]; r.Start != now.Unix()+200 || r.End != 0 {
		t.Errorf("re-run = %+v, want a new start and no end", r)
	}
	if st.Image != image {
		t.Errorf("image %q, want it kept from the first update", st.Image)
	}

	var many runState
	for n := range maxStages + 5 {
		i = many.apply(stageUpdate{Stage: fmt.Sprintf("step %d", n), Status: "success"}, now)
	}
	if len(many.Stages) != maxStages || many.Stages[0].Name != "step 5" || i != maxStages-1 {
		t.Errorf("after %d stages: %d kept, first %q, index %d; want the latest %d", maxStages+5, len(many.Stages), many.Stages[0].Name, i, maxStages)
	}
	if blocks := len(messageOf(many).Blocks.BlockSet); blocks > 50 {
		t.Errorf("%d blocks, Slack's limit is 50", blocks)
	}
}

func TestOverall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		statuses []string
		want     string
		colour   string
	}{
		{[]string{"success", "pass"}, "pass", "#2EB67D"},
		{[]string{"success", "started"}, "started", "#36C5F0"},
		{[]string{"fail", "rolled-back"}, "fail", "#E01E5A"},
		{[]string{"success", "rolled-back"}, "rolled-back", "#ECB22E"},
		{[]string{"started", "cancelled"}, "cancelled", "#9E9EA6"},
		{[]string{"skipped", "success"}, "success", "#2EB67D"},
		{[]string{"skipped"}, "skipped", "#9E9EA6"},
		{[]string{"weird"}, "weird", "#9E9EA6"},
	}
	for _, tt := range tests {
		var st runState
		for i, s := range tt.statuses {
			st.Stages = append(st.Stages, stageRow{Name: fmt.Sprint(i), Status: normStatus(s)})
		}
		top := st.overall()
		if top.Status != tt.want || classOf(top.Status).colour() != tt.colour {
			t.Errorf("overall of %v = %s (%s), want %s (%s)", tt.statuses, top.Status, classOf(top.Status).colour(), tt.want, tt.colour)
		}
	}
}

func TestNormStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		class    class
	}{
		{"success", "success", classSuccess},
		{" Success ", "success", classSuccess},
		{"In progress", "in-progress", classRunning},
		{"in_progress", "in-progress", classRunning},
		{"canceled", "cancelled", classCancelled},
		{"Rolled back", "rolled-back", classWarning},
		{"rolledback", "rolled-back", classWarning},
		{"FAILURE", "failure", classFailure},
		{"", "unknown", classNeutral},
		{"promoted", "promoted", classSuccess},
	}
	for _, tt := range tests {
		if got := normStatus(tt.in); got != tt.want || classOf(got) != tt.class {
			t.Errorf("normStatus(%q) = %q (class %d), want %q (class %d)", tt.in, got, classOf(got), tt.want, tt.class)
		}
	}
	if h := heading("rolled-back"); h != "Rolled back" {
		t.Errorf("heading(rolled-back) = %q", h)
	}
	if h := title("état"); h != "État" {
		t.Errorf("title(état) = %q", h)
	}
}

func TestParseFields(t *testing.T) {
	t.Parallel()
	got, err := parseFields([]string{"version=1.2.3", "reason = p95 over limit", "second line of the reason", "url=https://x.io/?a=b=c", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := []field{
		{"version", "1.2.3"},
		{"reason", "p95 over limit\nsecond line of the reason"},
		{"url", "https://x.io/?a=b=c"},
		{"empty", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseFields = %q, want %q", got, want)
	}
	for _, bad := range [][]string{{"no equals"}, {"=value"}} {
		if _, err := parseFields(bad); err == nil || !strings.Contains(err.Error(), `input "fields"`) {
			t.Errorf("parseFields(%q) error = %v, want one naming the input", bad, err)
		}
	}
}

func TestRunContextFromRun(t *testing.T) {
	t.Parallel()
	tag := tagPush(t)
	if tag.CommitMessage != "Release v1.2.3" || tag.CommitAuthor != "Mara Okafor" || tag.Workflow != "Release" ||
		tag.RunNumber != 57 || tag.RunURL != "https://github.com/acme/Prompt-Builder/actions/runs/4242" ||
		tag.CommitURL() != "https://github.com/acme/Prompt-Builder/commit/9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5" || tag.refLabel() != "v1.2.3" {
		t.Errorf("tag push context = %+v", tag)
	}
	pr := runContext(t, "pull_request.json", map[string]string{
		"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/42/merge", "GITHUB_REPOSITORY": "acme/Prompt-Builder",
	})
	if pr.CommitMessage != "Add fuzzy search to the template picker" || pr.CommitAuthor != "tbergstrom" ||
		pr.PRURL != "https://github.com/acme/Prompt-Builder/pull/42" || pr.refLabel() != "#42" || pr.Branch() != "feature/search" {
		t.Errorf("pull request context = %+v", pr)
	}
}
