package signing_test

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/runctx"
	"github.com/gantry-ci/gantry/internal/signing"
)

// BuildContextFromRun keeps the CI's values as they are, run numbers as
// decimals ("" when not given), and the workflow's inputs.
func TestBuildContextFromRun(t *testing.T) {
	t.Parallel()
	started := time.Date(2026, 11, 21, 3, 0, 7, 0, time.UTC)
	vars := map[string]string{
		"GITHUB_SERVER_URL":          "https://github.com",
		"GITHUB_REPOSITORY":          "acme/Prompt-Builder",
		"GITHUB_REPOSITORY_ID":       "731204518",
		"GITHUB_REPOSITORY_OWNER_ID": "98140233",
		"GITHUB_REF":                 "refs/heads/main",
		"GITHUB_SHA":                 "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c",
		"GITHUB_WORKFLOW_REF":        "acme/Prompt-Builder/.github/workflows/deploy.yml@refs/heads/main",
		"GITHUB_EVENT_NAME":          "workflow_dispatch",
		"GITHUB_EVENT_PATH":          filepath.Join("..", "..", "testdata", "events", "workflow_dispatch.json"),
		"GITHUB_RUN_ID":              "4242",
		"RUNNER_ENVIRONMENT":         "github-hosted",
	}
	run, err := runctx.FromEnv(func(k string) string { return vars[k] }, started)
	if err != nil {
		t.Fatal(err)
	}
	want := signing.BuildContext{
		ServerURL: "https://github.com", Repository: "acme/Prompt-Builder", RepositoryID: "731204518", OwnerID: "98140233",
		Ref: "refs/heads/main", SHA: "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c",
		WorkflowRef: "acme/Prompt-Builder/.github/workflows/deploy.yml@refs/heads/main", EventName: "workflow_dispatch",
		RunID: "4242", RunAttempt: "", RunnerEnvironment: "github-hosted",
		Inputs:    map[string]any{"environment": "production", "digest": ""},
		StartedOn: started,
	}
	if got := signing.BuildContextFromRun(run); !reflect.DeepEqual(got, want) {
		t.Errorf("BuildContextFromRun:\n got %+v\nwant %+v", got, want)
	}
	if got := signing.BuildContextFromRun(&runctx.Run{}); !reflect.DeepEqual(got, signing.BuildContext{}) {
		t.Errorf("BuildContextFromRun of an empty run = %+v, want an empty context", got)
	}
}
