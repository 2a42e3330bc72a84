package rollout_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/rollout"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/sigstoretest"
)

// TestVerifySourceRepositoryBeforeDeploy: two repositories build with the
// same reusable workflow, so their images are signed keyless with the same
// certificate identity. verify-source-repository deploys only the named
// repository's image and refuses the other's before anything is applied;
// the identity alone would have deployed it.
func TestVerifySourceRepositoryBeforeDeploy(t *testing.T) {
	t.Parallel()
	const reusable = "gantry-ci/gantry/.github/workflows/build-and-push.yml@0123456789abcdef0123456789abcdef01234567"
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	platforms := []string{"linux/amd64", "linux/arm64"}
	oursTag, oursIdx, err := ocitest.PushBase(t.Context(), reg.Host, "acme/api:ours", platforms, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, theirsIdx, err := ocitest.PushBase(t.Context(), reg.Host, "acme/api:theirs", platforms, ocitest.BaseOptions{Attestation: true})
	if err != nil {
		t.Fatal(err)
	}
	imgRepo := strings.TrimSuffix(oursTag, ":ours")
	od, _ := oursIdx.Digest()
	td, _ := theirsIdx.Digest()
	ours, theirs := imgRepo+"@"+od.String(), imgRepo+"@"+td.String()

	s := sigstoretest.Start(t, sigstoretest.Options{})
	for image, repo := range map[string]string{ours: "acme/prompt-builder", theirs: "evil/fork"} {
		s.Claims = sigstoretest.ReusableWorkflowClaims(reusable, repo, "refs/heads/main")
		if _, err := signing.Run(t.Context(), signing.Inputs{
			Image: image, IDToken: s.Token(t), Keyless: "auto", TlogUpload: "false", SigningConfig: s.SigningConfig,
			TrustedRoot: s.TrustedRoot, Recursive: true, Dir: t.TempDir(), Jobs: 4, Timeout: time.Minute,
		}); err != nil {
			t.Fatalf("signing %s as %s: %v", image, repo, err)
		}
	}

	c := k8stest.Start(t)
	ns := c.Namespace(t)
	manifests := appFor(t, ns, imgRepo)
	policy := func(image string) rollout.Inputs {
		in, _ := inputs(c, "production", manifests, image)
		in.VerifyCertificateIdentity, in.VerifyCertificateOIDCIssuer = s.Identity(), s.IssuerURL
		in.VerifyTrustedRoot, in.VerifySourceRepository = s.TrustedRoot, "acme/prompt-builder"
		return in
	}

	out := deploy(t, policy(ours))
	if out.Status != rollout.StatusSuccess || currentImage(t, c, ns) != ours {
		t.Fatalf("our image: status %s, running %s", out.Status, currentImage(t, c, ns))
	}
	if !strings.Contains(out.Summary, "source repository https://github.com/acme/prompt-builder") {
		t.Errorf("the summary does not show the source repository checked:\n%s", out.Summary)
	}

	out, err = rollout.Run(t.Context(), policy(theirs))
	want := "the certificate was issued to a run of https://github.com/evil/fork, but verify-source-repository requires https://github.com/acme/prompt-builder"
	if err == nil || !strings.Contains(err.Error(), "refusing to deploy") || !strings.Contains(err.Error(), want) {
		t.Errorf("their image: err = %v, want a refusal saying %q", err, want)
	}
	if out.Status != rollout.StatusFailure || !strings.Contains(out.Summary, "refused to deploy") {
		t.Errorf("their image: status %q, summary:\n%s", out.Status, out.Summary)
	}
	if got := currentImage(t, c, ns); got != ours {
		t.Errorf("the refused deploy changed the running image to %s", got)
	}

	// Without the source repository the identity accepts their image: the
	// gap verify-source-repository closes.
	in := policy(theirs)
	in.VerifySourceRepository = ""
	if out := deploy(t, in); out.Status != rollout.StatusSuccess {
		t.Errorf("identity only: status %s", out.Status)
	}
}

// TestVerifySourceRepositoryInputs: the input is checked before anything
// runs, naming it and the fix.
func TestVerifySourceRepositoryInputs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*rollout.Inputs)
		want string
	}{
		{"with a key", func(in *rollout.Inputs) { in.VerifyKey = "cosign.pub" }, `input "verify-source-repository" needs a keyless policy`},
		{"alone", func(*rollout.Inputs) {}, `input "verify-source-repository" needs "verify-certificate-identity"`},
		{"not a repository", func(in *rollout.Inputs) { in.VerifyCertificateIdentity = "https://github.com/x" }, `input "verify-source-repository" is "prompt-builder": use OWNER/NAME`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := rollout.Inputs{Environment: "production", Image: "r@sha256:0433f73a751060932c9303b1873e2d703619744b7c4bb8104a4116aa5d671924", Manifests: "k8s",
				Strategy: "rolling", Action: "deploy", RollbackTo: "previous", Lock: "wait", ReleaseHistory: 10, VerifySourceRepository: "acme/prompt-builder"}
			if tc.name == "not a repository" {
				in.VerifySourceRepository = "prompt-builder"
			}
			tc.edit(&in)
			if err := in.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
