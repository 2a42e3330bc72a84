package sbom

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

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

// recordFile is a release record found at the release-file path.
type recordFile struct {
	path string
	rec  release.Record
}

// openRecord reads the release record when the file exists. No file is not
// an error (the stage may run without the build stage before it); a file
// that is not a release record is, before any work is done.
func openRecord(path string) (*recordFile, error) {
	if path == "" {
		return nil, nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	rec, err := release.Read(path)
	if err != nil {
		return nil, fmt.Errorf(`input "release-file": %w (point it at the build stage's release-file output, or set it to "" to skip the record)`, err)
	}
	return &recordFile{path: path, rec: rec}, nil
}

// update adds the sbom section and writes the record back. A record of
// another image (left over from an earlier run) is left alone.
func (f *recordFile) update(ref name.Digest, fmts []Format, out Outputs, log ghaction.Logger) (string, error) {
	d := ref.DigestStr()
	if f.rec.Digest != d && !slices.ContainsFunc(f.rec.Platforms, func(p release.Platform) bool { return p.Digest == d }) {
		log.Warningf("release record %s describes %s, not %s: not adding the SBOMs to it", f.path, f.rec.Image, ref)
		return "", nil
	}
	sec := sbomRecord{Image: out.Digest, Platforms: out.Platforms}
	for _, fm := range fmts {
		sec.Formats = append(sec.Formats, fm.Name)
	}
	if err := f.rec.SetStage("sbom", sec); err != nil {
		return "", err
	}
	p, err := release.Write(f.path, f.rec)
	if err != nil {
		return "", fmt.Errorf(`writing the release record (input "release-file" = %q): %w`, f.path, err)
	}
	log.Infof("added the sbom section to %s", p)
	return p, nil
}
