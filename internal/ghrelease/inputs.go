// Package ghrelease is Gantry's release stage: it creates or updates the
// GitHub Release of a tag, with notes from the changelog's section for the
// version (or GitHub's generated notes), the image by digest, the build's
// files as assets, and VERIFY.md with the exact commands that check the
// image's signatures, the signed files and the checksums.
//
// A release is never left half-made: a new release is created as a draft,
// every asset is uploaded, and only then is it published. A re-run finds the
// release (or the draft a failed run left) and brings it up to date,
// replacing assets of the same name, so a job can always simply be re-run.
package ghrelease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/runctx"
)

// DefaultChangelog is the changelog read when the input is not set; unlike
// a path given explicitly, it may be missing.
const DefaultChangelog = "CHANGELOG.md"

// DefaultAPIURL is the REST API root when neither the input nor
// GITHUB_API_URL names one.
const DefaultAPIURL = "https://api.github.com/"

// Notes sources (the notes-source output).
const (
	SourceChangelog = "changelog"
	SourceGenerated = "generated"
	SourceNone      = "none"
)

// Inputs are gantry-release's inputs (actions/release/action.yml). Fields
// tagged input:"-" are set by the caller.
type Inputs struct {
	Tag                             string        `input:"tag"`
	Repository                      string        `input:"repository"`
	Token                           string        `input:"token" required:"true" secret:"true"`
	APIURL                          string        `input:"api-url"`
	Name                            string        `input:"name"`
	Changelog                       string        `input:"changelog" default:"CHANGELOG.md"`
	GenerateNotes                   string        `input:"generate-notes" default:"auto"`
	Prerelease                      string        `input:"prerelease" default:"auto"`
	Draft                           bool          `input:"draft" default:"false"`
	MakeLatest                      string        `input:"make-latest" default:"auto"`
	ReleaseFile                     string        `input:"release-file"`
	Assets                          []string      `input:"assets"`
	VerifyCertificateIdentityRegexp string        `input:"verify-certificate-identity-regexp"`
	VerifyCertificateOIDCIssuer     string        `input:"verify-certificate-oidc-issuer" default:"https://token.actions.githubusercontent.com"`
	VerifyKey                       string        `input:"verify-key"`
	VerifySourceRepository          string        `input:"verify-source-repository"`
	Timeout                         time.Duration `input:"timeout" default:"10m"`

	// Git is the run's GitHub context, the source of the defaults of tag,
	// repository and api-url.
	Git RunContext `input:"-"`
	// Dir is what relative paths are relative to; "" is the working
	// directory.
	Dir string `input:"-"`
	// Log receives progress lines and warnings; nil discards them.
	Log ghaction.Logger `input:"-"`
	// HTTPClient replaces the default client (no overall time limit, so a
	// large upload is not cut off, but a server that stops answering fails
	// the request after two minutes).
	HTTPClient *http.Client `input:"-"`
	// Sleep waits between retries; nil waits for real. Tests inject one
	// that records the waits and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error `input:"-"`
	// Now is the clock an x-ratelimit-reset time is measured against; nil
	// is time.Now.
	Now func() time.Time `input:"-"`
}

// RunContext is the part of the run's context the stage uses.
type RunContext struct {
	Ref        string // GITHUB_REF, e.g. refs/tags/v1.2.3
	RefName    string // GITHUB_REF_NAME, e.g. v1.2.3
	Repository string // GITHUB_REPOSITORY, owner/name
	APIURL     string // GITHUB_API_URL
	ServerURL  string // GITHUB_SERVER_URL, e.g. https://github.com
	SHA        string // GITHUB_SHA
}

// RunContextFromRun takes the stage's part of the run's context, as the
// CI gave it: the stage applies github.com's defaults itself.
func RunContextFromRun(r *runctx.Run) RunContext {
	return RunContext{
		Ref:        r.Ref,
		RefName:    r.RefName,
		Repository: r.Repository,
		APIURL:     r.APIURL,
		ServerURL:  r.ServerURL,
		SHA:        r.SHA,
	}
}

