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

// TestKeylessSourceRepository: two repositories call one reusable workflow
// and so sign with the same certificate identity; only the source
// repository (and ref) in the certificate tells them apart. An identity
// policy alone accepts both images; verify-source-repository accepts only
// the named caller's, with a reason naming both repositories, in the
// bundle format and in cosign's legacy tags; the cosign CLI agrees.
func TestKeylessSourceRepository(t *testing.T) {
	const reusable = "gantry-ci/gantry/.github/workflows/build-and-push.yml@0123456789abcdef0123456789abcdef01234567"
	cosign := newCosign(t)
	s := sigstoretest.Start(t, sigstoretest.Options{})
	f := newFixture(t)
	other, _ := pushImage(t, f.reg, "acme/app:other", ocitest.BaseOptions{Docker: true})
	legacy, _ := pushImage(t, f.reg, "acme/app:legacy", ocitest.BaseOptions{Attestation: true})
	signAs := func(image, repo string) {
		t.Helper()
		s.Claims = sigstoretest.ReusableWorkflowClaims(reusable, repo, "refs/heads/main")
		if _, err := signing.Run(t.Context(), signing.Inputs{
			Image: image, IDToken: s.Token(t), Keyless: "auto", TlogUpload: "false",
			SigningConfig: s.SigningConfig, TrustedRoot: s.TrustedRoot, Dir: f.dir, Jobs: 4, Timeout: time.Minute,
		}); err != nil {
			t.Fatalf("signing %s as %s: %v", image, repo, err)
		}
	}
	signAs(f.image, "acme/app")
	signAs(other, "acme/other")
	identity := s.Identity() // the reusable workflow's, for both callers
	if identity != "https://github.com/"+reusable {
		t.Fatalf("identity %s", identity)
	}

	base := signing.Policy{CertificateIdentity: identity, CertificateOIDCIssuer: s.IssuerURL, TrustedRoot: s.TrustedRoot}
	for _, img := range []string{f.image, other} {
		if _, err := signing.Verify(t.Context(), img, base); err != nil {
			t.Fatalf("identity alone: %v", err)
		}
	}
	for _, tc := range []struct {
		name, image, repo, refRE string
		want                     string // "" passes
	}{
		{"owner/name", f.image, "acme/app", "", ""},
		{"URL with a slash", f.image, "https://github.com/acme/app/", "", ""},
		{"ref matches", f.image, "acme/app", `^refs/heads/main$`, ""},
		{"another caller", other, "acme/app", "", "the certificate was issued to a run of https://github.com/acme/other, but verify-source-repository requires https://github.com/acme/app"},
		{"another case", f.image, "acme/App", "", "issued to a run of https://github.com/acme/app, but verify-source-repository requires https://github.com/acme/App"},
		{"ref does not match", f.image, "acme/app", `^refs/tags/v`, `the certificate was issued to a run for refs/heads/main, which does not match verify-source-ref-regexp "^refs/tags/v"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			p.SourceRepository, p.SourceRefRegexp = tc.repo, tc.refRE
			rep, err := signing.Verify(t.Context(), tc.image, p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(rep.Policy, "source repository https://github.com/acme/app") {
					t.Errorf("policy %q", rep.Policy)
				}
				return
			}
			if !signing.IsVerificationError(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant %q", err, tc.want)
			}
		})
	}

	// The sign action's verify: true takes the same inputs.
	out, err := signing.Run(t.Context(), signing.Inputs{
		Image: other, Verify: true, CertificateIdentity: identity, CertificateOIDCIssuer: s.IssuerURL,
		TrustedRoot: s.TrustedRoot, VerifySourceRepository: "acme/app", Dir: f.dir, Timeout: time.Minute,
	})
	if err == nil || out.Verified || !strings.Contains(signing.Summary(out), "issued to a run of https://github.com/acme/other") {
		t.Errorf("Run verify: %v\n%s", err, signing.Summary(out))
	}

	// cosign checks the older GitHub Workflow Repository extension (OID
	// 1.3.6.1.4.1.57264.1.5, owner/name), which Fulcio fills from the same
	// claim: it agrees.
	cargs := func(image, repo string) []string {
		return []string{"verify", "--trusted-root", s.TrustedRoot, "--certificate-identity", identity,
			"--certificate-oidc-issuer", s.IssuerURL, "--certificate-github-workflow-repository", repo,
			"--insecure-ignore-tlog=true", "--insecure-ignore-sct", image}
	}
	cosign.must(t, nil, cargs(f.image, "acme/app")...)
	cosign.must(t, nil, cargs(other, "acme/other")...)
	if o, err := cosign.run(t, nil, cargs(other, "acme/app")...); err == nil || !strings.Contains(o, `expected GithubWorkflowRepository to be "acme/app", got "acme/other"`) {
		t.Errorf("cosign verify of the other caller's image: %v\n%s", err, o)
	}

	// Legacy .sig tags (cosign --new-bundle-format=false): the same check.
	s.Claims = sigstoretest.ReusableWorkflowClaims(reusable, "acme/other", "refs/heads/main")
	cosign.must(t, nil, "sign", "--new-bundle-format=false", "--use-signing-config=false", "--fulcio-url", s.FulcioURL,
		"--tlog-upload=false", "--identity-token", s.Token(t), "--yes", legacy)
	p := base
	p.SourceRepository = "acme/other"
	if _, err := signing.Verify(t.Context(), legacy, p); err != nil {
		t.Errorf("legacy signature of the named caller: %v", err)
	}
	p.SourceRepository = "acme/app"
	_, err = signing.Verify(t.Context(), legacy, p)
	if err == nil || !strings.Contains(err.Error(), ".sig: the certificate was issued to a run of https://github.com/acme/other, but verify-source-repository requires https://github.com/acme/app") {
		t.Errorf("legacy signature of another caller: %v", err)
	}
}
