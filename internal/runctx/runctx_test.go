package runctx_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runctx"
)

var started = time.Date(2026, 11, 21, 3, 0, 7, 0, time.UTC)

// getenv serves vars, as a runner's environment would.
func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// event is the path of a payload fixture in testdata/events.
func event(name string) string { return filepath.Join("..", "..", "testdata", "events", name) }

func TestFromEnvTagPush(t *testing.T) {
	t.Parallel()
	r, err := runctx.FromEnv(getenv(map[string]string{
		"GITHUB_ACTIONS":             "true",
		"GITHUB_SERVER_URL":          "https://github.com",
		"GITHUB_API_URL":             "https://api.github.com",
		"GITHUB_REPOSITORY":          "acme/Prompt-Builder",
		"GITHUB_REPOSITORY_ID":       "731204518",
		"GITHUB_REPOSITORY_OWNER_ID": "98140233",
		"GITHUB_EVENT_NAME":          "push",
		"GITHUB_EVENT_PATH":          event("push-tag.json"),
		"GITHUB_REF":                 "refs/tags/v1.2.3",
		"GITHUB_REF_NAME":            "v1.2.3",
		"GITHUB_REF_TYPE":            "tag",
		"GITHUB_SHA":                 "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"GITHUB_WORKFLOW":            "Release",
		"GITHUB_WORKFLOW_REF":        "acme/Prompt-Builder/.github/workflows/release.yml@refs/tags/v1.2.3",
		"GITHUB_JOB":                 "build",
		"GITHUB_ACTOR":               "mara-okafor",
		"GITHUB_RUN_ID":              "4242",
		"GITHUB_RUN_NUMBER":          "57",
		"GITHUB_RUN_ATTEMPT":         "2",
		"RUNNER_ENVIRONMENT":         "github-hosted",
	}), started)
	if err != nil {
		t.Fatal(err)
	}
	want := runctx.Run{
		CI: runctx.GitHubActions, ServerURL: "https://github.com", APIURL: "https://api.github.com",
		Repository: "acme/Prompt-Builder", RepositoryID: "731204518", RepositoryOwnerID: "98140233", DefaultBranch: "main",
		Ref: "refs/tags/v1.2.3", RefName: "v1.2.3", RefType: "tag", SHA: "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		Workflow: "Release", WorkflowRef: "acme/Prompt-Builder/.github/workflows/release.yml@refs/tags/v1.2.3",
		Job: "build", EventName: "push", RunID: 4242, RunNumber: 57, RunAttempt: 2, Actor: "mara-okafor",
		RunnerEnvironment: "github-hosted", StartedOn: started,
	}
	got := *r
	got.Event = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromEnv:\n got %+v\nwant %+v", got, want)
	}
	if r.Event == nil || r.EventString("head_commit", "message") != "Release v1.2.3" {
		t.Errorf("the event payload was not read: head_commit.message = %q", r.EventString("head_commit", "message"))
	}
	if got, want := r.RunURL(), "https://github.com/acme/Prompt-Builder/actions/runs/4242"; got != want {
		t.Errorf("RunURL = %q, want %q", got, want)
	}
	if r.IsPR() || r.PRNumber() != 0 || r.CommitSHA() != r.SHA {
		t.Errorf("a tag push: IsPR %v, PRNumber %d, CommitSHA %q", r.IsPR(), r.PRNumber(), r.CommitSHA())
	}
}

