package image_test

import (
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/gantry-ci/gantry/internal/image"
)

// TestBuildOnScratch: base scratch makes each platform's image of the
// layers alone (FROM scratch), with the platform in its config and no
// base annotations; no registry is asked for a base.
func TestBuildOnScratch(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	in := baseInputs(t, reg.Host, image.Scratch, appContext(t))
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Base != image.Scratch {
		t.Errorf("base output %q", out.Base)
	}
	ref, err := name.ParseReference(out.Image)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("index invalid: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := im.Annotations["org.opencontainers.image.base.name"]; ok {
		t.Error("a scratch image names a base")
	}
	var got []string
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, cf.OS+"/"+cf.Architecture)
		if want := len(in.Layers); len(layers) != want || len(cf.RootFS.DiffIDs) != want {
			t.Errorf("%s: %d layers (%d diff IDs), want exactly the %d given", d.Platform.Architecture, len(layers), len(cf.RootFS.DiffIDs), want)
		}
		if !slices.Equal(cf.Config.Entrypoint, in.Entrypoint) {
			t.Errorf("%s: entrypoint %q", d.Platform.Architecture, cf.Config.Entrypoint)
		}
	}
	if !slices.Equal(got, in.Platforms) {
		t.Errorf("platforms %v, want %v", got, in.Platforms)
	}
}
