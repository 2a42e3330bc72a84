package rollout

import (
	"context"
	"strings"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/metadata"
)

// Stage is gantry-deploy as its binary and gantry run run it: the inputs
// from env, the commit, repository and run from the run's context, the
// deploy, and the outputs and summary, also of a failed deploy.
func Stage(ctx context.Context, env *ghaction.Env) error {
	var in Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	// A kubeconfig's credentials are masked; its other lines (server,
	// "apiVersion: v1") are not secret, and masking them would blank
	// ordinary log lines.
	for _, s := range KubeconfigSecrets(in.Kubeconfig) {
		env.AddMask(s)
	}
	run, err := env.Run()
	if err != nil {
		return err
	}
	in.Git = metadata.FromRun(run)
	in.GitHubAPIURL = run.APIURL
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
	out, err := Run(ctx, in)
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
