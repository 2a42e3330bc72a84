// Command gantry-deploy deploys an image by digest to Kubernetes: plan,
// rolling deploy with fail-fast health checks and automatic rollback,
// blue-green and canary with traffic steps, canary analysis and automatic
// rollback (resume, promote, abort), and manual rollback, one deploy per
// environment at a time.
package main

import (
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/rollout"
)

func main() { ghaction.Main(rollout.Stage) }
