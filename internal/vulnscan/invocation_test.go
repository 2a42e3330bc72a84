package vulnscan_test

import (
	"reflect"
	"testing"

	"github.com/gantry-ci/gantry/internal/runctx"
	"github.com/gantry-ci/gantry/internal/vulnscan"
)

func TestInvocationFromRun(t *testing.T) {
	t.Parallel()
	github := runctx.Run{
		ServerURL: "https://github.com", Repository: "acme/prompt-builder", RunID: 4242, RunAttempt: 2,
		WorkflowRef: "acme/prompt-builder/.github/workflows/release.yml@refs/tags/v1.2.3",
	}
	noServer := github
	noServer.ServerURL = ""
	tests := []struct {
		name string
		run  runctx.Run
		want vulnscan.Invocation
	}{
		{"github", github, vulnscan.Invocation{
			Parameters: []string{},
			URI:        "https://github.com/acme/prompt-builder/actions/runs/4242/attempts/2",
			EventID:    "4242",
			BuilderID:  "https://github.com/acme/prompt-builder/.github/workflows/release.yml@refs/tags/v1.2.3",
		}},
		// No server named: no link is guessed.
		{"no server", noServer, vulnscan.Invocation{Parameters: []string{}, EventID: "4242"}},
		{"gitlab", runctx.Run{
			CI: runctx.GitLabCI, ServerURL: "https://gitlab.example.com", Repository: "acme/app", RunID: 98765,
			PipelineURL: "https://gitlab.example.com/acme/app/-/pipelines/98765",
		}, vulnscan.Invocation{Parameters: []string{}, URI: "https://gitlab.example.com/acme/app/-/pipelines/98765", EventID: "98765"}},
		{"local", runctx.Run{CI: runctx.LocalCI, Local: true, SHA: "abc"}, vulnscan.Invocation{Parameters: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := vulnscan.InvocationFromRun(&tt.run); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("InvocationFromRun:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
