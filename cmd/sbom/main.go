// Command gantry-sbom writes an SPDX and a CycloneDX SBOM for every platform
// of a pushed image, read straight from the registry by digest (no Docker),
// and for every directory or file of its paths input. It reads its inputs
// as GitHub hands them to actions (INPUT_IMAGE, INPUT_REGISTRY-PASSWORD
// ...), so it runs the same in a composite action or a local shell.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/google/go-containerregistry/pkg/logs"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/sbom"
)

func main() { ghaction.Main(run) }

func run(ctx context.Context, env *ghaction.Env) error {
	var in sbom.Inputs
	if err := env.Decode(&in); err != nil {
		// Validate too, so one run reports every bad input, also "image
		// and paths both empty", which no single input's decoding sees.
		return errors.Join(err, in.Validate())
	}
	in.Log = env
	if env.Lookup("RUNNER_DEBUG") == "1" {
		logs.Warn.SetOutput(os.Stderr)
	}
	out, err := sbom.Run(ctx, in)
	if err != nil {
		return err
	}
	if err := env.Encode(out); err != nil {
		return err
	}
	env.Summary(sbom.Summary(out))
	return nil
}
