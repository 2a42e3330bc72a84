package rollout_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/rollout"
	"github.com/gantry-ci/gantry/internal/signing"
)

// TestVerifyBeforeDeploy: with verify-key set, a signed image is deployed
// and its checks are in the summary; an unsigned image, a signature by
// another key, or a missing required attestation is refused before anything
// is applied, and the running version stays.
func TestVerifyBeforeDeploy(t *testing.T) {
	t.Parallel()
	signedImg := signedImages(t, "acme/api", []string{"linux/amd64", "linux/arm64"})
	imgRepo, signed, unsigned, pubFile, otherPub := signedImg.repo, signedImg.signed, signedImg.unsigned, signedImg.pub, signedImg.otherPub

	c := k8stest.Start(t)
	ns := c.Namespace(t)
	manifests := appFor(t, ns, imgRepo)

	in, log := inputs(c, "production", manifests, signed)
	in.VerifyKey = pubFile
	out := deploy(t, in)
	if out.Status != rollout.StatusSuccess || currentImage(t, c, ns) != signed {
		t.Fatalf("signed image: status %s, running %s", out.Status, currentImage(t, c, ns))
	}
	if !strings.Contains(out.Summary, "Gantry verify: verified") || !strings.Contains(out.Summary, "linux/arm64") {
		t.Errorf("the summary does not show what was verified:\n%s", out.Summary)
	}
	if !strings.Contains(log.String(), "signature verified") {
		t.Errorf("no verification line in the log:\n%s", log)
	}

	for _, tc := range []struct {
		name, image, key string
		require          []string
		reason           string
	}{
		{"unsigned image", unsigned, pubFile, nil, "signature"},
		{"another key", signed, otherPub, nil, "signature"},
		{"missing attestation", signed, pubFile, []string{"provenance"}, "provenance"},
	} {
		in, _ := inputs(c, "production", manifests, tc.image)
		in.VerifyKey, in.VerifyRequire = tc.key, tc.require
		out, err := rollout.Run(t.Context(), in)
		if err == nil || !strings.Contains(err.Error(), "refusing to deploy") || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err = %v, want a refusal naming %q", tc.name, err, tc.reason)
		}
		if out.Status != rollout.StatusFailure || !strings.Contains(out.Summary, "refused to deploy") || !strings.Contains(out.Summary, "❌ fail") {
			t.Errorf("%s: status %q, summary:\n%s", tc.name, out.Status, out.Summary)
		}
		if got := currentImage(t, c, ns); got != signed {
			t.Errorf("%s: the refused deploy changed the running image to %s", tc.name, got)
		}
	}

	in, _ = inputs(c, "production", manifests, signed)
	in.VerifyRequire = []string{"sbom"}
	if _, err := rollout.Run(t.Context(), in); err == nil || !strings.Contains(err.Error(), `"verify-require"`) {
		t.Errorf("verify-require without a policy: err = %v", err)
	}
}

// testImages are two images in a test registry: signed by the key whose
// public half is pub, and unsigned (but with an attestation, so its digest
// differs); otherPub is a key that signed neither.
type testImages struct {
	repo, signed, unsigned, pub, otherPub string
	signedDigest                          string
}

func signedImages(t *testing.T, repository string, platforms []string) testImages {
	t.Helper()
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	signedTag, signedIdx, err := ocitest.PushBase(t.Context(), reg.Host, repository+":signed", platforms, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, unsignedIdx, err := ocitest.PushBase(t.Context(), reg.Host, repository+":unsigned", platforms, ocitest.BaseOptions{Attestation: true})
	if err != nil {
		t.Fatal(err)
	}
	imgRepo := strings.TrimSuffix(signedTag, ":signed")
	sd, _ := signedIdx.Digest()
	ud, _ := unsignedIdx.Digest()
	ti := testImages{repo: imgRepo, signed: imgRepo + "@" + sd.String(), unsigned: imgRepo + "@" + ud.String(), signedDigest: sd.String()}
	dir := t.TempDir()
	var keyFile string
	keyFile, ti.pub = writeKeyPair(t, dir, "release", "pw")
	_, ti.otherPub = writeKeyPair(t, dir, "other", "pw2")
	if _, err := signing.Run(t.Context(), signing.Inputs{
		Image: ti.signed, Key: keyFile, KeyPassword: "pw", Keyless: "auto", TlogUpload: "auto",
		Recursive: true, Dir: dir, ReportFile: "sign.json", Jobs: 4, Timeout: time.Minute,
	}); err != nil {
		t.Fatalf("signing the image: %v", err)
	}
	return ti
}

func writeKeyPair(t *testing.T, dir, name, password string) (key, pub string) {
	t.Helper()
	priv, pubPEM, err := signing.GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	key, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(key, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return key, pub
}

// appFor is app() with the image repository of a test registry.
func appFor(t *testing.T, ns, imageRepo string) string {
	t.Helper()
	b, err := os.ReadFile(app(t, ns, ""))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), repo, imageRepo)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
