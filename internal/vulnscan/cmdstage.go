package vulnscan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Stage is gantry-scan as its binary and gantry run run it: the inputs
// from env, the attestation's invocation from the run's context and the
// inputs, the scan, and the outputs and summary, also when the gate fails
// (the error is then ErrGate).
//
// Stage leaves trivy's temporary folder in place, so a process can scan
// more than once (gantry run); a process that is done scanning calls
// Cleanup, as cmd/scan's main does.
func Stage(ctx context.Context, env *ghaction.Env) error {
	var in Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	if in.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf(`input "cache-dir" is empty and there is no user cache directory (%v): set cache-dir`, err)
		}
		in.CacheDir = filepath.Join(dir, "gantry-scan")
	}
	in.Log = env
	run, err := env.Run()
	if err != nil {
		// The scan needs none of it; the attestation then names less.
		env.Warningf("reading the GitHub context: %v", err)
	}
	in.Invocation = InvocationFromRun(run)
	// The non-secret inputs, as the step gave them, are the invocation's
	// parameters.
	for _, f := range ghaction.InputFields(in) {
		if f.Secret {
			continue
		}
		if v := strings.TrimSpace(env.GetInput(f.Name)); v != "" {
			in.Invocation.Parameters = append(in.Invocation.Parameters, f.Name+"="+v)
		}
	}

	out, err := Run(ctx, in)
	if err != nil && !errors.Is(err, ErrGate) {
		return err
	}
	if eerr := env.Encode(out); eerr != nil {
		return eerr
	}
	env.Summary(Summary(out))
	return err
}
