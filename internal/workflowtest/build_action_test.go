package workflowtest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/release"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// TestBuildActionInAWorkflow runs testdata/workflows/build-action.yml with act:
// the composite action installs gantry-build from this checkout, maps every
// input to INPUT_*, and its outputs reach a later step.
func TestBuildActionInAWorkflow(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	const password = "act-secret-password"
	reg, err := ocitest.StartRegistry(ocitest.BasicAuth("ci-bot", password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	auth := remote.WithAuth(&authn.Basic{Username: "ci-bot", Password: password})
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	baseRef, _ := name.ParseReference(reg.Host + "/library/base:1")
	if err := remote.WriteIndex(baseRef, idx, auth); err != nil {
		t.Fatal(err)
	}

	appDir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		write(t, filepath.Join(appDir, "dist", "server-"+arch), "server "+arch, 0o755)
	}
	write(t, filepath.Join(appDir, "static", "index.html"), "<h1>hi</h1>", 0o644)
	result := t.TempDir()

	ctx := t.Context()
	start := time.Now()
	log, err := act.Run(ctx, "push", "testdata/workflows/build-action.yml", map[string]string{
		"REGISTRY":          reg.Host,
		"REGISTRY_PASSWORD": password,
		"CONTEXT":           appDir,
		"RESULT":            result,
		"SOURCE_DATE_EPOCH": "1795179791",
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
	digest, image := read("digest"), read("image")
	wantRepo := reg.Host + "/acme/prompt-builder"
	if !strings.HasPrefix(digest, "sha256:") || image != wantRepo+"@"+digest {
		t.Errorf("outputs digest=%q image=%q, want %s@sha256:…", digest, image, wantRepo)
	}
	if !strings.Contains(read("platforms"), `"linux/arm64":"sha256:`) {
		t.Errorf("platform-digests output = %q", read("platforms"))
	}
	tags := strings.Split(read("tags"), "\n")
	if len(tags) != 3 || !strings.HasSuffix(tags[2], ":act") {
		t.Errorf("tags output = %q, want branch, sha and act tags", tags)
	}
	rec, err := release.Read(read("release"))
	if err != nil || rec.Digest != digest {
		t.Errorf("release record %+v (%v), want digest %s", rec, err, digest)
	}
	if strings.Contains(log, password) {
		t.Errorf("the registry password appears in the workflow log")
	}

	ref, _ := name.ParseReference(image)
	pushed, err := remote.Index(ref, auth)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(pushed); err != nil {
		t.Errorf("index pushed from the workflow is invalid: %v", err)
	}
	im, _ := pushed.IndexManifest()
	img, err := pushed.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/app/server" {
		t.Errorf("entrypoint from the workflow = %v", got)
	}
	if _, ok := cf.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ports input did not reach the image: %v", cf.Config.ExposedPorts)
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
