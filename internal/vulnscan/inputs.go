// Package vulnscan is Gantry's scan stage: it scans an image from the
// registry by digest (every platform, without Docker) and a repository
// filesystem for vulnerabilities, secrets, misconfigurations and licenses
// with trivy, gates on severity with an ignore file whose entries expire,
// and writes a job summary, SARIF (one run per target), a JSON report and a
// cosign vulnerability-attestation predicate.
package vulnscan

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

// DefaultDBRepositories are where trivy itself looks for its DB, in order.
var DefaultDBRepositories = []string{"mirror.gcr.io/aquasec/trivy-db:2", "ghcr.io/aquasecurity/trivy-db:2"}

// Inputs are the scan stage's inputs. Fields tagged input:"..." are the
// action's public interface (actions/scan/action.yml); the rest are set by
// the caller.
type Inputs struct {
	Image              string        `input:"image"`
	Path               string        `input:"path"`
	Scanners           []string      `input:"scanners" default:"vuln,secret,misconfig,license"`
	HistorySince       string        `input:"history-since"`
	Severity           []string      `input:"severity" default:"CRITICAL,HIGH"`
	IgnoreUnfixed      bool          `input:"ignore-unfixed" default:"false"`
	IgnoreFile         string        `input:"ignore-file"`
	SARIFFile          string        `input:"sarif-file" default:"gantry-scan.sarif"`
	JSONFile           string        `input:"json-file" default:"gantry-scan.json"`
	AttestationFile    string        `input:"attestation-file" default:"gantry-scan.vuln.json"`
	DBRepositories     []string      `input:"db-repositories" default:"mirror.gcr.io/aquasec/trivy-db:2,ghcr.io/aquasecurity/trivy-db:2"`
	CacheDir           string        `input:"cache-dir"`
	Offline            bool          `input:"offline" default:"false"`
	DBMaxAge           time.Duration `input:"db-max-age" default:"72h"`
	Timeout            time.Duration `input:"timeout" default:"15m"`
	Platforms          []string      `input:"platforms"`
	RegistryUsername   string        `input:"registry-username"`
	RegistryPassword   string        `input:"registry-password" secret:"true"`
	InsecureRegistries []string      `input:"insecure-registries"`
	ReleaseFile        string        `input:"release-file" default:"gantry-release.json"`

	// Invocation describes the run for the attestation (workflow run URL,
	// run ID, workflow ref); Stage fills it from the run's context.
	Invocation Invocation `input:"-"`
	// Now is the clock (ignore-entry expiry, DB age); nil means time.Now.
	Now func() time.Time `input:"-"`
	// Log receives progress lines; nil discards them.
	Log ghaction.Logger `input:"-"`
	// Keychain resolves registry credentials the username/password do not
	// cover: the image's registry when none is given, and DB mirrors on
	// other hosts (mirrorConn); nil means the Docker config keychain.
	Keychain authn.Keychain `input:"-"`
	// Transport is the HTTP transport to registries (image and DB mirrors);
	// nil means the default.
	Transport http.RoundTripper `input:"-"`
	// Backoff is how registry requests are retried; zero means 1s … 16s.
	Backoff remote.Backoff `input:"-"`
	// NewScanner opens the scanner; nil means trivy (NewTrivy).
	NewScanner func(ScannerConfig) (Scanner, error) `input:"-"`
}

// Outputs are the scan stage's results.
type Outputs struct {
	Verdict         string `output:"verdict"`
	Critical        int    `output:"critical"`
	High            int    `output:"high"`
	Medium          int    `output:"medium"`
	Low             int    `output:"low"`
	SARIFFile       string `output:"sarif-file"`
	JSONFile        string `output:"json-file"`
	AttestationFile string `output:"attestation-file"`

	// Report is everything the files and the summary are made from.
	Report Report `output:"-"`
}

// Scanner names as the scanners input spells them.
const (
	ScanVuln      = "vuln"
	ScanSecret    = "secret"
	ScanMisconfig = "misconfig"
	ScanLicense   = "license"
	// ScanHistory scans the Git history of path for secrets (gitleaks).
	ScanHistory = "history"
)

var allScanners = []string{ScanVuln, ScanSecret, ScanMisconfig, ScanLicense, ScanHistory}

