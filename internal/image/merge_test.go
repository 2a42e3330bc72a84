package image_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/gantry-ci/gantry/internal/image"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/signing"
)

// platformBuild is one job of a matrix build: one platform, pushed by
// digest (no tag), into repo.
func platformBuild(t *testing.T, host, repo, base, ctxDir, platform string) image.Outputs {
	t.Helper()
	in := baseInputs(t, host, base, ctxDir)
	in.Image = host + "/" + repo
	in.Platforms = []string{platform}
	in.PushByDigest = true
	in.ReleaseFile = ""
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("push-by-digest build for %s: %v", platform, err)
	}
	if len(out.Tags) != 0 || !out.ByDigest {
		t.Errorf("push-by-digest build for %s: tags %v, want none", platform, out.Tags)
	}
	return out
}

// signPlatform signs one platform manifest with a key, as a job would
// before the merge (e.g. right after its own build).
func signPlatform(t *testing.T, ref, dir string) (pub string) {
	t.Helper()
	priv, pubPEM, err := signing.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	key, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	writeFile(t, key, string(priv), 0o600)
	writeFile(t, pub, string(pubPEM), 0o644)
	_, err = signing.Run(t.Context(), signing.Inputs{
		Image: ref, Key: key, KeyPassword: "pw", Keyless: "false", TlogUpload: "false",
		Dir: dir, Jobs: 2, Timeout: time.Minute,
		Build: signing.BuildContext{ServerURL: "https://github.com", Repository: "acme/Prompt-Builder", SHA: "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5", RunID: "1", RunAttempt: "1"},
	})
	if err != nil {
		t.Fatalf("signing %s before the merge: %v", ref, err)
	}
	return pub
}

func verified(t *testing.T, ref, pub string) error {
	t.Helper()
	rep, err := signing.Verify(t.Context(), ref, signing.Policy{Key: pub})
	if err == nil && !rep.Verified {
		t.Fatalf("verify %s: no error but not verified", ref)
	}
	return err
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tagsOf(t *testing.T, repo string) []string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil && !strings.Contains(err.Error(), "NAME_UNKNOWN") {
		t.Fatal(err)
	}
	var out []string
	for _, tag := range tags {
		if !strings.HasPrefix(tag, "sha256-") { // referrers fallback tags
			out = append(out, tag)
		}
	}
	slices.Sort(out)
	return out
}

