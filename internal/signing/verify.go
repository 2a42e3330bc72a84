package signing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/registry"
)

// Policy is what a digest must satisfy: signed by Key, or keyless by a
// certificate for CertificateIdentity (or one matching
// CertificateIdentityRegexp) from CertificateOIDCIssuer, with the Require'd
// attestations signed the same way.
type Policy struct {
	// Key is the trusted public key: a PEM file, env://VAR, PEM text, or a
	// KMS URI. A cosign private key works too, with KeyPassword.
	Key         string
	KeyPassword string
	// CertificateIdentity (exact) or CertificateIdentityRegexp match the
	// certificate's SAN, e.g.
	// https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main.
	CertificateIdentity       string
	CertificateIdentityRegexp string
	CertificateOIDCIssuer     string
	// SourceRepository (keyless only) is the repository whose workflow run
	// the certificate must have been issued to: OWNER/NAME on github.com
	// or https://HOST/OWNER/NAME, compared exactly with the certificate's
	// Source Repository URI extension (OID 1.3.6.1.4.1.57264.1.12). It is
	// what tells callers of one reusable workflow apart: they all sign with
	// the reusable workflow's identity.
	SourceRepository string
	// SourceRefRegexp (keyless only) must match the certificate's Source
	// Repository Ref extension (OID 1.3.6.1.4.1.57264.1.14), the git ref
	// the run was for, e.g. ^refs/tags/v[0-9].
	SourceRefRegexp string
	// TrustedRoot is a trusted_root.json for a private Sigstore; "" uses
	// the public-good instance's root (fetched with TUF).
	TrustedRoot string
	// Require lists attestations that must be present and verified: sbom
	// (an SPDX or a CycloneDX SBOM on every platform manifest), sbom/spdx
	// and sbom/cyclonedx (that format on every platform manifest),
	// provenance (index and platforms), scan (index).
	Require []string
	// Recursive checks every platform manifest of an index too (its
	// signature and provenance). Required SBOMs are checked on every
	// platform manifest either way.
	Recursive bool
	// Conn reaches the registry.
	Conn registry.Conn
	// Getenv resolves env://VAR keys; Dir is what relative paths are
	// relative to; Log receives one line per check.
	Getenv func(string) string
	Dir    string
	Log    ghaction.Logger
}

// Check is one requirement checked on one digest.
type Check struct {
	Digest   string `json:"digest"` // sha256:…, of the image manifest or the file
	Platform string `json:"platform,omitempty"`
	File     string `json:"file,omitempty"` // when a file was verified
	What     string `json:"what"`           // signature, sbom, provenance, scan
	Passed   bool   `json:"passed"`
	// Reason says what passed (signer, formats) or exactly why it failed.
	Reason string `json:"reason"`
}

// VerificationError is returned when a check failed; the report says which.
type VerificationError struct {
	Failed []Check
}

func (e *VerificationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "verification failed: %d check(s) did not pass", len(e.Failed))
	for _, c := range e.Failed {
		where := c.Platform
		switch {
		case c.File != "":
			where = c.File
		case where == "":
			where = "index"
		}
		fmt.Fprintf(&b, "\n- %s of %s (%s): %s", c.What, where, c.Digest, c.Reason)
	}
	return b.String()
}

