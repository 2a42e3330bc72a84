package workflowtest_test

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ocitest"
)

// privateRegistry starts a registry that demands ci-bot's password, for
// the test's lifetime.
func privateRegistry(t *testing.T, password string) *ocitest.Registry {
	t.Helper()
	reg, err := ocitest.StartRegistry(ocitest.BasicAuth("ci-bot", password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// pushIndex pushes idx to repo:tag (tag may be empty) in reg as ci-bot
// and returns it by digest, repo@sha256:….
func pushIndex(t *testing.T, reg *ocitest.Registry, password, repo, tag string, idx v1.ImageIndex) string {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	image := reg.Host + "/" + repo + "@" + d.String()
	target := image
	if tag != "" {
		target = reg.Host + "/" + repo + ":" + tag
	}
	ref, err := name.ParseReference(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(&authn.Basic{Username: "ci-bot", Password: password})); err != nil {
		t.Fatal(err)
	}
	return image
}