// Outputs are gantry-release's results.
type Outputs struct {
	// ReleaseID is the release's numeric ID.
	ReleaseID int64 `output:"release-id"`
	// URL is the release's page (html_url). A draft's URL names a
	// placeholder tag until the release is published.
	URL string `output:"url"`
	// Assets lists the uploaded asset names, as GitHub stored them.
	Assets JSONList `output:"assets"`
	// NotesSource says where the notes came from: changelog, generated
	// or none.
	NotesSource string `output:"notes-source"`

	// Tag is the release's tag.
	Tag string `output:"-"`
	// Draft and Prerelease are the release's final state.
	Draft      bool `output:"-"`
	Prerelease bool `output:"-"`
	// MakeLatest is the make_latest value sent ("" for a draft).
	MakeLatest string `output:"-"`
	// Created is false when an existing release (or draft) was updated.
	Created bool `output:"-"`
	// Uploaded lists the uploaded assets with their sizes.
	Uploaded []UploadedAsset `output:"-"`
	// Notes is the release body as sent.
	Notes string `output:"-"`
	// NotesDetail says which changelog section (or what) the notes came
	// from, for the summary.
	NotesDetail string `output:"-"`
	// Verify is the VERIFY.md text; "" when the release has nothing to
	// verify (no release record, Sigstore bundle or checksums file).
	Verify string `output:"-"`
}

// UploadedAsset is one asset of the release.
type UploadedAsset struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"` // sha256:… of the bytes
	URL    string `json:"url"`    // browser_download_url
}

// JSONList is a list written as one JSON array output (a plain []string
// output is written one item per line).
type JSONList []string

// MarshalJSON writes an empty list as [] rather than null.
func (l JSONList) MarshalJSON() ([]byte, error) {
	if l == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(l))
}

// settings are the inputs resolved against the run's context and checked.
type settings struct {
	tag, owner, repo string
	apiURL           *url.URL
	generate         string // auto, true, false
	prerelease       string // auto, true, false
	makeLatest       string // auto, true, false
	// sourceRepo is verify-source-repository as cosign's
	// --certificate-github-workflow-repository takes it, owner/name; "" for
	// none.
	sourceRepo string
}

var tristate = []string{"auto", "true", "false"}

