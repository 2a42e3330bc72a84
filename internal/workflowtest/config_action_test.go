package workflowtest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/release"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// TestActionReadsGantryYAML runs testdata/workflows/config-action.yml with
// act: the step gives only the registry password and formats; the image,
// the registry's username and its plain HTTP, the output directory and the
// release record come from the gantry.yaml at the workspace's root, because
// GitHub hands the inputs the step did not set to the action empty.
func TestActionReadsGantryYAML(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	const password = "act-config-password"
	reg := privateRegistry(t, password)
	idx, err := ocitest.Base([]string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := idx.Digest()
	image := pushIndex(t, reg, password, "acme/prompt-builder", "", idx)
	result := t.TempDir()
	recPath := filepath.Join(result, "record.json")
	if _, err := release.Write(recPath, release.Record{Image: image, Digest: digest.String()}); err != nil {
		t.Fatal(err)
	}
	gantryYAML := strings.Join([]string{
		"sbom:",
		"  image: " + image,
		"  registry-username: ci-bot",
		"  insecure-registries: [" + reg.Host + "]",
		"  output-dir: " + filepath.Join(result, "from-config"),
		"  formats: cyclonedx-json",
		"  release-file: " + recPath,
	}, "\n")

	log, err := act.Run(t.Context(), "push", "testdata/workflows/config-action.yml", map[string]string{
		"GANTRY_YAML":       gantryYAML,
		"REGISTRY_PASSWORD": password,
		"RESULT":            result,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	b, err := os.ReadFile(filepath.Join(result, "sbom-files"))
	if err != nil {
		t.Fatalf("no sbom-files output: %v\n%s", err, log)
	}
	var files map[string][]string
	if err := json.Unmarshal(b, &files); err != nil {
		t.Fatal(err)
	}
	// output-dir and the image from the file, formats from the step.
	want := []string{filepath.Join(result, "from-config", "linux-arm64.spdx.json")}
	if got := files["linux/arm64"]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("sbom-files[linux/arm64] = %v, want %v (output-dir from gantry.yaml, formats from the step)", got, want)
	}
	if d, _ := os.ReadFile(filepath.Join(result, "digest")); strings.TrimSpace(string(d)) != image {
		t.Errorf("digest output %q, want the image gantry.yaml names", d)
	}
	if rec, err := release.Read(recPath); err != nil || len(rec.Stages["sbom"]) == 0 {
		t.Errorf("the release record gantry.yaml names has no sbom section (%v)", err)
	}
	if !strings.Contains(log, "Inputs the step leaves empty come from") || !strings.Contains(log, "gantry.yaml") {
		t.Errorf("the log does not say where the inputs came from:\n%s", log)
	}
	if strings.Contains(log, password) {
		t.Error("the registry password is in the log")
	}
}
