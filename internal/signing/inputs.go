// Package signing is Gantry's signing stage: it signs an image index and
// its platform manifests, attaches in-toto attestations (SBOM, SLSA
// provenance, vulnerability scan) signed the same way, and verifies them
// against a policy; or it signs files, each with a Sigstore bundle beside
// it. Everything it writes is what cosign v3 writes — Sigstore bundles as
// OCI referrers, and `cosign sign-blob --bundle` bundles — so `cosign
// verify`, `cosign verify-attestation` and `cosign verify-blob` accept it,
// and Verify and VerifyFiles accept what cosign wrote.
package signing

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Inputs are the sign stage's inputs (actions/sign/action.yml). Fields
// tagged input:"-" are set by the caller from the runner's environment.
type Inputs struct {
	Image                     string        `input:"image"`
	Files                     []string      `input:"files"`
	Key                       string        `input:"key"`
	KeyPassword               string        `input:"key-password" secret:"true"`
	Keyless                   string        `input:"keyless" default:"auto"`
	FulcioURL                 string        `input:"fulcio-url" default:"https://fulcio.sigstore.dev"`
	RekorURL                  string        `input:"rekor-url" default:"https://rekor.sigstore.dev"`
	TSAURL                    string        `input:"tsa-url"`
	TrustedRoot               string        `input:"trusted-root"`
	SigningConfig             string        `input:"signing-config"`
	TlogUpload                string        `input:"tlog-upload" default:"auto"`
	Recursive                 bool          `input:"recursive" default:"true"`
	Attestations              []string      `input:"attestations"`
	SBOMFiles                 string        `input:"sbom-files"`
	ScanResult                string        `input:"scan-result"`
	Verify                    bool          `input:"verify" default:"false"`
	CertificateIdentity       string        `input:"certificate-identity"`
	CertificateIdentityRegexp string        `input:"certificate-identity-regexp"`
	CertificateOIDCIssuer     string        `input:"certificate-oidc-issuer" default:"https://token.actions.githubusercontent.com"`
	VerifySourceRepository    string        `input:"verify-source-repository"`
	VerifySourceRefRegexp     string        `input:"verify-source-ref-regexp"`
	Require                   []string      `input:"require"`
	RegistryUsername          string        `input:"registry-username"`
	RegistryPassword          string        `input:"registry-password" secret:"true"`
	InsecureRegistries        []string      `input:"insecure-registries"`
	ReportFile                string        `input:"report-file" default:"gantry-sign-report.json"`
	ReleaseFile               string        `input:"release-file" default:"gantry-release.json"`
	Jobs                      int           `input:"jobs" default:"4"`
	Timeout                   time.Duration `input:"timeout" default:"10m"`

	// IDToken is an OIDC token for keyless signing given directly (e.g.
	// SIGSTORE_ID_TOKEN); else one is requested from TokenRequestURL.
	IDToken string `input:"-"`
	// TokenRequestURL and TokenRequestToken are GitHub's
	// ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN (the job needs
	// permissions: id-token: write).
	TokenRequestURL   string `input:"-"`
	TokenRequestToken string `input:"-"`
	// Getenv resolves env://VAR key references; nil resolves none.
	Getenv func(string) string `input:"-"`
	// Dir is what relative paths are relative to; "" is the working directory.
	Dir string `input:"-"`
	// Build is the GitHub context provenance is made from.
	Build BuildContext `input:"-"`
	// Log receives progress lines; nil discards them.
	Log ghaction.Logger `input:"-"`
	// Keychain, Transport and Backoff tune the registry connection.
	Keychain  authn.Keychain    `input:"-"`
	Transport http.RoundTripper `input:"-"`
	Backoff   remote.Backoff    `input:"-"`
	// HTTPClient fetches the OIDC token; nil means http.DefaultClient.
	HTTPClient *http.Client `input:"-"`
}

// Outputs are the sign stage's results.
type Outputs struct {
	Signed     []SignedDigest `output:"signed"`
	Bundles    Paths          `output:"bundles"`
	Verified   bool           `output:"verified"`
	ReportFile string         `output:"report-file"`

	// Report is the full record (also written to ReportFile).
	Report Report `output:"-"`
}

// SignedDigest is one digest and what was signed on it.
type SignedDigest struct {
	Digest   string   `json:"digest"`
	Platform string   `json:"platform,omitempty"` // "" for the index
	Types    []string `json:"types"`              // signature, sbom/spdx, sbom/cyclonedx, provenance, scan: attached and read back
	// Referrers says where the digest's referrers were read back after the
	// last write: "referrers API", or "fallback tag sha256-<hex>" on a
	// registry without the API.
	Referrers string `json:"referrers,omitempty"`
	// Attached is every referrer manifest the run attached to the digest,
	// and whether the last read-back listed it.
	Attached []Attached `json:"attached,omitempty"`
	// Readded counts manifests found missing after their write had
	// succeeded (another writer's index overwrote them) and written again.
	Readded int `json:"readded,omitempty"`
}

