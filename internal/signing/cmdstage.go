package signing

import (
	"context"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/logs"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Stage is gantry-sign as its binary and gantry run run it: the inputs
// from env (key material masked), the OIDC token's sources, provenance's
// build context from the run's context, signing or verifying, and the
// outputs and summary once there is a report.
func Stage(ctx context.Context, env *ghaction.Env) error {
	var in Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	// A key given as PEM text (not a path) is key material: mask it.
	if strings.HasPrefix(strings.TrimSpace(in.Key), "-----BEGIN") {
		for _, line := range strings.Split(in.Key, "\n") {
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "-----") {
				env.AddMask(s)
			}
		}
	}
	in.Log = env
	in.Getenv = env.Lookup
	in.IDToken = env.Lookup("SIGSTORE_ID_TOKEN")
	if in.IDToken != "" {
		env.AddMask(in.IDToken)
	}
	in.TokenRequestURL = env.Lookup("ACTIONS_ID_TOKEN_REQUEST_URL")
	in.TokenRequestToken = env.Lookup("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	run, err := env.Run()
	if err != nil {
		// Signing needs none of it; provenance checks what it needs (the
		// repository, commit and run id) and names the variable.
		env.Warningf("reading the GitHub context: %v", err)
	}
	in.Build = BuildContextFromRun(run)
	if env.Lookup("RUNNER_DEBUG") == "1" {
		logs.Warn.SetOutput(os.Stderr)
	}

	out, err := Run(ctx, in)
	if out.Report.Mode != "" { // the run got as far as a report
		if eerr := env.Encode(out); eerr != nil && err == nil {
			err = eerr
		}
		env.Summary(Summary(out))
	}
	return err
}
