// Command gantry-scan scans an image (every platform, from the registry by
// digest) and/or a repository path with trivy, gates on severity, and writes
// SARIF, a JSON report and a cosign vulnerability-attestation predicate. It
// reads its inputs as GitHub hands them to actions (INPUT_IMAGE ...).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/vulnscan"
)

func main() { ghaction.Main(runOnce) }

// runOnce is run for a process that scans once: trivy keeps its files in a
// folder of its own under TMPDIR, removed here whatever the outcome (gate
// failed, error, SIGTERM's cancel).
func runOnce(ctx context.Context, env *ghaction.Env) error {
	defer func() {
		if err := vulnscan.Cleanup(); err != nil {
			env.Warningf("removing trivy's temporary folder: %v", err)
		}
	}()
	return run(ctx, env)
}

func run(ctx context.Context, env *ghaction.Env) error {
	var in vulnscan.Inputs
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
	in.Invocation = invocation(env, in)

	out, err := vulnscan.Run(ctx, in)
	if err != nil && !errors.Is(err, vulnscan.ErrGate) {
		return err
	}
	if eerr := env.Encode(out); eerr != nil {
		return eerr
	}
	env.Summary(vulnscan.Summary(out))
	return err
}

// invocation describes this run for the attestation: the workflow run,
// its ID and the workflow that ran it, plus the non-secret inputs.
func invocation(env *ghaction.Env, in vulnscan.Inputs) vulnscan.Invocation {
	server, repo, runID := env.Lookup("GITHUB_SERVER_URL"), env.Lookup("GITHUB_REPOSITORY"), env.Lookup("GITHUB_RUN_ID")
	inv := vulnscan.Invocation{EventID: runID, Parameters: []string{}}
	if server != "" && repo != "" && runID != "" {
		inv.URI = fmt.Sprintf("%s/%s/actions/runs/%s", server, repo, runID)
		if a := env.Lookup("GITHUB_RUN_ATTEMPT"); a != "" {
			inv.URI += "/attempts/" + a
		}
	}
	if ref := env.Lookup("GITHUB_WORKFLOW_REF"); ref != "" && server != "" {
		inv.BuilderID = server + "/" + ref
	}
	for _, f := range ghaction.InputFields(in) {
		if f.Secret {
			continue
		}
		if v := strings.TrimSpace(env.GetInput(f.Name)); v != "" {
			inv.Parameters = append(inv.Parameters, f.Name+"="+v)
		}
	}
	return inv
}
