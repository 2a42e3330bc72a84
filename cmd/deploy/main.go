// Command gantry-deploy deploys an image by digest to Kubernetes: plan,
// rolling deploy with fail-fast health checks and automatic rollback,
// blue-green and canary with traffic steps, canary analysis and automatic
// rollback (resume, promote, abort), and manual rollback, one deploy per
// environment at a time.
package main

import (
	"context"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/metadata"
	"github.com/gantry-ci/gantry/internal/rollout"
)

func main() { ghaction.Main(run) }

func run(ctx context.Context, env *ghaction.Env) error {
	var in rollout.Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	// A kubeconfig's credentials are masked; its other lines (server,
	// "apiVersion: v1") are not secret, and masking them would blank
	// ordinary log lines.
	for _, s := range rollout.KubeconfigSecrets(in.Kubeconfig) {
		env.AddMask(s)
	}
	gc, err := env.Context()
	if err != nil {
		return err
	}
	in.Git = metadata.FromGitHub(gc, time.Now())
	in.GitHubAPIURL = gc.APIURL
	if in.GitHubToken != "" {
		// Outside Actions (GitLab, Jenkins, a shell) nothing sets these:
		// say so rather than skip the GitHub Deployment in silence.
		var missing []string
		if in.Git.Repository == "" {
			missing = append(missing, "GITHUB_REPOSITORY (owner/name)")
		}
		if in.Git.CommitSHA() == "" {
			missing = append(missing, "GITHUB_SHA (the commit deployed)")
		}
		if len(missing) > 0 {
			env.Warningf(`input "github-token" is set, but no GitHub Deployment is recorded: the environment has no %s`, strings.Join(missing, " and no "))
		}
	}
	in.Log = env
	in.Getenv = env.Lookup
	out, err := rollout.Run(ctx, in)
	// Outputs and the summary are written for failed deploys too: a later
	// step (Slack, an issue) needs the status and the revision.
	if out.Status != "" {
		if eerr := env.Encode(out); eerr != nil && err == nil {
			err = eerr
		}
	}
	if out.Summary != "" {
		env.Summary(out.Summary)
	}
	return err
}
