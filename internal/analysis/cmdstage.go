package analysis

import (
	"context"
	"fmt"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Stage is gantry-analyze as its binary and gantry run run it: the inputs
// from env, the analysis, the outputs and the summary. A fail or error
// verdict is its error, so the step (or the pipeline) stops there.
func Stage(ctx context.Context, env *ghaction.Env) error {
	var in Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	in.Log = env
	out, err := Run(ctx, in)
	if err != nil {
		return err
	}
	if err := env.Encode(out); err != nil {
		return err
	}
	env.Summary(out.Summary)
	switch State(out.Verdict) {
	case Fail, Error:
		return fmt.Errorf("canary analysis: %s: %s", out.Verdict, out.Reason)
	}
	env.Infof("canary analysis: %s: %s", out.Verdict, out.Reason)
	return nil
}
