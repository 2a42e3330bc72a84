// Command gantry-notify posts the run's Slack message, or updates it in
// place with this stage's result. A Slack failure is a warning, not a
// failed step, unless fail-on-error is set.
package main

import (
	"context"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/slacknotify"
)

func main() { ghaction.Main(run) }

func run(ctx context.Context, env *ghaction.Env) error {
	var in slacknotify.Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	gc, err := env.Context()
	if err != nil {
		// A notification with less context beats none: the message still
		// carries the stage and its status.
		env.Warningf("reading the GitHub context: %v", err)
	}
	if gc == nil {
		gc = &githubactions.GitHubContext{}
	}
	in.Git = slacknotify.RunContextFrom(gc, time.Now())
	in.Log = env
	out, err := slacknotify.Run(ctx, in)
	if eerr := env.Encode(out); eerr != nil && err == nil {
		err = eerr
	}
	return err
}
