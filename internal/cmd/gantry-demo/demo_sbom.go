package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// demoSBOM runs gantry-sbom on the image the build pushed, as the SBOM job
// of a release workflow would: every platform of the index, SPDX and
// CycloneDX, read from the registry by digest. It prints each platform's
// package count and files and returns the stage's outputs.
func demoSBOM(ctx context.Context, w io.Writer, root, bin, work, image string) (map[string]string, error) {
	step(w, "SBOM: gantry-sbom catalogs every platform of %s with syft (SPDX 2.3 and CycloneDX JSON)", image)
	host, _, _ := strings.Cut(image, "/")
	var log bytes.Buffer
	out, err := runStage(ctx, &log, filepath.Join(bin, "gantry-sbom"), work, map[string]string{
		"INPUT_IMAGE":               image,
		"INPUT_OUTPUT-DIR":          filepath.Join(work, "sbom"),
		"INPUT_RELEASE-FILE":        filepath.Join(work, "gantry-release.json"),
		"INPUT_INSECURE-REGISTRIES": host,
		"INPUT_TIMEOUT":             "5m",
	})
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, log.String())
	}
	var files map[string][]string
	if err := json.Unmarshal([]byte(out["sbom-files"]), &files); err != nil {
		return nil, fmt.Errorf("gantry-sbom's sbom-files output %q: %w", out["sbom-files"], err)
	}
	var packages map[string]int
	if err := json.Unmarshal([]byte(out["packages"]), &packages); err != nil {
		return nil, fmt.Errorf("gantry-sbom's packages output %q: %w", out["packages"], err)
	}
	fmt.Fprintf(w, "  digest: %s\n", out["digest"])
	platforms := make([]string, 0, len(files))
	for p := range files {
		platforms = append(platforms, p)
	}
	slices.Sort(platforms)
	for _, p := range platforms {
		fmt.Fprintf(w, "  %s: %d packages\n", p, packages[p])
		for _, f := range files[p] {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
	return out, nil
}
