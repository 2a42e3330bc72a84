package sbom

import (
	"context"
	"errors"
	"os"

	"github.com/google/go-containerregistry/pkg/logs"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Stage is gantry-sbom as its binary and gantry run run it: the inputs
// from env, the SBOMs, the outputs and the summary.
func Stage(ctx context.Context, env *ghaction.Env) error {
	var in Inputs
	if err := env.Decode(&in); err != nil {
		// Validate too, so one run reports every bad input, also "image
		// and paths both empty", which no single input's decoding sees.
		return errors.Join(err, in.Validate())
	}
	in.Log = env
	if env.Lookup("RUNNER_DEBUG") == "1" {
		logs.Warn.SetOutput(os.Stderr)
	}
	out, err := Run(ctx, in)
	if err != nil {
		return err
	}
	if err := env.Encode(out); err != nil {
		return err
	}
	env.Summary(Summary(out))
	return nil
}
