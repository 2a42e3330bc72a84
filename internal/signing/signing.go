package signing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/release"
)

// Report is the stage's JSON report (the report-file output).
type Report struct {
	Image    string `json:"image,omitempty"` // repo@sha256:… of the index; "" when files were signed
	Mode     string `json:"mode"`            // sign or verify
	Signer   string `json:"signer,omitempty"`
	Policy   string `json:"policy,omitempty"`
	Verified bool   `json:"verified"`
	// Tlog says whether the signatures were recorded in a transparency
	// log; a key-signed image without one verifies with cosign's
	// --insecure-ignore-tlog=true.
	Tlog   bool           `json:"tlog"`
	Signed []SignedDigest `json:"signed,omitempty"`
	Files  []SignedFile   `json:"files,omitempty"` // input "files"
	SBOMs  []SBOM         `json:"sboms,omitempty"`
	Checks []Check        `json:"checks,omitempty"`
}

// target is one digest to sign or verify.
type target struct {
	Digest   name.Digest
	Desc     v1.Descriptor // media type, digest and size: what a referrer's subject names
	Platform string        // "" for the index (or a single-platform image)
	IsIndex  bool
}

// Run signs (or, with Verify set, verifies) the image.
func Run(ctx context.Context, in Inputs) (Outputs, error) {
	var out Outputs
	if err := in.Validate(); err != nil {
		return out, err
	}
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.Timeout)
		defer cancel()
	}
	log := in.Log
	if log == nil {
		log = ghaction.Discard{}
	}
	conn := registry.Conn{
		Username: in.RegistryUsername, Password: in.RegistryPassword,
		Insecure: in.InsecureRegistries, Keychain: in.Keychain,
		Transport: in.Transport, Backoff: in.Backoff, UserAgent: "gantry-sign", Jobs: in.Jobs,
	}
	if len(in.Files) > 0 {
		return runFiles(ctx, in, log)
	}
	// A broken release record fails before anything is signed.
	if err := release.Check(in.recordPath()); err != nil {
		return out, err
	}
	digest, err := conn.Resolve(ctx, "image", in.Image, log)
	if err != nil {
		return out, err
	}
	if in.Verify {
		p := in.policy()
		p.Conn, p.Log = conn, log
		rep, err := Verify(ctx, digest.String(), p)
		out.Report, out.Verified = rep, rep.Verified
		if rep.Image == "" {
			return out, err
		}
		if werr := finish(&out, in, digest.DigestStr()); werr != nil {
			return out, errors.Join(err, werr)
		}
		return out, err
	}

	signer, err := newSigner(ctx, in)
	if err != nil {
		return out, err
	}
	log.Infof("signing %s with %s", digest, signer.Describe())
	sboms, err := readSBOMs(in.SBOMFiles, in.Dir)
	if err != nil {
		return out, err
	}
	if !has(in.Attestations, KindSBOM) {
		sboms = nil
	}
	var scan []byte
	if has(in.Attestations, KindScan) {
		if scan, err = readScan(in.ScanResult, in.Dir); err != nil {
			return out, err
		}
	}
	var prov []byte
	if has(in.Attestations, KindProvenance) {
		bc := in.Build
		if bc.StartedOn.IsZero() {
			bc.StartedOn = time.Now()
		}
		if prov, err = provenance(bc); err != nil {
			return out, err
		}
	}
	targets, err := listTargets(ctx, conn, digest, in.Recursive || len(sboms) > 0)
	if err != nil {
		return out, err
	}
	jobs, err := plan(targets, sboms, prov, scan, in.Recursive)
	if err != nil {
		return out, err
	}
	signed, err := signAll(ctx, conn, signer, jobs, in.Jobs, log)
	if len(signed) == 0 {
		return out, err
	}
	out.Signed = signed
	out.Report = Report{Image: digest.String(), Mode: "sign", Signer: signer.Describe(), Tlog: in.tlogUsed(), Signed: signed, SBOMs: sboms}
	if err != nil {
		// Outputs, summary and report say what was attached and what
		// is missing; the release record is left alone.
		return out, errors.Join(err, writeReport(&out, in))
	}
	return out, finish(&out, in, digest.DigestStr())
}