func TestFromEnvPullRequest(t *testing.T) {
	t.Parallel()
	r, err := runctx.FromEnv(getenv(map[string]string{
		"GITHUB_REPOSITORY": "acme/Prompt-Builder",
		"GITHUB_EVENT_NAME": "pull_request",
		"GITHUB_EVENT_PATH": event("pull_request.json"),
		"GITHUB_REF":        "refs/pull/42/merge",
		"GITHUB_SHA":        "e1e2e3e4e5e6e7e8e9e0e1e2e3e4e5e6e7e8e9e0",
		"GITHUB_HEAD_REF":   "feature/search",
		"GITHUB_BASE_REF":   "main",
	}), started)
	if err != nil {
		t.Fatal(err)
	}
	// The commit of a pull request is its head, not the merge commit
	// the runner checked out.
	if !r.IsPR() || r.PRNumber() != 42 || r.CommitSHA() != "c0ffee0000000000000000000000000000000042" || r.SHA != "e1e2e3e4e5e6e7e8e9e0e1e2e3e4e5e6e7e8e9e0" {
		t.Errorf("IsPR %v, PRNumber %d, CommitSHA %q, SHA %q", r.IsPR(), r.PRNumber(), r.CommitSHA(), r.SHA)
	}
	if r.HeadRef != "feature/search" || r.BaseRef != "main" || r.CI != "" {
		t.Errorf("HeadRef %q, BaseRef %q, CI %q (no GITHUB_ACTIONS: no CI)", r.HeadRef, r.BaseRef, r.CI)
	}
	// Without GITHUB_SERVER_URL the repository is on github.com; without
	// GITHUB_RUN_ID there is no run to link.
	if r.SourceURL() != "https://github.com/acme/Prompt-Builder" || r.RunURL() != "" {
		t.Errorf("SourceURL %q, RunURL %q", r.SourceURL(), r.RunURL())
	}
	if n, ok := r.EventValue("pull_request", "number").(float64); !ok || n != 42 {
		t.Errorf("EventValue(pull_request, number) = %v", r.EventValue("pull_request", "number"))
	}
	for _, path := range [][]string{{"no_such_key"}, {"pull_request", "number", "deeper"}, {"pull_request", "head", "sha", "x"}} {
		if v := r.EventValue(path...); v != nil {
			t.Errorf("EventValue(%q) = %v, want nil", path, v)
		}
	}
}

// A PR whose payload is missing still has the number its ref names.
func TestPRNumberFromRef(t *testing.T) {
	t.Parallel()
	r := &runctx.Run{EventName: "issue_comment", Ref: "refs/pull/7/head", SHA: "abc"}
	if !r.IsPR() || r.PRNumber() != 7 || r.CommitSHA() != "abc" {
		t.Errorf("IsPR %v, PRNumber %d, CommitSHA %q", r.IsPR(), r.PRNumber(), r.CommitSHA())
	}
}

func TestFromEnvOutsideActions(t *testing.T) {
	t.Parallel()
	r, err := runctx.FromEnv(getenv(nil), started)
	if err != nil {
		t.Fatal(err)
	}
	if want := (runctx.Run{StartedOn: started}); !reflect.DeepEqual(*r, want) {
		t.Errorf("FromEnv with no variables = %+v, want an empty run", r)
	}
	if r.SourceURL() != "" || r.RunURL() != "" || r.CommitSHA() != "" || r.IsPR() {
		t.Errorf("empty run: SourceURL %q, RunURL %q, CommitSHA %q, IsPR %v", r.SourceURL(), r.RunURL(), r.CommitSHA(), r.IsPR())
	}
}

func TestFromEnvErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "event.json")
	if err := os.WriteFile(notJSON, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		vars    map[string]string
		wantErr []string // "" in the list: no error
	}{
		{"missing event file is no payload", map[string]string{"GITHUB_EVENT_PATH": filepath.Join(dir, "nothing.json")}, nil},
		{"event file not JSON", map[string]string{"GITHUB_EVENT_PATH": notJSON}, []string{notJSON, "GITHUB_EVENT_PATH", "not a JSON object"}},
		{"event path a directory", map[string]string{"GITHUB_EVENT_PATH": dir}, []string{"reading the event payload"}},
		{"run id not a number", map[string]string{"GITHUB_RUN_ID": "abc", "GITHUB_RUN_ATTEMPT": "x"}, []string{`GITHUB_RUN_ID="abc" is not a number`, `GITHUB_RUN_ATTEMPT="x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"GITHUB_REPOSITORY": "acme/app", "GITHUB_RUN_NUMBER": "9"}
			for k, v := range tt.vars {
				vars[k] = v
			}
			r, err := runctx.FromEnv(getenv(vars), started)
			if r == nil {
				t.Fatal("FromEnv returned no run")
			}
			// What could be read is kept.
			if r.Repository != "acme/app" || r.RunNumber != 9 || r.Event != nil {
				t.Errorf("run = %+v, want the repository and run number, and no payload", r)
			}
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("error %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one mentioning %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}
