package detect_test

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runctx"
	"github.com/gantry-ci/gantry/internal/runctx/detect"
)

var started = time.Date(2026, 11, 21, 3, 0, 7, 0, time.UTC)

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func event(name string) string { return filepath.Join("..", "..", "..", "testdata", "events", name) }

func TestFromCIGitLab(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"GITLAB_CI":               "true",
		"CI_SERVER_URL":           "https://gitlab.example.com",
		"CI_PROJECT_PATH":         "acme/platform/app",
		"CI_PROJECT_ID":           "311",
		"CI_PROJECT_NAMESPACE_ID": "12",
		"CI_DEFAULT_BRANCH":       "main",
		"CI_COMMIT_SHA":           "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c",
		"CI_PIPELINE_ID":          "98765",
		"CI_PIPELINE_IID":         "57",
		"CI_PIPELINE_URL":         "https://gitlab.example.com/acme/platform/app/-/pipelines/98765",
		"CI_PIPELINE_SOURCE":      "push",
		"CI_JOB_NAME":             "build",
		"GITLAB_USER_LOGIN":       "mara",
	}
	tests := []struct {
		name                  string
		vars                  map[string]string
		ref, refName, refType string
	}{
		{"branch", map[string]string{"CI_COMMIT_REF_NAME": "feature/x"}, "refs/heads/feature/x", "feature/x", "branch"},
		{"tag", map[string]string{"CI_COMMIT_REF_NAME": "v1.2.3", "CI_COMMIT_TAG": "v1.2.3"}, "refs/tags/v1.2.3", "v1.2.3", "tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tt.vars {
				vars[k] = v
			}
			// The directory is not read: GitLab says everything.
			r, err := detect.FromCI(getenv(vars), t.TempDir(), started)
			if err != nil {
				t.Fatal(err)
			}
			want := runctx.Run{
				CI: runctx.GitLabCI, ServerURL: "https://gitlab.example.com", Repository: "acme/platform/app",
				RepositoryID: "311", RepositoryOwnerID: "12", DefaultBranch: "main",
				Ref: tt.ref, RefName: tt.refName, RefType: tt.refType, SHA: "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c",
				Job: "build", EventName: "push", RunID: 98765, RunNumber: 57, Actor: "mara",
				PipelineURL: base["CI_PIPELINE_URL"], StartedOn: started,
			}
			if !reflect.DeepEqual(*r, want) {
				t.Errorf("FromCI under GitLab:\n got %+v\nwant %+v", *r, want)
			}
			if r.RunURL() != base["CI_PIPELINE_URL"] || r.SourceURL() != "https://gitlab.example.com/acme/platform/app" || r.CommitSHA() != r.SHA {
				t.Errorf("RunURL %q, SourceURL %q, CommitSHA %q", r.RunURL(), r.SourceURL(), r.CommitSHA())
			}
		})
	}
}

func TestFromCIPicksTheCI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gitRepo(t, dir, "https://github.com/acme/app.git")
	tests := []struct {
		name   string
		vars   map[string]string
		wantCI string
		local  bool
	}{
		{"github", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SHA": "aaa", "GITLAB_CI": "true"}, runctx.GitHubActions, false},
		{"gitlab", map[string]string{"GITLAB_CI": "true", "CI_COMMIT_SHA": "bbb"}, runctx.GitLabCI, false},
		// GITHUB_* set by hand is not GitHub Actions: the checkout tells.
		{"local", map[string]string{"GITHUB_SHA": "ccc", "CI": "true"}, runctx.LocalCI, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := detect.FromCI(getenv(tt.vars), dir, started)
			if err != nil {
				t.Fatal(err)
			}
			if r.CI != tt.wantCI || r.Local != tt.local {
				t.Errorf("CI %q, Local %v; want %q, %v", r.CI, r.Local, tt.wantCI, tt.local)
			}
			if r.SHA == "" || r.SHA == "ccc" {
				t.Errorf("SHA %q, want the CI's or the checkout's", r.SHA)
			}
		})
	}
}
