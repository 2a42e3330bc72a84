// Command gantry-scan scans an image (every platform, from the registry by
// digest) and/or a repository path with trivy, gates on severity, and writes
// SARIF, a JSON report and a cosign vulnerability-attestation predicate. It
// reads its inputs as GitHub hands them to actions (INPUT_IMAGE ...).
package main

import (
	"context"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/vulnscan"
)

func main() { ghaction.Main(scanOnce) }

// scanOnce is the stage for a process that scans once: trivy keeps its
// files in a folder of its own under TMPDIR, removed here whatever the
// outcome (gate failed, error, SIGTERM's cancel). vulnscan.Stage leaves
// it, as a process that scans again (gantry run) needs it.
func scanOnce(ctx context.Context, env *ghaction.Env) error {
	defer func() {
		if err := vulnscan.Cleanup(); err != nil {
			env.Warningf("removing trivy's temporary folder: %v", err)
		}
	}()
	return vulnscan.Stage(ctx, env)
}