// TestMatrixBuildsMergeIntoOneIndex: two jobs each build one platform and
// push it by digest; a third merges the two digests into one index, tags
// it, and changes no image: a signature made on a platform digest before
// the merge still verifies after it. On registries with and without the
// OCI 1.1 referrers API, in the same repository and from other ones.
func TestMatrixBuildsMergeIntoOneIndex(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		noReferrers bool
		jobRepo     string // where the per-platform jobs push
	}{
		{"referrers API, same repository", false, "acme/prompt-builder"},
		{"no referrers API, same repository", true, "acme/prompt-builder"},
		{"referrers API, copied from the jobs' repository", false, "acme/prompt-builder-jobs"},
		{"no referrers API, copied from the jobs' repository", true, "acme/prompt-builder-jobs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg, err := ocitest.Start(ocitest.RegistryOptions{NoReferrers: tc.noReferrers})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { reg.Close() })
			base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
			ctxDir := appContext(t)
			amd := platformBuild(t, reg.Host, tc.jobRepo, base, ctxDir, "linux/amd64")
			arm := platformBuild(t, reg.Host, tc.jobRepo, base, ctxDir, "linux/arm64")
			jobRepo := reg.Host + "/" + tc.jobRepo
			if got := tagsOf(t, jobRepo); len(got) != 0 {
				t.Fatalf("push-by-digest builds left tags %v in %s", got, jobRepo)
			}
			amdRef := jobRepo + "@" + amd.PlatformDigests["linux/amd64"]
			pub := signPlatform(t, amdRef, t.TempDir())

			in := baseInputs(t, reg.Host, "", "")
			in.Base, in.Layers, in.Entrypoint, in.Env, in.Workdir, in.User, in.Ports = "", nil, nil, nil, "", "", nil
			in.Merge = []string{amd.Image, arm.Image}
			out, err := image.Run(t.Context(), in)
			if err != nil {
				t.Fatal(err)
			}
			repo := reg.Host + "/acme/prompt-builder"
			if out.Image != repo+"@"+out.Digest {
				t.Errorf("image output %q, want %s@%s", out.Image, repo, out.Digest)
			}
			idx, err := remote.Index(mustRef(t, out.Image))
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(idx); err != nil {
				t.Fatalf("merged index is invalid: %v", err)
			}
			im, _ := idx.IndexManifest()
			want := map[string]string{"linux/amd64": amd.PlatformDigests["linux/amd64"], "linux/arm64": arm.PlatformDigests["linux/arm64"]}
			got := map[string]string{}
			for _, d := range im.Manifests {
				got[d.Platform.String()] = d.Digest.String()
			}
			if len(got) != 2 || got["linux/amd64"] != want["linux/amd64"] || got["linux/arm64"] != want["linux/arm64"] {
				t.Errorf("merged index lists %v, want exactly the jobs' manifests %v", got, want)
			}
			if out.PlatformDigests["linux/amd64"] != want["linux/amd64"] || out.PlatformDigests["linux/arm64"] != want["linux/arm64"] {
				t.Errorf("platform-digests output %v, want %v", out.PlatformDigests, want)
			}
			if im.MediaType != types.OCIImageIndex || im.Annotations["org.opencontainers.image.version"] != "1.2.3" ||
				im.Annotations["org.opencontainers.image.vendor"] != "Acme" || im.Annotations["com.example.scope"] != "index-only" {
				t.Errorf("merged index: media type %s, annotations %v", im.MediaType, im.Annotations)
			}
			// The tag rules of a v1.2.3 tag push, on the merged index.
			if got, want := tagsOf(t, repo), []string{"1", "1.2", "1.2.3", "latest", "sha-9a8b7c6"}; !slices.Equal(got, want) {
				t.Errorf("tags in %s: %v, want %v", repo, got, want)
			}
			for _, tag := range out.Tags {
				d, err := remote.Head(mustRef(t, tag))
				if err != nil || d.Digest.String() != out.Digest {
					t.Errorf("tag %s -> %v (%v), want the merged index %s", tag, d, err, out.Digest)
				}
			}
			// The signature made before the merge verifies after it, in the
			// repository the index is in.
			if err := verified(t, repo+"@"+want["linux/amd64"], pub); err != nil {
				t.Errorf("signature made on the amd64 digest before the merge does not verify after: %v", err)
			}
			if err := verified(t, repo+"@"+want["linux/arm64"], pub); err == nil {
				t.Errorf("arm64 (never signed) verifies: the check cannot fail")
			}
			// Merging the same digests again gives the same index.
			again, err := image.Run(t.Context(), in)
			if err != nil || again.Digest != out.Digest {
				t.Errorf("second merge of the same digests: %s (%v), want %s", again.Digest, err, out.Digest)
			}
		})
	}
}

