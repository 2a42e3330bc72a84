// Command gantry-release creates or updates the GitHub Release of a tag:
// notes from the changelog (or GitHub's generated notes), the image by
// digest with the commands to verify it, and the build's files as assets,
// published only once every asset is uploaded.
package main

import (
	"context"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghrelease"
)

func main() { ghaction.Main(run) }

func run(ctx context.Context, env *ghaction.Env) error {
	var in ghrelease.Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	in.Git = ghrelease.RunContext{
		Ref:        env.Lookup("GITHUB_REF"),
		RefName:    env.Lookup("GITHUB_REF_NAME"),
		Repository: env.Lookup("GITHUB_REPOSITORY"),
		APIURL:     env.Lookup("GITHUB_API_URL"),
		ServerURL:  env.Lookup("GITHUB_SERVER_URL"),
		SHA:        env.Lookup("GITHUB_SHA"),
	}
	in.Log = env
	out, err := ghrelease.Run(ctx, in)
	if out.ReleaseID != 0 {
		// Also after a failed upload: the summary links the draft left
		// for the re-run.
		env.Summary(ghrelease.Summary(out))
		if eerr := env.Encode(out); eerr != nil && err == nil {
			err = eerr
		}
	}
	return err
}
