package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/sbom"
)

const apkDB = "P:zlib\nV:1.3.1-r2\nA:x86_64\nL:Zlib\no:zlib\nT:A compression/decompression Library\n\n"

// TestBinaryRunsFromActionEnvironment runs the stage as the composite action
// does: inputs as INPUT_* (hyphens kept), a registry that demands the
// credentials, a tag as the image, outputs and summary to runner files.
func TestBinaryRunsFromActionEnvironment(t *testing.T) {
	const user, secret = "ci-bot", "s3cr3t-sbom-token"
	reg, err := ocitest.StartRegistry(ocitest.BasicAuth(user, secret))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// An apk database on amd64 only, so the platforms differ.
	idx = addLayer(t, idx, "amd64", map[string]string{"lib/apk/db/installed": apkDB})
	tag, _ := name.NewTag(reg.Host + "/acme/app:main")
	if err := remote.WriteIndex(tag, idx, remote.WithAuth(&authn.Basic{Username: user, Password: secret})); err != nil {
		t.Fatal(err)
	}
	digest, _ := idx.Digest()

	work := t.TempDir()
	outFile, summaryFile := filepath.Join(work, "github-output"), filepath.Join(work, "summary.md")
	for _, f := range []string{outFile, summaryFile} {
		os.WriteFile(f, nil, 0o644)
	}
	env := map[string]string{
		"INPUT_IMAGE":             tag.String(),
		"INPUT_OUTPUT-DIR":        filepath.Join(work, "sbom"),
		"INPUT_REGISTRY-USERNAME": user,
		"INPUT_REGISTRY-PASSWORD": secret,
		"INPUT_RELEASE-FILE":      filepath.Join(work, "gantry-release.json"),
		"INPUT_TIMEOUT":           "5m",
		"GITHUB_OUTPUT":           outFile,
		"GITHUB_STEP_SUMMARY":     summaryFile,
	}
	var log bytes.Buffer
	if err := sbom.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log)); err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, log.String())
	}
	logText := log.String()
	actiontest.MaskedFirst(t, logText, secret)
	if !strings.Contains(logText, "::warning::") || !strings.Contains(logText, "is a tag") {
		t.Errorf("resolving the tag was not warned about:\n%s", logText)
	}

	outs := actiontest.Outputs(t, outFile)
	if want := reg.Host + "/acme/app@" + digest.String(); outs["digest"] != want {
		t.Errorf("digest output = %q, want %q", outs["digest"], want)
	}
	var files map[string][]string
	if err := json.Unmarshal([]byte(outs["sbom-files"]), &files); err != nil {
		t.Fatalf("sbom-files output %q is not a JSON object: %v", outs["sbom-files"], err)
	}
	want := filepath.Join(work, "sbom", "linux-arm64.cyclonedx.json")
	if len(files) != 2 || len(files["linux/arm64"]) != 2 || files["linux/arm64"][1] != want {
		t.Errorf("sbom-files = %v, want two platforms with %s among them", files, want)
	}
	for _, paths := range files {
		for _, p := range paths {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("sbom-files names %s: %v", p, err)
			}
		}
	}
	var packages map[string]int
	if err := json.Unmarshal([]byte(outs["packages"]), &packages); err != nil {
		t.Fatalf("packages output %q is not a JSON object: %v", outs["packages"], err)
	}
	if packages["linux/amd64"] != 1 || packages["linux/arm64"] != 0 {
		t.Errorf("packages = %v, want zlib on amd64 and nothing on arm64", packages)
	}
	summary, _ := os.ReadFile(summaryFile)
	if !strings.Contains(string(summary), "| linux/amd64 | `sha256:") || !strings.Contains(string(summary), "apk 1") || strings.Contains(string(summary), secret) {
		t.Errorf("job summary lacks the platform table or leaks the secret:\n%s", summary)
	}
}

