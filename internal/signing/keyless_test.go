package signing_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/sigstoretest"
)

// TestKeyless signs keyless against a private Sigstore — the OIDC token
// from a stand-in for GitHub's token endpoint, a certificate from a real
// Fulcio — first without a transparency log, then with Rekor v2 and a
// timestamp authority; gantry and the cosign CLI verify by identity.
func TestKeyless(t *testing.T) {
	cosign := newCosign(t)
	for _, tc := range []struct {
		name string
		tlog bool
	}{{"no tlog", false}, {"rekor v2 and tsa", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := sigstoretest.Start(t, sigstoretest.Options{TLog: tc.tlog})
			url, reqToken := s.ActionsTokenServer(t)
			f := newFixture(t)
			in := signing.Inputs{
				Image: f.image, Keyless: "auto", TlogUpload: "auto",
				SigningConfig: s.SigningConfig, TrustedRoot: s.TrustedRoot,
				TokenRequestURL: url, TokenRequestToken: reqToken,
				Recursive: true, Attestations: []string{"provenance"},
				Dir: f.dir, Jobs: 4, Timeout: 3 * time.Minute, Build: buildContext(),
			}
			if !tc.tlog {
				in.TlogUpload = "false"
			}
			out, err := signing.Run(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.Report.Signer, "keyless (Fulcio "+s.FulcioURL) || len(out.Signed) != 3 {
				t.Errorf("signer %q, signed %+v", out.Report.Signer, out.Signed)
			}

			policy := signing.Policy{
				CertificateIdentity: s.Identity(), CertificateOIDCIssuer: s.IssuerURL,
				TrustedRoot: s.TrustedRoot, Require: []string{"provenance"}, Recursive: true,
			}
			rep, err := signing.Verify(t.Context(), f.image, policy)
			if err != nil {
				t.Fatalf("verify by identity: %v", err)
			}
			for _, c := range rep.Checks {
				if !strings.Contains(c.Reason, "signed by "+s.Identity()+" (issuer "+s.IssuerURL+")") {
					t.Errorf("check %+v does not name the identity", c)
				}
			}
			if len(rep.Checks) != 6 {
				t.Errorf("%d checks, want 6", len(rep.Checks))
			}

			wrong := policy
			wrong.CertificateIdentity = "https://github.com/acme/app/.github/workflows/evil.yml@refs/heads/main"
			_, err = signing.Verify(t.Context(), f.image, wrong)
			if err == nil || !strings.Contains(err.Error(), "identity does not match") {
				t.Errorf("verify with a wrong identity: %v", err)
			}
			byRegexp := policy
			byRegexp.CertificateIdentity, byRegexp.CertificateIdentityRegexp = "", `^https://github\.com/.+/\.github/workflows/release\.yml@refs/.+$`
			if _, err := signing.Verify(t.Context(), f.image, byRegexp); err != nil {
				t.Errorf("verify by identity regexp: %v", err)
			}
			keyPolicy := signing.Policy{Key: f.pub, Recursive: false}
			if _, err := signing.Verify(t.Context(), f.image, keyPolicy); err == nil || !strings.Contains(err.Error(), "signed keyless (with a certificate), but the policy trusts a key") {
				t.Errorf("verify a keyless signature with a key policy: %v", err)
			}

			args := []string{"--trusted-root", s.TrustedRoot, "--certificate-identity", s.Identity(), "--certificate-oidc-issuer", s.IssuerURL, "--insecure-ignore-sct"}
			if !tc.tlog {
				args = append(args, "--insecure-ignore-tlog=true")
			}
			amd := f.image[:strings.Index(f.image, "@")] + "@" + f.plat["linux/amd64"]
			for _, ref := range []string{f.image, amd} {
				cosign.must(t, nil, append(append([]string{"verify"}, args...), ref)...)
				cosign.must(t, nil, append(append([]string{"verify-attestation", "--type", "slsaprovenance1"}, args...), ref)...)
			}
			if tc.tlog {
				// The trusted root lists a log: a signature kept out of it
				// (tlog-upload false, TSA timestamp only) must not verify.
				offLog, _ := pushImage(t, f.reg, "acme/app:offlog", ocitest.BaseOptions{Docker: true})
				in2 := in
				in2.Image, in2.TlogUpload, in2.Recursive, in2.Attestations = offLog, "false", false, nil
				if _, err := signing.Run(t.Context(), in2); err != nil {
					t.Fatal(err)
				}
				p := policy
				p.Require, p.Recursive = nil, false
				_, err := signing.Verify(t.Context(), offLog, p)
				if err == nil || !strings.Contains(err.Error(), "not in the transparency log") {
					t.Errorf("verify a signature missing from the log: %v", err)

				}
			}
			bad := append([]string{"verify", "--trusted-root", s.TrustedRoot, "--certificate-identity", wrong.CertificateIdentity}, args[4:]...)
			if out, err := cosign.run(t, nil, append(bad, f.image)...); err == nil {
				t.Errorf("cosign verify with a wrong identity passed:\n%s", out)
			}
		})
	}
}