// finish writes the report file and the release record's "sign" section
// (for an image: digest is its sha256:…; "" when files were signed).
func finish(out *Outputs, in Inputs, digest string) error {
	if err := writeReport(out, in); err != nil {
		return err
	}
	if in.ReleaseFile == "" || digest == "" {
		return nil
	}
	section := map[string]any{"mode": out.Report.Mode, "signer": out.Report.Signer, "verified": out.Report.Verified}
	if out.Report.Mode == "sign" {
		section["tlog"] = out.Report.Tlog
	}
	if len(out.Report.Signed) > 0 {
		section["signed"] = out.Report.Signed
	}
	if len(out.Report.Checks) > 0 {
		section["checks"] = out.Report.Checks
	}
	stage := "sign"
	if out.Report.Mode == "verify" {
		stage = "verify"
	}
	warn := func(string, ...any) {}
	if in.Log != nil {
		warn = in.Log.Warningf
	}
	_, err := release.Add(in.recordPath(), digest, stage, section, warn)
	return err
}

// recordPath is the release-file input, relative to Dir.
func (in Inputs) recordPath() string {
	if in.ReleaseFile == "" || filepath.IsAbs(in.ReleaseFile) || in.Dir == "" {
		return in.ReleaseFile
	}
	return filepath.Join(in.Dir, in.ReleaseFile)
}

