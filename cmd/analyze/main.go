// Command gantry-analyze gates a rollout on canary analysis against
// Prometheus: it exits non-zero when the verdict is fail or error.
package main

import (
	"context"
	"fmt"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/ghaction"
)

func main() { ghaction.Main(run) }

func run(ctx context.Context, env *ghaction.Env) error {
	var in analysis.Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	in.Log = env
	out, err := analysis.Run(ctx, in)
	if err != nil {
		return err
	}
	if err := env.Encode(out); err != nil {
		return err
	}
	env.Summary(out.Summary)
	switch analysis.State(out.Verdict) {
	case analysis.Fail, analysis.Error:
		return fmt.Errorf("canary analysis: %s: %s", out.Verdict, out.Reason)
	}
	env.Infof("canary analysis: %s: %s", out.Verdict, out.Reason)
	return nil
}