// Severities from most to least severe, as trivy spells them.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// Validate checks inputs that need no network, so bad input fails in
// milliseconds with a message that names the input and the fix.
func (in *Inputs) Validate() error {
	var errs []error
	if strings.TrimSpace(in.Image) == "" && strings.TrimSpace(in.Path) == "" {
		errs = append(errs, errors.New(`inputs "image" and "path" are both empty: set image (repo@sha256:…) to scan an image, path (e.g. ".") to scan the repository, or both`))
	}
	if len(in.Scanners) == 0 {
		errs = append(errs, fmt.Errorf(`input "scanners" is empty: list some of %s`, strings.Join(allScanners, ",")))
	}
	for i, s := range in.Scanners {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "vulnerability" || s == "vulnerabilities" {
			s = ScanVuln
		}
		if !slices.Contains(allScanners, s) {
			errs = append(errs, fmt.Errorf(`input "scanners": %q is not a scanner: use any of %s`, in.Scanners[i], strings.Join(allScanners, ",")))
		}
		in.Scanners[i] = s
	}
	for i, s := range in.Severity {
		s = strings.ToUpper(strings.TrimSpace(s))
		if !slices.Contains(severities, s) {
			errs = append(errs, fmt.Errorf(`input "severity": %q is not a severity: use any of %s`, in.Severity[i], strings.Join(severities, ",")))
		}
		in.Severity[i] = s
	}
	if in.enabled(ScanHistory) && strings.TrimSpace(in.Path) == "" {
		errs = append(errs, errors.New(`input "scanners": history scans the Git history of path, which is empty: set path (e.g. ".") to the checkout`))
	}
	if !in.enabled(ScanHistory) && strings.TrimSpace(in.HistorySince) != "" {
		errs = append(errs, errors.New(`input "history-since" is set but "scanners" does not list history: add history to scanners, or leave history-since empty`))
	}
	if strings.TrimSpace(in.Image) != "" && len(in.trivyScanners()) == 0 && len(in.Scanners) > 0 {
		errs = append(errs, errors.New(`input "image" is set but "scanners" lists only history, which scans the repository: add vuln (and secret, misconfig, license) to scan the image, or leave image empty`))
	}
	if in.enabled(ScanVuln) {
		if strings.TrimSpace(in.CacheDir) == "" {
			errs = append(errs, errors.New(`input "cache-dir" is empty: set a directory for the vulnerability DB (cache it with actions/cache keyed by date)`))
		}
		if !in.Offline && len(in.DBRepositories) == 0 {
			errs = append(errs, errors.New(`input "db-repositories" is empty: list at least one trivy-db OCI repository (e.g. ghcr.io/aquasecurity/trivy-db:2), or set offline: true to use only the cache`))
		}
		if in.DBMaxAge <= 0 {
			errs = append(errs, errors.New(`input "db-max-age" must be positive, e.g. 72h`))
		}
	}
	if (in.RegistryUsername == "") != (in.RegistryPassword == "") {
		errs = append(errs, errors.New(`inputs "registry-username" and "registry-password" go together: set both (for GHCR: github.actor and secrets.GITHUB_TOKEN) or neither`))
	}
	for _, p := range in.Platforms {
		if parts := strings.Split(p, "/"); len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			errs = append(errs, fmt.Errorf(`input "platforms": %q is not os/arch[/variant], e.g. linux/arm64`, p))
		}
	}
	if len(in.Platforms) > 0 && strings.TrimSpace(in.Image) == "" {
		errs = append(errs, errors.New(`input "platforms" is set but "image" is empty: platforms choose which platforms of the image to scan`))
	}
	for _, f := range []struct{ name, v string }{{"sarif-file", in.SARIFFile}, {"json-file", in.JSONFile}, {"attestation-file", in.AttestationFile}} {
		if strings.TrimSpace(f.v) == "" {
			errs = append(errs, fmt.Errorf(`input %q is empty: set a file path to write to`, f.name))
		}
	}
	return errors.Join(errs...)
}

func (in *Inputs) enabled(scanner string) bool { return slices.Contains(in.Scanners, scanner) }

// trivyScanners are the enabled scanners trivy runs: all but history.
func (in *Inputs) trivyScanners() []string {
	return slices.DeleteFunc(slices.Clone(in.Scanners), func(s string) bool { return s == ScanHistory })
}

func (in *Inputs) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}