// writeReport writes the report file (input report-file), if one is asked for.
func writeReport(out *Outputs, in Inputs) error {
	if in.ReportFile == "" {
		return nil
	}
	path := in.ReportFile
	if !filepath.IsAbs(path) && in.Dir != "" {
		path = filepath.Join(in.Dir, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(out.Report, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(abs, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	out.ReportFile = abs
	return nil
}

// listTargets returns the digest itself and, when it is an index and
// recursive is set, its platform manifests (attestation manifests with
// platform unknown/unknown are not images and are left out).
func listTargets(ctx context.Context, conn registry.Conn, digest name.Digest, recursive bool) ([]target, error) {
	opts := conn.Options(ctx, digest.String())
	desc, err := remote.Get(digest, opts...)
	if err != nil {
		return nil, fmt.Errorf("input \"image\": reading %s: %w", digest, err)
	}
	targets := []target{{Digest: digest, Desc: desc.Descriptor, IsIndex: desc.MediaType.IsIndex()}}
	if !desc.MediaType.IsIndex() || !recursive {
		return targets, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" || !m.MediaType.IsImage() {
			continue
		}
		targets = append(targets, target{
			Digest:   digest.Context().Digest(m.Digest.String()),
			Desc:     v1.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size},
			Platform: m.Platform.String(),
		})
	}
	return targets, nil
}

// job is one statement to sign and attach.
type job struct {
	Target        target
	Kind          string // signature, sbom/spdx, sbom/cyclonedx, provenance, scan
	PredicateType string
	Predicate     []byte
}

// plan lists every statement: a signature on every target, provenance on
// every target, each platform's SBOMs on its manifest, the scan on the index.
func plan(targets []target, sboms []SBOM, prov, scan []byte, recursive bool) ([]job, error) {
	var jobs []job
	byPlatform := map[string]target{}
	for _, t := range targets {
		if t.Platform != "" {
			byPlatform[t.Platform] = t
		}
	}
	for _, s := range sboms {
		t, ok := byPlatform[s.Platform]
		if !ok && len(targets) == 1 && !targets[0].IsIndex {
			t, ok = targets[0], true // a single-platform image
		}
		if !ok {
			have := make([]string, 0, len(byPlatform))
			for p := range byPlatform {
				have = append(have, p)
			}
			sort.Strings(have)
			return nil, fmt.Errorf(`input "sbom-files": platform %s (%s) is not in the image, which has %s`, s.Platform, s.File, strings.Join(have, ", "))
		}
		jobs = append(jobs, job{Target: t, Kind: "sbom/" + s.Format, PredicateType: s.PredicateType, Predicate: s.doc})
	}
	for _, t := range targets {
		if t.Platform != "" && !recursive {
			continue
		}
		jobs = append(jobs, job{Target: t, Kind: "signature", PredicateType: PredicateSignature})
		if prov != nil {
			jobs = append(jobs, job{Target: t, Kind: KindProvenance, PredicateType: PredicateSLSA1, Predicate: prov})
		}
		if scan != nil && t.Platform == "" {
			jobs = append(jobs, job{Target: t, Kind: KindScan, PredicateType: PredicateVuln, Predicate: scan})
		}
	}
	return jobs, nil
}

// signAll signs and attaches every job, a few at a time. Attaching to one
// digest is serialized, and each attachment is read back (see
// registry.Attacher); the result lists, per digest, what was attached and
// found. It is returned with the error too, when something was attached.
func signAll(ctx context.Context, conn registry.Conn, signer Signer, jobs []job, limit int, log ghaction.Logger) ([]SignedDigest, error) {
	if limit <= 0 {
		limit = 4
	}
	att := conn.NewAttacher(log)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	var mu sync.Mutex
	kinds := map[v1.Hash]string{} // referrer manifest → job kind
	platform := map[string]string{}
	for _, j := range jobs {
		platform[j.Target.Digest.String()] = j.Target.Platform
	}
	for _, j := range jobs {
		g.Go(func() error {
			repo := j.Target.Digest.Context().Name()
			st, err := newStatement(repo, j.Target.Digest.DigestStr(), j.PredicateType, j.Predicate)
			if err != nil {
				return err
			}
			b, err := signer.SignStatement(gctx, st)
			if err != nil {
				return fmt.Errorf("signing the %s of %s: %w", j.Kind, j.Target.Digest, err)
			}
			h, err := attach(gctx, conn, att, j.Target, b, j.PredicateType)
			if h != (v1.Hash{}) {
				mu.Lock()
				kinds[h] = j.Kind
				mu.Unlock()
			}
			if err != nil {
				return fmt.Errorf("attaching the %s of %s: %w", j.Kind, j.Target.Digest, err)
			}
			where := j.Target.Platform
			if where == "" {
				where = "index"
			}
			log.Infof("%-16s %-12s %s", j.Kind, where, j.Target.Digest.DigestStr())
			return nil
		})
	}
	err := g.Wait()
	if err == nil {
		// Another job attaching to the same digests may have written an
		// index it read before our last write: look once more.
		if err = att.Confirm(ctx); err != nil {
			err = fmt.Errorf("attached, but the read-back at the end found attestations missing: %w", err)
		}
	}
	var out []SignedDigest
	var lost []string
	for _, a := range att.Subjects() {
		sd := SignedDigest{Digest: a.Subject.DigestStr(), Platform: platform[a.Subject.String()], Referrers: a.Via, Readded: a.Readded, Types: []string{}}
		for _, m := range a.Manifests {
			sd.Attached = append(sd.Attached, Attached{Type: kinds[m.Digest], Manifest: m.Digest.String(), Found: m.Found})
			if m.Found {
				sd.Types = append(sd.Types, kinds[m.Digest])
			} else {
				lost = append(lost, fmt.Sprintf("%s of %s (%s)", kinds[m.Digest], orIndex(sd.Platform), m.Digest))
			}
		}
		sort.Strings(sd.Types)
		sort.SliceStable(sd.Attached, func(i, j int) bool { return sd.Attached[i].Type < sd.Attached[j].Type })
		out = append(out, sd)
	}
	// The index first, then the platforms in order.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Platform < out[j].Platform })
	if err != nil && len(lost) > 0 {
		err = fmt.Errorf("%w\nnot in the registry's referrers after the retries: %s; the stage fails rather than report them signed: re-run it (attaching again is safe)", err, strings.Join(lost, ", "))
	}
	return out, err
}

// attach pushes a bundle's blobs and has att attach its referrer manifest
// to t. The manifest's digest is returned once known, with or without an
// error.
func attach(ctx context.Context, conn registry.Conn, att *registry.Attacher, t target, bundle []byte, predicateType string) (v1.Hash, error) {
	manifest, blobs, err := bundleReferrer(t.Desc, bundle, predicateType, time.Now())
	if err != nil {
		return v1.Hash{}, err
	}
	ref := t.Digest.String()
	for _, l := range blobs {
		if err := remote.WriteLayer(t.Digest.Context(), l, conn.Options(ctx, ref)...); err != nil {
			return v1.Hash{}, fmt.Errorf("uploading the bundle: %w", err)
		}
	}
	return att.Attach(ctx, t.Digest, manifest)
}

// newSigner builds the key or keyless signer the inputs ask for.
// tlogUsed says whether this run records its signatures in a
// transparency log (inputs already validated by newSigner).
func (in Inputs) tlogUsed() bool {
	mode, err := in.mode()
	if err != nil {
		return false
	}
	tlog, err := in.tlog(mode)
	return err == nil && tlog
}

func newSigner(ctx context.Context, in Inputs) (Signer, error) {
	mode, err := in.mode()
	if err != nil {
		return nil, err
	}
	if mode == ModeKeyless && in.IDToken == "" && (in.TokenRequestURL == "" || in.TokenRequestToken == "") {
		_, err := RequestIDToken(ctx, in.HTTPClient, in.TokenRequestURL, in.TokenRequestToken, "sigstore")
		return nil, err
	}
	tlog, err := in.tlog(mode)
	if err != nil {
		return nil, err
	}
	var svc services
	if in.SigningConfig != "" {
		if svc, err = servicesFromSigningConfig(resolvePath(in.SigningConfig, in.Dir), tlog); err != nil {
			return nil, err
		}
	} else {
		svc = services{FulcioURL: in.FulcioURL, TSAURL: in.TSAURL, RekorAPI: 1}
		if tlog {
			svc.RekorURL = in.RekorURL
		}
	}
	if in.TSAURL != "" {
		svc.TSAURL = in.TSAURL
	}
	if tlog && svc.RekorURL == "" {
		return nil, errors.New(`input "tlog-upload" is true but no Rekor is set: set "rekor-url" or a "signing-config" with a transparency log`)
	}
	if mode == ModeKey {
		pemBytes, err := keyBytes(in.Key, in.Getenv, in.Dir)
		if err != nil {
			return nil, err
		}
		sv, err := loadSignerVerifier(ctx, in.Key, pemBytes, []byte(in.KeyPassword))
		if err != nil {
			return nil, err
		}
		return newKeySigner(sv, svc)
	}
	token := in.IDToken
	if token == "" {
		if token, err = RequestIDToken(ctx, in.HTTPClient, in.TokenRequestURL, in.TokenRequestToken, "sigstore"); err != nil {
			return nil, err
		}
	}
	if in.TrustedRoot != "" {
		if err := svc.checkWith(resolvePath(in.TrustedRoot, in.Dir)); err != nil {
			return nil, err
		}
	}
	return newKeylessSigner(token, svc)
}

// keyBytes reads the key input: a file, env://VAR, or PEM text itself.
// A KMS URI has no bytes.
func keyBytes(ref string, getenv func(string) string, dir string) ([]byte, error) {
	switch {
	case isKMS(ref):
		return nil, nil
	case strings.HasPrefix(ref, "-----BEGIN"):
		return []byte(ref), nil
	case strings.HasPrefix(ref, "env://"):
		v := strings.TrimPrefix(ref, "env://")
		var s string
		if getenv != nil {
			s = getenv(v)
		}
		if s == "" {
			return nil, fmt.Errorf(`input "key": %s: the environment variable %s is empty: map the secret to it in the step's env:`, ref, v)
		}
		return []byte(s), nil
	case strings.Contains(ref, "://"):
		return nil, fmt.Errorf(`input "key": %q: unknown scheme: use a file path, env://VAR, or awskms://, gcpkms://, azurekms://, hashivault://`, ref)
	}
	b, err := os.ReadFile(resolvePath(ref, dir))
	if err != nil {
		return nil, fmt.Errorf(`input "key": %w`, err)
	}
	return b, nil
}

func resolvePath(p, dir string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// RequestIDToken asks GitHub Actions for an OIDC token with the given
// audience (ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN, which GitHub sets when
// the job has permissions: id-token: write).
func RequestIDToken(ctx context.Context, client *http.Client, requestURL, requestToken, audience string) (string, error) {
	if requestURL == "" || requestToken == "" {
		return "", errors.New(`keyless signing needs an OIDC token: give the job "permissions: id-token: write" (GitHub then sets ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN), or set "key"`)
	}
	u, err := url.Parse(requestURL)
	if err != nil {
		return "", fmt.Errorf("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: %w", err)
	}
	q := u.Query()
	q.Set("audience", audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+requestToken)
	req.Header.Set("Accept", "application/json")
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("requesting the OIDC token: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("requesting the OIDC token: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var tok struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.Value == "" {
		return "", errors.New("requesting the OIDC token: the answer has no token value")
	}
	return tok.Value, nil
}
