package signing

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"

	"github.com/gantry-ci/gantry/internal/ocitest"
)

// TestBundleReferrerIsCosigns: the referrer manifest gantry pushes for a
// bundle is byte for byte the one cosign v3 pushes for it (given the same
// creation time), with the same blobs, so cosign and other readers cannot
// tell them apart.
func TestBundleReferrerIsCosigns(t *testing.T) {
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	_, idx, err := ocitest.PushBase(t.Context(), reg.Host, "acme/app:1", []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	subject, err := name.NewDigest(reg.Host + "/acme/app@" + im.Manifests[1].Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	bundle := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEUC"}]}}`)
	if err := ociremote.WriteAttestationNewBundleFormat(subject, bundle, PredicateSPDX); err != nil {
		t.Fatal(err)
	}
	refs, err := remote.Referrers(subject)
	if err != nil {
		t.Fatal(err)
	}
	rim, _ := refs.IndexManifest()
	if len(rim.Manifests) != 1 {
		t.Fatalf("%d referrers, want cosign's one", len(rim.Manifests))
	}
	desc, err := remote.Get(subject.Context().Digest(rim.Manifests[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	created, err := time.Parse(time.RFC3339, rim.Manifests[0].Annotations["org.opencontainers.image.created"])
	if err != nil {
		t.Fatal(err)
	}

	ours, blobs, err := bundleReferrer(im.Manifests[1], bundle, PredicateSPDX, created)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, desc.Manifest) {
		t.Errorf("gantry's referrer manifest differs from cosign's:\n gantry %s\n cosign %s", ours, desc.Manifest)
	}
	// Both blobs are the ones cosign uploaded.
	for _, l := range blobs {
		d, _ := l.Digest()
		want, _ := l.Compressed()
		wantBytes, _ := io.ReadAll(want)
		rl, err := remote.Layer(subject.Context().Digest(d.String()))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rl.Compressed()
		if err != nil {
			t.Fatalf("blob %s is not in the registry: %v", d, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, wantBytes) {
			t.Errorf("blob %s: %q (%v), want %q", d, got, err, wantBytes)
		}
	}
}
