// Package stages lists Gantry's pipeline stages: the binary each ships as and
// the typed Inputs/Outputs its action.yml must agree with.
package stages

import (
	"github.com/gantry-ci/gantry/internal/actioncheck"
	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/ghrelease"
	"github.com/gantry-ci/gantry/internal/image"
	"github.com/gantry-ci/gantry/internal/rollout"
	"github.com/gantry-ci/gantry/internal/sbom"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/slacknotify"
	"github.com/gantry-ci/gantry/internal/vulnscan"
)

// Stage ties an actions/<Name>/action.yml to its Go types.
type Stage = actioncheck.Stage

// All returns every stage, in pipeline order.
func All() []Stage {
	return []Stage{
		{Name: "build", Binary: "gantry-build", Inputs: image.Inputs{}, Outputs: image.Outputs{}},
		{Name: "sbom", Binary: "gantry-sbom", Inputs: sbom.Inputs{}, Outputs: sbom.Outputs{}},
		{Name: "sign", Binary: "gantry-sign", Inputs: signing.Inputs{}, Outputs: signing.Outputs{}},
		{Name: "scan", Binary: "gantry-scan", Inputs: vulnscan.Inputs{}, Outputs: vulnscan.Outputs{}},
		{Name: "deploy", Binary: "gantry-deploy", Inputs: rollout.Inputs{}, Outputs: rollout.Outputs{}},
		{Name: "analyze", Binary: "gantry-analyze", Inputs: analysis.Inputs{}, Outputs: analysis.Outputs{}},
		{Name: "release", Binary: "gantry-release", Inputs: ghrelease.Inputs{}, Outputs: ghrelease.Outputs{}},
		{Name: "notify", Binary: "gantry-notify", Inputs: slacknotify.Inputs{}, Outputs: slacknotify.Outputs{}},
	}
}
