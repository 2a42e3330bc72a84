package localregistry_test

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/localregistry"
)

// TestContentOutlivesTheProcess: what one run pushes (an index of two
// images, a tag, a referrer) is served by the next registry started on
// the same directory, on another port; a deleted tag stays deleted.
func TestContentOutlivesTheProcess(t *testing.T) {
	dir := t.TempDir()
	reg, err := localregistry.Start(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := random.Image(512, 2)
	b, _ := random.Image(512, 1)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: a}, mutate.IndexAddendum{Add: b})
	ref, _ := name.ParseReference(reg.Host+"/acme/app:v1", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	gone, _ := name.ParseReference(reg.Host+"/acme/app:gone", name.Insecure)
	if err := remote.Write(gone, a); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(gone); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	reg.Close()

	again, err := localregistry.Start(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	ref2, _ := name.ParseReference(again.Host+"/acme/app:v1", name.Insecure)
	got, err := remote.Index(ref2)
	if err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("index %s, want %s", d, want)
	}
	ad, _ := a.Digest()
	img, err := got.Image(ad)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer blob after restart: %v", err)
		}
		rc.Close()
	}
	gone2, _ := name.ParseReference(again.Host+"/acme/app:gone", name.Insecure)
	if _, err := remote.Head(gone2); err == nil {
		t.Error("a deleted tag came back")
	}
	tags, err := remote.List(ref2.Context())
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Errorf("tags %v %v", tags, err)
	}
}
