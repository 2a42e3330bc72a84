package workflowtest_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/release"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// TestSBOMActionInAWorkflow runs testdata/workflows/sbom-action.yml with
// act: the composite action installs gantry-sbom from this checkout, maps
// every input to INPUT_*, reads the image from a registry that demands the
// credentials, adds to the release record, and its outputs reach a later
// step.
func TestSBOMActionInAWorkflow(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	const password = "act-sbom-password"
	reg, err := ocitest.StartRegistry(ocitest.BasicAuth("ci-bot", password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })

	// A two-platform image whose amd64 side has an Alpine package database.
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	idx = withAPKDatabase(t, idx, "amd64", "P:zlib\nV:1.3.1-r2\nA:x86_64\nL:Zlib\n\nP:busybox\nV:1.37.0-r19\nA:x86_64\nL:GPL-2.0-only\n\n")
	digest, _ := idx.Digest()
	image := reg.Host + "/acme/prompt-builder@" + digest.String()
	ref, _ := name.ParseReference(image)
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(&authn.Basic{Username: "ci-bot", Password: password})); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	platformDigests := map[string]string{}
	for _, d := range im.Manifests {
		platformDigests[d.Platform.OS+"/"+d.Platform.Architecture] = d.Digest.String()
	}
	result := t.TempDir()
	recPath := filepath.Join(result, "gantry-release.json")
	if _, err := release.Write(recPath, release.Record{Image: image, Digest: digest.String()}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	log, err := act.Run(t.Context(), "push", "testdata/workflows/sbom-action.yml", map[string]string{
		"REGISTRY":          reg.Host,
		"IMAGE":             image,
		"REGISTRY_PASSWORD": password,
		"RESULT":            result,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	t.Logf("act ran the workflow in %v", time.Since(start).Round(time.Second))

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(result, name))
		if err != nil {
			t.Fatalf("the workflow did not hand over %s: %v\n%s", name, err, log)
		}
		return strings.TrimSpace(string(b))
	}
	if got := read("digest"); got != image {
		t.Errorf("digest output = %q, want %q", got, image)
	}
	var files map[string][]string
	if err := json.Unmarshal([]byte(read("sbom-files")), &files); err != nil {
		t.Fatalf("sbom-files output %q: %v", read("sbom-files"), err)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		arch := strings.TrimPrefix(p, "linux/")
		want := []string{
			filepath.Join(result, "sbom", "linux-"+arch+".spdx.json"),
			filepath.Join(result, "sbom", "linux-"+arch+".cyclonedx.json"),
		}
		if strings.Join(files[p], " ") != strings.Join(want, " ") {
			t.Errorf("sbom-files[%s] = %v, want %v", p, files[p], want)
		}
		for _, f := range files[p] {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			// The subject is the platform's manifest digest.
			if !bytes.Contains(b, []byte(platformDigests[p])) {
				t.Errorf("%s does not name the manifest %s", f, platformDigests[p])
			}
		}
	}
	var packages map[string]int
	if err := json.Unmarshal([]byte(read("packages")), &packages); err != nil {
		t.Fatalf("packages output %q: %v", read("packages"), err)
	}
	if packages["linux/amd64"] != 2 || packages["linux/arm64"] != 0 {
		t.Errorf("packages output = %v, want 2 on linux/amd64 and 0 on linux/arm64", packages)
	}
	rec, err := release.Read(recPath)
	if err != nil || !strings.Contains(string(rec.Stages["sbom"]), platformDigests["linux/arm64"]) {
		t.Errorf("release record sbom section = %s (%v)", rec.Stages["sbom"], err)
	}
	if strings.Contains(log, password) {
		t.Errorf("the registry password appears in the workflow log")
	}
}

// withAPKDatabase adds a layer with /lib/apk/db/installed to one
// architecture's image of idx.
func withAPKDatabase(t *testing.T, idx v1.ImageIndex, arch, db string) v1.ImageIndex {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "lib/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "lib/apk/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "lib/apk/db/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "lib/apk/db/installed", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(db))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	io.WriteString(tw, db)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform.Architecture != arch {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer}); err != nil {
			t.Fatal(err)
		}
		idx = mutate.RemoveManifests(idx, func(x v1.Descriptor) bool { return x.Digest == d.Digest })
		return mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: d.Platform}})
	}
	t.Fatalf("no %s image in the index", arch)
	return nil
}