// Attached is one referrer manifest the run attached to a digest.
type Attached struct {
	Type     string `json:"type"`     // signature, sbom/spdx, sbom/cyclonedx, provenance, scan
	Manifest string `json:"manifest"` // sha256:… of the referrer manifest
	Found    bool   `json:"found"`    // listed by the last read-back of the digest's referrers
}

// Paths is a list of file paths, written as a step output as a JSON list
// (fromJSON in a workflow), not one per line.
type Paths []string

// SignedFile is one file signed as a blob (input "files"), or verified.
type SignedFile struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"` // hex, of the content signed
	Bundle string `json:"bundle"` // <file>.sigstore.json
}

// BundleSuffix is what a file's Sigstore bundle is named after it:
// checksums.txt → checksums.txt.sigstore.json, the name `cosign sign-blob
// --bundle` users and GitHub's attestation tooling use.
const BundleSuffix = ".sigstore.json"

// Attestation kinds of the attestations and require inputs.
const (
	KindSBOM       = "sbom"
	KindProvenance = "provenance"
	KindScan       = "scan"
)

// SBOM formats the require input can name one by one: "sbom" is met by
// either, these only by their own format.
const (
	KindSPDX      = "sbom/spdx"
	KindCycloneDX = "sbom/cyclonedx"
)

var (
	kinds        = []string{KindSBOM, KindProvenance, KindScan}
	requireKinds = []string{KindSBOM, KindSPDX, KindCycloneDX, KindProvenance, KindScan}
)

// Mode is how a run signs.
type Mode string

// Signing modes.
const (
	ModeKey     Mode = "key"
	ModeKeyless Mode = "keyless"
)

// mode decides key or keyless signing from the inputs.
func (in *Inputs) mode() (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(in.Keyless)) {
	case "true", "yes", "on", "1":
		if in.Key != "" {
			return "", errors.New(`inputs "keyless: true" and "key" exclude each other: remove one`)
		}
		return ModeKeyless, nil
	case "false", "no", "off", "0":
		if in.Key == "" {
			return "", errors.New(`input "keyless" is false but "key" is empty: set "key" to a cosign.key path, env://VAR or a KMS URI`)
		}
		return ModeKey, nil
	case "auto", "":
		if in.Key != "" {
			return ModeKey, nil
		}
		if in.IDToken != "" || in.TokenRequestURL != "" {
			return ModeKeyless, nil
		}
		return "", errors.New(`nothing to sign with: set "key" (a cosign.key path, env://VAR or a KMS URI), or sign keyless by giving the job "permissions: id-token: write" so GitHub provides an OIDC token`)
	}
	return "", fmt.Errorf(`input "keyless" is %q: use auto, true or false`, in.Keyless)
}

// tlog reports whether signatures go to the transparency log: "auto" means
// yes for keyless (the certificate's only public record) and no for keys.
func (in *Inputs) tlog(mode Mode) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(in.TlogUpload)) {
	case "auto", "":
		return mode == ModeKeyless, nil
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf(`input "tlog-upload" is %q: use auto, true or false`, in.TlogUpload)
}

// Validate checks inputs that need no network.
func (in *Inputs) Validate() error {
	var errs []error
	image, files := strings.TrimSpace(in.Image) != "", len(in.Files) > 0
	switch {
	case image && files:
		errs = append(errs, errors.New(`inputs "image" and "files" exclude each other: sign the image in one step and the files in another`))
	case !image && !files:
		errs = append(errs, errors.New(`input "image" is required: pass the image by digest (the "image" output of gantry-build), e.g. ghcr.io/acme/app@sha256:…, or set "files" to sign files instead`))
	}
	if in.Verify {
		if err := in.policy().check(); err != nil {
			errs = append(errs, err)
		}
		if files && len(in.Require) > 0 {
			errs = append(errs, errors.New(`input "require" applies to images: files carry no attestations, only their signature is verified; empty "require"`))
		}
	} else {
		if _, err := in.mode(); err != nil {
			errs = append(errs, err)
		}
		if err := checkKinds("attestations", in.Attestations); err != nil {
			errs = append(errs, err)
		}
		if files && len(in.Attestations) > 0 {
			errs = append(errs, errors.New(`input "attestations" applies to images: with "files" each file gets a signature bundle only; empty "attestations"`))
		}
		if !files && has(in.Attestations, KindSBOM) && strings.TrimSpace(in.SBOMFiles) == "" {
			errs = append(errs, errors.New(`input "attestations" includes sbom but "sbom-files" is empty: pass the sbom-files output of gantry-sbom or a directory of SBOMs`))
		}
		if !files && has(in.Attestations, KindScan) && strings.TrimSpace(in.ScanResult) == "" {
			errs = append(errs, errors.New(`input "attestations" includes scan but "scan-result" is empty: pass the attestation file of the scan stage`))
		}
		if _, err := in.tlog(ModeKey); err != nil {
			errs = append(errs, err)
		}
	}
	if (in.RegistryUsername == "") != (in.RegistryPassword == "") {
		errs = append(errs, errors.New(`inputs "registry-username" and "registry-password" go together: set both (for GHCR: github.actor and secrets.GITHUB_TOKEN) or neither`))
	}
	if in.Jobs < 0 {
		errs = append(errs, fmt.Errorf(`input "jobs" is %d: use a positive number`, in.Jobs))
	}
	return errors.Join(errs...)
}

