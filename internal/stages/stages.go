// Package stages lists Gantry's pipeline stages: the binary each ships as and
// the typed Inputs/Outputs its action.yml must agree with.
package stages

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/actions"
	"github.com/gantry-ci/gantry/internal/actioncheck"
	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/config"
	"github.com/gantry-ci/gantry/internal/ghaction"
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

// ConfigSchema is gantry.yaml's schema: each stage's typed Inputs, with
// the descriptions of its action.yml.
func ConfigSchema() (*config.Schema, error) {
	var secs []config.Section
	for _, st := range All() {
		meta, ok := actions.Metadata(st.Name)
		if !ok {
			return nil, fmt.Errorf("no actions/%s/action.yml embedded", st.Name)
		}
		var doc struct {
			Inputs map[string]struct {
				Description string `json:"description"`
			} `json:"inputs"`
		}
		if err := yaml.Unmarshal(meta, &doc); err != nil {
			return nil, fmt.Errorf("actions/%s/action.yml: %w", st.Name, err)
		}
		sec := config.Section{Name: config.SectionOf(st.Name), Stage: st.Name}
		for _, f := range ghaction.InputFields(st.Inputs) {
			sec.Inputs = append(sec.Inputs, config.Input{
				Name:        f.Name,
				Description: strings.Join(strings.Fields(doc.Inputs[f.Name].Description), " "),
				Default:     f.Default,
				Kind:        f.Kind,
				List:        f.List,
				Required:    f.Required,
				Secret:      f.Secret,
			})
		}
		secs = append(secs, sec)
	}
	return config.NewSchema(secs)
}
