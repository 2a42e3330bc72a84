package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/internal/vulnscan"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

// demoScan runs gantry-scan as the scan job would, fully offline: a small
// vulnerability DB is built from testdata/vulndb into a cache dir (what
// actions/cache would restore), then the image is scanned from the demo
// registry by digest, every platform, and the repository's Kubernetes
// manifests (testdata/k8s) for misconfigurations, with the gate at
// CRITICAL,HIGH. A failing gate is part of the demo, not a demo failure:
// it is reported and the outputs are returned all the same.
func demoScan(ctx context.Context, w io.Writer, root, bin, work, image string) (map[string]string, error) {
	step(w, "Scan: build the vulnerability DB from testdata/vulndb into a cache dir (offline, as actions/cache would restore it)")
	cache := filepath.Join(work, "scan-cache")
	if err := scantest.Build(cache, filepath.Join(root, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		return nil, fmt.Errorf("building the demo vulnerability DB: %w", err)
	}
	fmt.Fprintf(w, "  %s\n", filepath.Join(cache, "db", "trivy.db"))

	step(w, "Scan: gantry-scan on %s (every platform) and testdata/k8s (misconfig), gate CRITICAL,HIGH", image)
	out := filepath.Join(work, "scan")
	env := map[string]string{
		"INPUT_IMAGE":            image,
		"INPUT_PATH":             filepath.Join(root, "testdata", "k8s"),
		"INPUT_SCANNERS":         "vuln,secret,misconfig,license",
		"INPUT_SEVERITY":         "CRITICAL,HIGH",
		"INPUT_OFFLINE":          "true",
		"INPUT_CACHE-DIR":        cache,
		"INPUT_IGNORE-FILE":      filepath.Join(root, "testdata", "demo", "scan-ignore.yaml"),
		"INPUT_SARIF-FILE":       filepath.Join(out, "gantry-scan.sarif"),
		"INPUT_JSON-FILE":        filepath.Join(out, "gantry-scan.json"),
		"INPUT_ATTESTATION-FILE": filepath.Join(out, "gantry-scan.vuln.json"),
		"INPUT_RELEASE-FILE":     filepath.Join(work, "gantry-release.json"),
		"GITHUB_REPOSITORY":      "acme/Prompt-Builder",
		"GITHUB_SERVER_URL":      "https://github.com",
		"GITHUB_RUN_ID":          "4242",
	}
	os.RemoveAll(out)
	outputs, err := runStage(ctx, w, filepath.Join(bin, "gantry-scan"), work, env)
	if err != nil {
		// The gate failing exits non-zero; the report says whether that is
		// what happened, and carries the same values as the outputs.
		var rep vulnscan.Report
		b, rerr := os.ReadFile(env["INPUT_JSON-FILE"])
		if rerr != nil || json.Unmarshal(b, &rep) != nil || rep.Gate.Verdict != "fail" {
			return nil, err
		}
		outputs = map[string]string{
			"verdict":          rep.Gate.Verdict,
			"critical":         strconv.Itoa(rep.Counts.Critical),
			"high":             strconv.Itoa(rep.Counts.High),
			"medium":           strconv.Itoa(rep.Counts.Medium),
			"low":              strconv.Itoa(rep.Counts.Low),
			"sarif-file":       env["INPUT_SARIF-FILE"],
			"json-file":        env["INPUT_JSON-FILE"],
			"attestation-file": env["INPUT_ATTESTATION-FILE"],
		}
		fmt.Fprintf(w, "\n  the gate failed on %d finding(s), as intended for the demo: in CI this fails the job; the demo goes on\n", len(rep.Gate.Failed))
	}
	step(w, "Scan: verdict %s (critical %s, high %s, medium %s, low %s)", outputs["verdict"], outputs["critical"], outputs["high"], outputs["medium"], outputs["low"])
	for _, k := range []string{"sarif-file", "json-file", "attestation-file"} {
		fmt.Fprintf(w, "  %s: %s\n", k, outputs[k])
	}
	return outputs, nil
}
