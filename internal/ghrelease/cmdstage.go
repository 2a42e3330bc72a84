package ghrelease

import (
	"context"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Stage is gantry-release as its binary and gantry run run it: the inputs
// from env, the tag, repository and API from the run's context, the
// release, and its summary and outputs, also after a failed upload.
func Stage(ctx context.Context, env *ghaction.Env) error {
	var in Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	run, err := env.Run()
	if err != nil {
		// The stage reads only plain values (the ref, the repository):
		// a run number or an event payload it does not use is no reason
		// to stop, but a reason to say so.
		env.Warningf("reading the GitHub context: %v", err)
	}
	in.Git = RunContextFromRun(run)
	in.Log = env
	out, err := Run(ctx, in)
	if out.ReleaseID != 0 {
		// Also after a failed upload: the summary links the draft left
		// for the re-run.
		env.Summary(Summary(out))
		if eerr := env.Encode(out); eerr != nil && err == nil {
			err = eerr
		}
	}
	return err
}