// resolve fills the defaults that come from the run's context and checks
// every input, reporting all bad ones at once. It needs no network.
func (in *Inputs) resolve() (settings, error) {
	var s settings
	var errs []error

	// A full ref (refs/tags/v1.2.3, as github.ref gives it) names the tag too.
	s.tag = strings.TrimPrefix(strings.TrimSpace(in.Tag), "refs/tags/")
	if s.tag == "" {
		if tag, ok := strings.CutPrefix(in.Git.Ref, "refs/tags/"); ok {
			s.tag = tag
			if in.Git.RefName != "" {
				s.tag = in.Git.RefName
			}
		}
	}
	switch {
	case s.tag == "" && in.Git.Ref != "":
		errs = append(errs, fmt.Errorf(`input "tag" is empty and this run is for %s, not a tag: set tag (e.g. tag: v1.2.3) or run the job on a tag push (on: push: tags: ["v*"])`, in.Git.Ref))
	case s.tag == "":
		errs = append(errs, errors.New(`input "tag" is empty and GITHUB_REF is not a tag: set tag (e.g. tag: v1.2.3) or run the job on a tag push (on: push: tags: ["v*"])`))
	case strings.ContainsAny(s.tag, " \t\n\\~^:?*[") || strings.Contains(s.tag, ".."):
		errs = append(errs, fmt.Errorf(`input "tag": %q is not a valid git tag name: use the tag as pushed, e.g. v1.2.3`, s.tag))
	}

	repo := strings.TrimSpace(in.Repository)
	if repo == "" {
		repo = in.Git.Repository
	}
	owner, name, ok := strings.Cut(repo, "/")
	switch {
	case repo == "":
		errs = append(errs, errors.New(`input "repository" is empty and GITHUB_REPOSITORY is not set: set repository: owner/name`))
	case !ok || owner == "" || name == "" || strings.ContainsAny(name, "/ "):
		errs = append(errs, fmt.Errorf(`input "repository": %q is not owner/name: write it as acme/app`, repo))
	}
	s.owner, s.repo = owner, name

	api := strings.TrimSpace(in.APIURL)
	if api == "" {
		api = in.Git.APIURL
	}
	if api == "" {
		api = DefaultAPIURL
	}
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf(`input "api-url": %q is not an http(s) URL: leave it empty for GITHUB_API_URL (https://api.github.com, or https://HOST/api/v3 on GitHub Enterprise Server)`, api))
	} else {
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		s.apiURL = u
	}

	if strings.TrimSpace(in.Token) == "" {
		errs = append(errs, errors.New(`input "token" is empty: pass ${{ secrets.GITHUB_TOKEN }} (or ${{ github.token }}) and give the job "permissions: contents: write"`))
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{
		{"generate-notes", &in.GenerateNotes, &s.generate},
		{"prerelease", &in.Prerelease, &s.prerelease},
		{"make-latest", &in.MakeLatest, &s.makeLatest},
	} {
		v := strings.ToLower(strings.TrimSpace(*f.v))
		if v == "" {
			v = "auto"
		}
		if b, err := ghaction.ParseBool(v); err == nil {
			v = fmt.Sprint(b)
		}
		if !slices.Contains(tristate, v) {
			errs = append(errs, fmt.Errorf(`input %q: %q is not auto, true or false`, f.name, *f.v))
		}
		*f.dst = v
	}

	if in.VerifyKey != "" && in.VerifyCertificateIdentityRegexp != "" {
		errs = append(errs, errors.New(`inputs "verify-key" and "verify-certificate-identity-regexp" are both set: set verify-key for an image signed with a key, the identity regexp for a keyless signature, not both`))
	}
	if re := in.VerifyCertificateIdentityRegexp; re != "" {
		if _, err := regexp.Compile(re); err != nil {
			errs = append(errs, fmt.Errorf(`input "verify-certificate-identity-regexp": %q is not a regular expression (%v): cosign reads it as a Go regexp, e.g. ^https://github\.com/acme/app/\.github/workflows/release\.yml@refs/tags/v.*$`, re, err))
		}
	}
	if in.VerifyKey == "" && in.VerifyCertificateIdentityRegexp != "" && strings.TrimSpace(in.VerifyCertificateOIDCIssuer) == "" {
		errs = append(errs, errors.New(`input "verify-certificate-oidc-issuer" is empty: leave it unset for GitHub Actions (https://token.actions.githubusercontent.com)`))
	}
	if v := strings.TrimSpace(in.VerifySourceRepository); v != "" {
		if in.VerifyKey != "" {
			errs = append(errs, errors.New(`inputs "verify-source-repository" and "verify-key" are both set: a key signature names no repository (only a keyless certificate does); leave verify-source-repository empty, or verify keyless with verify-certificate-identity-regexp instead of verify-key`))
		}
		r, err := workflowRepository(v)
		errs = append(errs, err)
		s.sourceRepo = r
	}
	return s, errors.Join(errs...)
}

// workflowRepository turns verify-source-repository (owner/name, or
// https://HOST/owner/name; a trailing slash or .git is dropped) into what
// cosign's --certificate-github-workflow-repository compares with the
// certificate's GitHub Workflow Repository extension (OID
// 1.3.6.1.4.1.57264.1.5): owner/name, without a host, as Fulcio copies it
// from the token's repository claim. The comparison is exact, so the name
// is kept as written.
func workflowRepository(v string) (string, error) {
	s := strings.TrimSuffix(strings.TrimSuffix(v, "/"), ".git")
	if rest, ok := strings.CutPrefix(s, "https://"); ok {
		host, path, _ := strings.Cut(rest, "/")
		if host == "" || strings.ContainsAny(host, "?#@ ") {
			path = ""
		}
		s = path
	}
	owner, name, ok := strings.Cut(s, "/")
	if !ok || !repoPart(owner) || !repoPart(name) {
		return "", fmt.Errorf(`input "verify-source-repository": %q is not a repository: write OWNER/NAME (acme/app) or https://HOST/OWNER/NAME`, v)
	}
	return owner + "/" + name, nil
}

// repoPart reports whether s can be a GitHub owner or repository name:
// letters, digits, '-', '_' and '.'.
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
