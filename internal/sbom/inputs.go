// Package sbom is Gantry's SBOM stage: it catalogs every platform of a
// pushed image with the syft library, straight from the registry by digest
// (no Docker daemon), and writes one SPDX 2.3 JSON and one CycloneDX JSON
// document per platform whose subject is that platform's manifest digest.
package sbom

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Inputs are the SBOM stage's inputs. Fields tagged input:"..." are the
// action's public interface (actions/sbom/action.yml); the rest are set by
// the caller.
type Inputs struct {
	Image              string        `input:"image" required:"true"`
	Formats            []string      `input:"formats" default:"spdx-json,cyclonedx-json"`
	OutputDir          string        `input:"output-dir" default:"sbom"`
	Platforms          []string      `input:"platforms"`
	RegistryUsername   string        `input:"registry-username"`
	RegistryPassword   string        `input:"registry-password" secret:"true"`
	InsecureRegistries []string      `input:"insecure-registries"`
	ReleaseFile        string        `input:"release-file" default:"gantry-release.json"`
	Timeout            time.Duration `input:"timeout" default:"15m"`

	// Jobs bounds the platforms cataloged at once; zero means up to 4.
	Jobs int `input:"-"`
	// Log receives progress lines; nil discards them.
	Log ghaction.Logger `input:"-"`
	// Keychain resolves registry credentials when no username/password is
	// given; nil means the Docker config keychain.
	Keychain authn.Keychain `input:"-"`
	// Transport is the HTTP transport to registries; nil means the default.
	Transport http.RoundTripper `input:"-"`
	// Backoff is how registry requests are retried; zero means 1s ... 16s.
	Backoff remote.Backoff `input:"-"`
}

// Outputs are the SBOM stage's results.
type Outputs struct {
	// Files maps each platform (linux/amd64) to the SBOM files written for
	// it, in the order of the formats input.
	Files map[string][]string `output:"sbom-files"`
	// Packages maps each platform to the number of packages found.
	Packages map[string]int `output:"packages"`
	// Digest is the image actually cataloged, repo@sha256:... (the index,
	// or the manifest of a single-platform image).
	Digest string `output:"digest"`

	// Platforms has the per-platform details, in index order.
	Platforms []PlatformSBOM `output:"-"`
	// ReleaseFile is the release record the sbom section was added to;
	// empty when there was none.
	ReleaseFile string `output:"-"`
}

// PlatformSBOM describes the SBOMs of one platform.
type PlatformSBOM struct {
	Platform string `json:"platform"`
	// Digest is the platform's manifest digest (sha256:...): the subject of
	// its SBOMs and what the sign stage attests them on.
	Digest   string         `json:"digest"`
	Packages int            `json:"packages"`
	ByType   map[string]int `json:"byType"`
	Files    []string       `json:"files"`
	Seconds  float64        `json:"seconds"`
}

// Format is an SBOM format the stage writes.
type Format struct {
	Name  string // spelling in the formats input: spdx-json, cyclonedx-json
	Short string // file name part: <os>-<arch>.<Short>.json
}

// Formats lists the formats the stage can write.
func Formats() []Format {
	return []Format{
		{Name: "spdx-json", Short: "spdx"},
		{Name: "cyclonedx-json", Short: "cyclonedx"},
	}
}

func formatNames() string {
	var names []string
	for _, f := range Formats() {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

// parseFormats maps the formats input to Formats, in the input's order and
// without duplicates.
func parseFormats(names []string) ([]Format, error) {
	var out []Format
	for _, n := range names {
		i := slices.IndexFunc(Formats(), func(f Format) bool { return strings.EqualFold(f.Name, strings.TrimSpace(n)) })
		if i < 0 {
			return nil, fmt.Errorf(`input "formats": %q is not a supported format: use one or more of %s`, n, formatNames())
		}
		f := Formats()[i]
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// Validate checks inputs that need no network, so bad input fails in
// milliseconds with a message that names the input and the fix.
func (in *Inputs) Validate() error {
	var errs []error
	if strings.TrimSpace(in.Image) == "" {
		errs = append(errs, errors.New(`input "image" is required: pass the image by digest, e.g. the build step's image output (ghcr.io/acme/app@sha256:…)`))
	}
	if len(in.Formats) == 0 {
		errs = append(errs, fmt.Errorf(`input "formats" is empty: list one or more of %s`, formatNames()))
	} else if _, err := parseFormats(in.Formats); err != nil {
		errs = append(errs, err)
	}
	for _, p := range in.Platforms {
		if parts := strings.Split(p, "/"); len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
			errs = append(errs, fmt.Errorf(`input "platforms": %q is not os/arch[/variant], e.g. linux/arm64 (leave the input empty for every platform of the image)`, p))
		}
	}
	if strings.TrimSpace(in.OutputDir) == "" {
		errs = append(errs, errors.New(`input "output-dir" is empty: set the directory to write the SBOM files to, e.g. sbom`))
	}
	if (in.RegistryUsername == "") != (in.RegistryPassword == "") {
		errs = append(errs, errors.New(`inputs "registry-username" and "registry-password" go together: set both (for GHCR: github.actor and secrets.GITHUB_TOKEN) or neither`))
	}
	if in.Jobs < 0 {
		errs = append(errs, fmt.Errorf("jobs is %d: use a positive number, or 0 for the default", in.Jobs))
	}
	return errors.Join(errs...)
}
