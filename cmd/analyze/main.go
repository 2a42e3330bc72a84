// Command gantry-analyze gates a rollout on canary analysis against
// Prometheus: it exits non-zero when the verdict is fail or error.
package main

import (
	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/ghaction"
)

func main() { ghaction.Main(analysis.Stage) }
