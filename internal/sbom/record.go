package sbom

import (
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/release"
)

// sbomRecord is the SBOM stage's section of gantry-release.json.
type sbomRecord struct {
	Image     string         `json:"image"` // repo@sha256:... that was cataloged
	Formats   []string       `json:"formats"`
	Platforms []PlatformSBOM `json:"platforms"`
}

// record adds the sbom section to the release record, by release.Add's
// rule (checked with release.Check before any work).
func record(path string, ref name.Digest, fmts []Format, out Outputs, log ghaction.Logger) (string, error) {
	sec := sbomRecord{Image: out.Digest, Platforms: out.Platforms}
	for _, fm := range fmts {
		sec.Formats = append(sec.Formats, fm.Name)
	}
	p, err := release.Add(path, ref.DigestStr(), "sbom", sec, log.Warningf)
	if p != "" {
		log.Infof("added the sbom section to %s", p)
	}
	return p, err
}
