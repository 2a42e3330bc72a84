// Package sbom is Gantry's SBOM stage: it catalogs every platform of a
// pushed image with the syft library, straight from the registry by digest
// (no Docker daemon), and writes one SPDX 2.3 JSON and one CycloneDX JSON
// document per platform whose subject is that platform's manifest digest.
// It also catalogs directories and files on disk, such as release
// binaries, whose Go build info lists their modules: one SBOM pair per
// path entry, whose subject is the entry's name.
package sbom

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
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
	Image              string        `input:"image"`
	Paths              []string      `input:"paths"`
	Formats            []string      `input:"formats" default:"spdx-json,cyclonedx-json"`
	OutputDir          string        `input:"output-dir" default:"sbom"`
	Platforms          []string      `input:"platforms"`
	RegistryUsername   string        `input:"registry-username"`
	RegistryPassword   string        `input:"registry-password" secret:"true"`
	InsecureRegistries []string      `input:"insecure-registries"`
	ReleaseFile        string        `input:"release-file" default:"gantry-release.json"`
	Timeout            time.Duration `input:"timeout" default:"15m"`

	// Jobs bounds the platforms and paths cataloged at once; zero means
	// up to 4.
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
	// Files maps each platform (linux/amd64) and each path entry's name
	// (gantry-linux-amd64) to the SBOM files written for it, in the order
	// of the formats input. Platforms always hold a slash and names never
	// do, so a reader tells them apart.
	Files map[string][]string `output:"sbom-files"`
	// Packages maps each platform and each path entry's name to the
	// number of packages found.
	Packages map[string]int `output:"packages"`
	// Digest is the image actually cataloged, repo@sha256:... (the index,
	// or the manifest of a single-platform image); empty without an image.
	Digest string `output:"digest"`

	// Platforms has the per-platform details, in index order.
	Platforms []PlatformSBOM `output:"-"`
	// Paths has the details of each path entry, in the input's order.
	Paths []PathSBOM `output:"-"`
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

// PathSBOM describes the SBOMs of one entry of the paths input.
type PathSBOM struct {
	// Name is the entry's NAME: the SBOMs' subject and file name stem.
	Name string `json:"name"`
	// Path is the directory or file as the input gave it.
	Path string `json:"path"`
	// Kind is "directory" or "file".
	Kind     string         `json:"kind"`
	Packages int            `json:"packages"`
	ByType   map[string]int `json:"byType"`
	Files    []string       `json:"files"`
	Seconds  float64        `json:"seconds"`
}

// Format is an SBOM format the stage writes.
type Format struct {
	Name  string // spelling in the formats input: spdx-json, cyclonedx-json
	Short string // file name part: <os>-<arch>.<Short>.json, <name>.<Short>.json
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
	if strings.TrimSpace(in.Image) == "" && len(in.Paths) == 0 {
		errs = append(errs, errors.New(`inputs "image" and "paths" are both empty: set image to the image by digest (the build step's image output, ghcr.io/acme/app@sha256:…), paths to the directories or files to catalog (dist/app or NAME=dist/app), or both`))
	}
	if _, err := parsePaths(in.Paths); err != nil {
		errs = append(errs, err)
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

// pathEntry is one entry of the paths input.
type pathEntry struct {
	name string // NAME: the SBOMs' subject and file name stem
	path string // as the input gave it
	abs  string // set by statPaths
	dir  bool   // set by statPaths
}

// nameRE is what a NAME may be: a plain file name stem, so it cannot reach
// outside output-dir, never holds the slash of a platform key, and reads
// the same in every tool.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// parsePaths reads the entries of the paths input, PATH or NAME=PATH. The
// text before the first "=" is a NAME only when it has no path separator,
// so dist/a=b is a path; a path that itself holds "=" is written with a
// name in front (NAME=a=b). NAME defaults to the path's base name.
func parsePaths(entries []string) ([]pathEntry, error) {
	var out []pathEntry
	var errs []error
	byName := map[string]string{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		p := pathEntry{path: e}
		if i := strings.IndexByte(e, '='); i >= 0 && !strings.ContainsAny(e[:i], `/\`) {
			p.name, p.path = strings.TrimSpace(e[:i]), strings.TrimSpace(e[i+1:])
			if p.name == "" {
				errs = append(errs, fmt.Errorf(`input "paths": %q has an empty NAME before "=": write NAME=PATH, or the path alone to name it by its base name`, e))
				continue
			}
		}
		if p.path == "" {
			errs = append(errs, fmt.Errorf(`input "paths": %q names no path: write NAME=PATH`, e))
			continue
		}
		if p.name == "" {
			p.name = filepath.Base(filepath.Clean(p.path))
			if !nameRE.MatchString(p.name) {
				errs = append(errs, fmt.Errorf(`input "paths": the base name %q of %q cannot name SBOM files: write it as NAME=%s with NAME of letters, digits and . _ + -`, p.name, e, p.path))
				continue
			}
		} else if !nameRE.MatchString(p.name) {
			errs = append(errs, fmt.Errorf(`input "paths": NAME %q in %q is not a plain file name: use letters, digits and . _ + - (not starting with . + or -)`, p.name, e))
			continue
		}
		if prev, dup := byName[p.name]; dup {
			errs = append(errs, fmt.Errorf(`input "paths": %q and %q are both named %q, so their SBOM files would overwrite each other: give one another name with NAME=PATH`, prev, e, p.name))
			continue
		}
		byName[p.name] = e
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}