// policy is the verification policy the inputs describe (without the
// registry connection and log, which Run adds).
func (in *Inputs) policy() Policy {
	return Policy{
		Key: in.Key, KeyPassword: in.KeyPassword, Getenv: in.Getenv, Dir: in.Dir,
		CertificateIdentity: in.CertificateIdentity, CertificateIdentityRegexp: in.CertificateIdentityRegexp,
		CertificateOIDCIssuer: in.CertificateOIDCIssuer, TrustedRoot: in.TrustedRoot,
		SourceRepository: in.VerifySourceRepository, SourceRefRegexp: in.VerifySourceRefRegexp,
		Require: in.Require, Recursive: in.Recursive,
	}
}

// check reports what is missing or contradictory in a policy, naming the
// inputs to fix.
func (p Policy) check() error {
	keyless := p.CertificateIdentity != "" || p.CertificateIdentityRegexp != ""
	switch {
	case p.Key != "" && keyless:
		return errors.New(`verify: set either "key" or "certificate-identity"/"certificate-identity-regexp", not both`)
	case p.Key == "" && !keyless:
		return errors.New(`verify needs a policy: set "key" (the public key, cosign.pub) or "certificate-identity" (e.g. https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main) with "certificate-oidc-issuer"`)
	case p.CertificateIdentity != "" && p.CertificateIdentityRegexp != "":
		return errors.New(`set "certificate-identity" or "certificate-identity-regexp", not both`)
	case keyless && p.CertificateOIDCIssuer == "":
		return errors.New(`input "certificate-oidc-issuer" is empty: set the OIDC issuer, https://token.actions.githubusercontent.com for GitHub Actions`)
	case p.Key != "" && p.SourceRepository != "":
		return errors.New(`input "verify-source-repository" needs a keyless policy: a key signature carries no repository (only a Fulcio certificate does); verify by "certificate-identity" instead of "key", or leave "verify-source-repository" empty`)
	case p.Key != "" && p.SourceRefRegexp != "":
		return errors.New(`input "verify-source-ref-regexp" needs a keyless policy: a key signature carries no git ref (only a Fulcio certificate does); verify by "certificate-identity" instead of "key", or leave "verify-source-ref-regexp" empty`)
	}
	if p.CertificateIdentityRegexp != "" {
		if _, err := regexp.Compile(p.CertificateIdentityRegexp); err != nil {
			return fmt.Errorf(`input "certificate-identity-regexp": %w`, err)
		}
	}
	if p.SourceRepository != "" {
		if _, err := SourceRepositoryURI(p.SourceRepository); err != nil {
			return err
		}
	}
	if p.SourceRefRegexp != "" {
		if _, err := regexp.Compile(p.SourceRefRegexp); err != nil {
			return fmt.Errorf(`input "verify-source-ref-regexp": %w`, err)
		}
	}
	return checkKindsIn("require", p.Require, requireKinds)
}

// repositoryURI turns the verify-source-repository input into the form
// Fulcio writes in a certificate's Source Repository URI extension:
// owner/name is a github.com repository, https://HOST/owner/name is kept
// (GitHub Enterprise Server); a trailing slash or .git is dropped. Nothing
// else is folded: the extension holds the repository's name as GitHub
// spells it, and the comparison is exact.
func SourceRepositoryURI(s string) (string, error) {
	raw := s
	s = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "/"), ".git")
	host := "github.com"
	if rest, ok := strings.CutPrefix(s, "https://"); ok {
		host, s, _ = strings.Cut(rest, "/")
	}
	owner, name, ok := strings.Cut(s, "/")
	if !ok || host == "" || !repoPart(owner) || !repoPart(name) || strings.ContainsAny(host, "?#@ ") {
		return "", fmt.Errorf(`input "verify-source-repository" is %q: use OWNER/NAME (a github.com repository, e.g. acme/app) or https://HOST/OWNER/NAME`, raw)
	}
	return "https://" + host + "/" + owner + "/" + name, nil
}

// repoPart reports whether s can be an owner or repository name: GitHub
// allows letters, digits, '-', '_' and '.'.
func repoPart(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func checkKinds(input string, list []string) error {
	return checkKindsIn(input, list, kinds)
}

func checkKindsIn(input string, list, valid []string) error {
	for _, k := range list {
		if !has(valid, k) {
			return fmt.Errorf(`input %q: %q is not one of %s`, input, k, strings.Join(valid, ", "))
		}
	}
	return nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