// Verify checks the signature and the required attestations of a digest
// (repo@sha256:…) and, with Recursive, of its platform manifests. The
// report lists every check; the error is a *VerificationError when one
// failed, or another error when verification could not be done at all.
func Verify(ctx context.Context, digest string, p Policy) (Report, error) {
	log := p.Log
	if log == nil {
		log = ghaction.Discard{}
	}
	if err := p.check(); err != nil {
		return Report{}, err
	}
	d, err := p.Conn.Resolve(ctx, "image", digest, log)
	if err != nil {
		return Report{}, err
	}
	t, err := p.trust(ctx)
	if err != nil {
		return Report{}, err
	}
	sbomRequired := has(p.Require, KindSBOM) || has(p.Require, KindSPDX) || has(p.Require, KindCycloneDX)
	targets, err := listTargets(ctx, p.Conn, d, p.Recursive || sbomRequired)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Image: d.String(), Mode: "verify", Policy: t.describes}
	log.Infof("verifying %s against %s", d, t.describes)
	for _, tg := range targets {
		ref := tg.Digest.String()
		bundles, err := listBundles(tg.Digest, p.Conn.Options(ctx, ref))
		if err != nil {
			return rep, err
		}
		// Verify every bundle once; group the results by the predicate
		// type its statement claims.
		ok := map[string][]verified{}
		failed := map[string][]string{}
		for _, sb := range bundles {
			v, err := t.verifyBundle(sb, tg.Digest.DigestStr())
			pt := v.PredicateType
			if pt == "" {
				pt = sb.PredicateType
			}
			if err != nil {
				failed[pt] = append(failed[pt], err.Error())
				continue
			}
			ok[pt] = append(ok[pt], v)
		}
		// Signatures cosign wrote before bundles (or with
		// --new-bundle-format=false) live under sha256-<hex>.sig/.att tags.
		lok, lfailed := t.verifyLegacy(ctx, tg.Digest, p.Conn.Options(ctx, ref), p.Conn.NameOptions(ref))
		for _, v := range lok {
			ok[v.PredicateType] = append(ok[v.PredicateType], v)
		}
		for pt, errs := range lfailed {
			failed[pt] = append(failed[pt], errs...)
		}
		// A platform is listed without recursive only for its SBOMs.
		all := tg.Platform == "" || p.Recursive
		var checks []requirement
		if all {
			checks = append(checks, requirement{"signature", []string{PredicateSignature}})
		}
		sbomHere := tg.Platform != "" || !tg.IsIndex
		for _, k := range p.Require {
			switch {
			case k == KindSBOM && sbomHere:
				checks = append(checks, requirement{KindSBOM, []string{PredicateSPDX, PredicateCycloneDX}})
			case k == KindSPDX && sbomHere:
				checks = append(checks, requirement{KindSPDX, []string{PredicateSPDX}})
			case k == KindCycloneDX && sbomHere:
				checks = append(checks, requirement{KindCycloneDX, []string{PredicateCycloneDX}})
			case k == KindProvenance && all:
				checks = append(checks, requirement{KindProvenance, []string{PredicateSLSA1}})
			case k == KindScan && tg.Platform == "":
				checks = append(checks, requirement{KindScan, []string{PredicateVuln}})
			}
		}
		for _, c := range checks {
			chk := Check{Digest: tg.Digest.DigestStr(), Platform: tg.Platform, What: c.what}
			var good []verified
			var formats, bad []string
			for _, pt := range c.types {
				if len(ok[pt]) > 0 {
					good = append(good, ok[pt]...)
					formats = append(formats, formatName(pt))
				}
				bad = append(bad, failed[pt]...)
			}
			switch {
			case len(good) > 0:
				chk.Passed = true
				chk.Reason = "signed by " + signerOf(good[0])
				if strings.HasPrefix(c.what, KindSBOM) {
					chk.Reason = strings.Join(formats, " + ") + ", " + chk.Reason
				}
			case len(bad) > 0:
				chk.Reason = fmt.Sprintf("found %d, none verified: %s", len(bad), strings.Join(dedupe(bad), "; "))
			default:
				chk.Reason = fmt.Sprintf("no %s: no Sigstore bundle with predicate type %s refers to this digest%s", c.what, strings.Join(c.types, " or "), found(ok, failed))
			}
			status := "PASS"
			if !chk.Passed {
				status = "FAIL"
			}
			where := tg.Platform
			if where == "" {
				where = "index"
			}
			log.Infof("%s %-10s %-12s %s: %s", status, c.what, where, chk.Digest, chk.Reason)
			rep.Checks = append(rep.Checks, chk)
		}
	}
	return rep.conclude()
}

// conclude sets Verified from the checks and returns the report with a
// VerificationError listing the failed ones.
func (rep Report) conclude() (Report, error) {
	var bad []Check
	for _, c := range rep.Checks {
		if !c.Passed {
			bad = append(bad, c)
		}
	}
	rep.Verified = len(bad) == 0
	if !rep.Verified {
		return rep, &VerificationError{Failed: bad}
	}
	return rep, nil
}

// requirement is one check: a verified bundle of one of types.
type requirement struct {
	what  string
	types []string
}

// trust loads what the policy trusts.
func (p Policy) trust(ctx context.Context) (*trust, error) {
	if p.Key != "" {
		b, err := keyBytes(p.Key, p.Getenv, p.Dir)
		if err != nil {
			return nil, err
		}
		v, fp, err := loadVerifier(ctx, p.Key, b, []byte(p.KeyPassword))
		if err != nil {
			return nil, err
		}
		return newKeyTrust(v, fp), nil
	}
	repo := ""
	if p.SourceRepository != "" {
		var err error
		if repo, err = SourceRepositoryURI(p.SourceRepository); err != nil {
			return nil, err
		}
	}
	return newIdentityTrust(resolvePath(p.TrustedRoot, p.Dir), identityPolicy{
		SAN: p.CertificateIdentity, SANRegexp: p.CertificateIdentityRegexp, Issuer: p.CertificateOIDCIssuer,
		SourceRepository: repo, SourceRefRegexp: p.SourceRefRegexp,
	})
}

func signerOf(v verified) string {
	if v.Issuer != "" {
		return v.Signer + " (issuer " + v.Issuer + ")"
	}
	return v.Signer
}

func formatName(pt string) string {
	switch pt {
	case PredicateSPDX:
		return "spdx"
	case PredicateCycloneDX:
		return "cyclonedx"
	}
	return pt
}

// found describes the other bundles on a digest, for a "missing" message.
func found(ok map[string][]verified, failed map[string][]string) string {
	var names []string
	for pt := range ok {
		names = append(names, kindOf(pt))
	}
	for pt := range failed {
		names = append(names, kindOf(pt)+" (unverified)")
	}
	if len(names) == 0 {
		return " (it has no Sigstore bundles at all: never signed, or signed under another digest)"
	}
	sort.Strings(names)
	return " (it has: " + strings.Join(names, ", ") + ")"
}

func kindOf(pt string) string {
	switch pt {
	case PredicateSignature:
		return "signature"
	case PredicateSPDX:
		return "sbom/spdx"
	case PredicateCycloneDX:
		return "sbom/cyclonedx"
	case PredicateSLSA1:
		return "provenance"
	case PredicateVuln:
		return "scan"
	}
	return pt
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// IsVerificationError reports whether err is a failed check (as opposed to
// a verification that could not run).
func IsVerificationError(err error) bool {
	var ve *VerificationError
	return errors.As(err, &ve)
}