// TestBinaryCatalogsPaths runs the stage with the paths input only: a
// directory holding a go.mod, named by the entry. No image means no digest
// and no release record, and the summary shows the path.
func TestBinaryCatalogsPaths(t *testing.T) {
	work := t.TempDir()
	src := filepath.Join(work, "src")
	os.Mkdir(src, 0o755)
	gomod := "module example.com/tool\n\ngo 1.26\n\nrequire github.com/sethvargo/go-githubactions v1.3.0\n"
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	outFile, summaryFile := filepath.Join(work, "github-output"), filepath.Join(work, "summary.md")
	for _, f := range []string{outFile, summaryFile} {
		os.WriteFile(f, nil, 0o644)
	}
	env := map[string]string{
		"INPUT_PATHS":         "tool=" + src,
		"INPUT_OUTPUT-DIR":    filepath.Join(work, "sbom"),
		"INPUT_RELEASE-FILE":  filepath.Join(work, "gantry-release.json"),
		"GITHUB_OUTPUT":       outFile,
		"GITHUB_STEP_SUMMARY": summaryFile,
	}
	var log bytes.Buffer
	if err := sbom.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log)); err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, log.String())
	}
	outs := actiontest.Outputs(t, outFile)
	want := `{"tool":["` + filepath.Join(work, "sbom", "tool.spdx.json") + `","` + filepath.Join(work, "sbom", "tool.cyclonedx.json") + `"]}`
	if outs["sbom-files"] != want || outs["packages"] != `{"tool":1}` || outs["digest"] != "" {
		t.Errorf("outputs sbom-files %s, packages %s, digest %q: want %s, {\"tool\":1} and no digest", outs["sbom-files"], outs["packages"], outs["digest"], want)
	}
	if _, err := os.Stat(filepath.Join(work, "gantry-release.json")); !os.IsNotExist(err) {
		t.Errorf("a release record was written without an image: %v", err)
	}
	summary, _ := os.ReadFile(summaryFile)
	if !strings.Contains(string(summary), "| tool | `"+src+"` (directory) | 1 | go-module 1 |") || strings.Contains(string(summary), "**Image**") {
		t.Errorf("job summary lacks the path's row or has an image section:\n%s", summary)
	}
}

func TestBinaryReportsBadInputs(t *testing.T) {
	env := map[string]string{"INPUT_FORMATS": "spdx-json,syft-table", "INPUT_TIMEOUT": "soon"}
	var log bytes.Buffer
	err := sbom.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log))
	if err == nil {
		t.Fatal("run succeeded without an image or paths")
	}
	// One run reports every bad input: decoding's and Validate's.
	for _, want := range []string{`inputs "image" and "paths" are both empty`, `input "timeout": "soon" is not a duration`, `"syft-table" is not a supported format`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	missing := filepath.Join(t.TempDir(), "dist", "gantry-linux-arm64")
	env = map[string]string{"INPUT_PATHS": missing, "INPUT_OUTPUT-DIR": filepath.Join(t.TempDir(), "sbom")}
	err = sbom.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log))
	if err == nil || !strings.Contains(err.Error(), `input "paths": `+missing+" does not exist") {
		t.Errorf("error = %v, want the paths input and the missing path named", err)
	}

	env = map[string]string{"INPUT_IMAGE": "127.0.0.1:1/acme/app@sha256:" + strings.Repeat("a", 64), "INPUT_FORMATS": "spdx-json,syft-table"}
	err = sbom.Stage(t.Context(), ghaction.New(func(k string) string { return env[k] }, &log))
	if err == nil || !strings.Contains(err.Error(), `input "formats": "syft-table" is not a supported format: use one or more of spdx-json, cyclonedx-json`) {
		t.Errorf("error = %v, want the formats input named with the valid formats", err)
	}
}

// addLayer appends a layer of files to one architecture's image of idx.
func addLayer(t *testing.T, idx v1.ImageIndex, arch string, files map[string]string) v1.ImageIndex {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		tw.WriteHeader(&tar.Header{Name: filepath.Dir(n) + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(c))})
		io.WriteString(tw, c)
	}
	tw.Close()
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform == nil || d.Platform.Architecture != arch {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.RemoveManifests(idx, func(x v1.Descriptor) bool { return x.Digest == d.Digest })
		return mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: d.Platform}})
	}
	t.Fatalf("no %s image in the index", arch)
	return nil
}
