package slacknotify

import (
	"context"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Stage is gantry-notify as its binary and gantry run run it: the inputs
// from env, the message built from the run's context, posted or updated,
// and the outputs that let a later step update the same message.
func Stage(ctx context.Context, env *ghaction.Env) error {
	var in Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	run, err := env.Run()
	if err != nil {
		// A notification with less context beats none: the message still
		// carries the stage, its status, and what could be read.
		env.Warningf("reading the GitHub context: %v", err)
	}
	in.Git = RunContextFromRun(run)
	in.Log = env
	out, err := Run(ctx, in)
	if eerr := env.Encode(out); eerr != nil && err == nil {
		err = eerr
	}
	return err
}