// TestMergeKeepsAttestationsAndRefusesBadInput: an index input's
// attestation manifests travel with it; a platform given twice, a tag
// instead of a digest and inputs a merge cannot honour are refused before
// anything is pushed.
func TestMergeKeepsAttestationsAndRefusesBadInput(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	// Two "builds": an index with amd64 + an attestation (as BuildKit
	// makes with attestations on), and one with arm64.
	_, idxA, err := ocitest.PushBase(t.Context(), reg.Host, "acme/jobs:amd64", []string{"linux/amd64"}, ocitest.BaseOptions{Attestation: true})
	if err != nil {
		t.Fatal(err)
	}
	_, idxB, err := ocitest.PushBase(t.Context(), reg.Host, "acme/jobs:arm64", []string{"linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byDigest := func(idx v1.ImageIndex) string {
		d, _ := idx.Digest()
		return reg.Host + "/acme/jobs@" + d.String()
	}
	mergeIn := func(lines ...string) image.Inputs {
		in := baseInputs(t, reg.Host, "", "")
		in.Image = reg.Host + "/acme/merged"
		in.Base, in.Layers, in.Entrypoint, in.Env, in.Workdir, in.User, in.Ports = "", nil, nil, nil, "", "", nil
		in.Merge = lines
		return in
	}
	out, err := image.Run(t.Context(), mergeIn(byDigest(idxA), byDigest(idxB)))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(mustRef(t, out.Image))
	if err != nil {
		t.Fatal(err)
	}
	// (validate.Index would also check the stand-in attestation's config,
	// which, like the one ocitest copies from buildx, names no platform.)
	for _, d := range out.PlatformDigests {
		h, _ := v1.NewHash(d)
		img, err := idx.Image(h)
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			t.Errorf("merged platform image %s: %v", d, err)
		}
	}
	im, _ := idx.IndexManifest()
	var platforms []string
	attestations := 0
	for _, d := range im.Manifests {
		if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			attestations++
			if d.Annotations["vnd.docker.reference.digest"] != out.PlatformDigests["linux/amd64"] {
				t.Errorf("attestation refers to %s, want the amd64 manifest %s", d.Annotations["vnd.docker.reference.digest"], out.PlatformDigests["linux/amd64"])
			}
			continue
		}
		platforms = append(platforms, d.Platform.String())
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) || attestations != 1 {
		t.Errorf("merged index: platforms %v and %d attestation(s), want amd64, arm64 and the one attestation", platforms, attestations)
	}
	if len(out.PlatformDigests) != 2 {
		t.Errorf("platform-digests %v: an attestation is not a platform", out.PlatformDigests)
	}

	// platforms set to the same set in another order: accepted.
	same := mergeIn(byDigest(idxA), byDigest(idxB))
	same.Platforms = []string{"linux/arm64", "linux/amd64"}
	if _, err := image.Run(t.Context(), same); err != nil {
		t.Errorf("platforms naming exactly the inputs' platforms: %v", err)
	}
	before := tagsOf(t, reg.Host+"/acme/merged")
	for _, tc := range []struct {
		in   image.Inputs
		want []string
	}{
		{mergeIn(byDigest(idxA), byDigest(idxA)), []string{`input "merge"`, "listed twice"}},
		{mergeIn(byDigest(idxA), reg.Host+"/acme/jobs:amd64"), []string{`input "merge"`, "acme/jobs:amd64", "REPOSITORY@sha256:DIGEST"}},
		{func() image.Inputs { in := mergeIn(byDigest(idxA), byDigest(idxB)); in.Base = "x/base:1"; return in }(), []string{`input "base" is set with "merge"`}},
		{func() image.Inputs {
			in := mergeIn(byDigest(idxA), byDigest(idxB))
			in.Layers = []string{"dist:/app"}
			return in
		}(), []string{`input "layers" is set with "merge"`}},
		{func() image.Inputs { in := mergeIn(byDigest(idxA), byDigest(idxB)); in.Push = false; return in }(), []string{`input "push" is false with "merge"`}},
		{func() image.Inputs {
			in := mergeIn(byDigest(idxA), byDigest(idxB))
			in.Platforms = []string{"linux/amd64", "linux/arm64", "linux/s390x"}
			return in
		}(), []string{`input "platforms" is linux/amd64,linux/arm64,linux/s390x`, "hold linux/amd64,linux/arm64"}},
	} {
		_, err := image.Run(t.Context(), tc.in)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("merge %v: error %v, want it to name %q", tc.in.Merge, err, w)
			}
		}
	}
	// A platform given twice: two different amd64 builds.
	_, idxC, err := ocitest.PushBase(t.Context(), reg.Host, "acme/jobs:amd64-again", []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = image.Run(t.Context(), mergeIn(byDigest(idxB), byDigest(idxC)))
	if err == nil || !strings.Contains(err.Error(), "linux/arm64 is given twice") || !strings.Contains(err.Error(), byDigest(idxB)) {
		t.Errorf("arm64 from two builds: error %v, want it to name the platform and both inputs", err)
	}
	if after := tagsOf(t, reg.Host+"/acme/merged"); !slices.Equal(before, after) {
		t.Errorf("a refused merge moved tags: %v -> %v", before, after)
	}
	// push-by-digest with tags: the tags would be dropped, so it is refused.
	bad := baseInputs(t, reg.Host, byDigest(idxB), appContext(t))
	bad.PushByDigest, bad.Tags = true, []string{"type=raw,value=x"}
	if _, err := image.Run(t.Context(), bad); err == nil || !strings.Contains(err.Error(), `inputs "push-by-digest" and "tags"`) {
		t.Errorf("push-by-digest with tags: %v", err)
	}
}
