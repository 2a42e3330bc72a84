package rollout

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/signing"
)

// verifies reports whether a verify-before-deploy policy is configured.
func (in *Inputs) verifies() bool {
	return in.VerifyKey != "" || in.VerifyCertificateIdentity != "" || in.VerifyCertificateIdentityRegexp != ""
}

// verify checks the image's signature and required attestations against
// the verify-* policy before anything changes in the cluster. Without a
// policy it does nothing. The report is kept for the job summary.
func (d *deployer) verify(ctx context.Context) error {
	if !d.in.verifies() {
		return nil
	}
	end := d.log.Group(fmt.Sprintf("Verifying the signature of %s", d.digest))
	defer end()
	rep, err := signing.Verify(ctx, d.digest.String(), signing.Policy{
		Key:                       d.in.VerifyKey,
		CertificateIdentity:       d.in.VerifyCertificateIdentity,
		CertificateIdentityRegexp: d.in.VerifyCertificateIdentityRegexp,
		CertificateOIDCIssuer:     d.in.VerifyCertificateOIDCIssuer,
		SourceRepository:          d.in.VerifySourceRepository,
		TrustedRoot:               d.in.VerifyTrustedRoot,
		Require:                   d.in.VerifyRequire,
		Recursive:                 true,
		Conn:                      registry.Conn{Keychain: d.in.Keychain, UserAgent: "gantry-deploy"},
		Getenv:                    d.in.Getenv,
		Log:                       d.log,
	})
	d.verified = &rep
	if err != nil {
		return fmt.Errorf("refusing to deploy %s: verify-before-deploy failed (verify-* inputs): %w", d.digest, err)
	}
	d.log.Infof("signature verified: %d checks passed against %s", len(rep.Checks), rep.Policy)
	return nil
}

// refusedSummary is the job summary of a deploy that verification stopped:
// nothing was applied, and every check is listed with its reason.
func (d *deployer) refusedSummary(err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### gantry-deploy: ❌ refused to deploy to %s\n\n", d.in.Environment)
	fmt.Fprintf(&b, "`%s` did not pass verify-before-deploy; nothing was applied.\n\n**Reason:** %s\n\n", d.digest, cellText(err.Error()))
	if d.verified != nil && len(d.verified.Checks) > 0 {
		b.WriteString(signing.VerifySummary(*d.verified))
	}
	return b.String()
}

// verifiedSummary is the verification section of a deploy or plan summary.
func (d *deployer) verifiedSummary() string {
	if d.verified == nil {
		return ""
	}
	return "\n" + signing.VerifySummary(*d.verified)
}

func cellText(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// admit is what every deploy, plan and rollout does first: with resolve,
// the image is resolved to its digest (out.Digest); with check, the
// verify-before-deploy checks run, and a refused image fills out.Summary
// with the reasons and marks a deploy (not a plan) failed.
func (d *deployer) admit(ctx context.Context, out *Outputs, resolve, check bool) error {
	if resolve {
		if err := d.resolveImage(ctx); err != nil {
			return err
		}
		out.Digest = d.digest.DigestStr()
	}
	if !check {
		return nil
	}
	if err := d.verify(ctx); err != nil {
		if out.Status != StatusPlanned {
			out.Status = StatusFailure
		}
		out.Summary = d.refusedSummary(err)
		return err
	}
	return nil
}
