package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/signing"
)

// demoSign signs the image the way a release job would, in key mode with a
// key pair made for the demo: gantry-sign signs the index and each platform
// manifest and attests the SBOMs (sbomFiles, the sbom-files output of
// gantry-sbom), SLSA provenance and the scan result (scanResult, the
// attestation-file output of gantry-scan); then gantry-sign with verify: true
// checks all of it against the public key and prints the checks.
func demoSign(ctx context.Context, w io.Writer, root, bin, work, image, sbomFiles, scanResult string) error {
	step(w, "Sign: generate a key pair (cosign's encrypted format, as `cosign generate-key-pair` writes)")
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return err
	}
	password := hex.EncodeToString(pw)
	priv, pub, err := signing.GenerateKeyPair([]byte(password))
	if err != nil {
		return err
	}
	keyDir := filepath.Join(work, "keys")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return err
	}
	key, pubFile := filepath.Join(keyDir, "cosign.key"), filepath.Join(keyDir, "cosign.pub")
	if err := os.WriteFile(key, priv, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(pubFile, pub, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "  private key %s (password-protected), public key %s\n", key, pubFile)

	base := map[string]string{
		"INPUT_IMAGE":         image,
		"INPUT_RELEASE-FILE":  filepath.Join(work, "gantry-release.json"),
		"GITHUB_EVENT_NAME":   "push",
		"GITHUB_EVENT_PATH":   filepath.Join(root, "testdata", "events", "push-tag.json"),
		"GITHUB_REF":          "refs/tags/v1.2.3",
		"GITHUB_SHA":          "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"GITHUB_REPOSITORY":   "acme/Prompt-Builder",
		"GITHUB_SERVER_URL":   "https://github.com",
		"GITHUB_RUN_ID":       "4242",
		"GITHUB_RUN_ATTEMPT":  "1",
		"GITHUB_WORKFLOW_REF": "acme/Prompt-Builder/.github/workflows/release.yml@refs/tags/v1.2.3",
		"RUNNER_ENVIRONMENT":  "github-hosted",
	}

	step(w, "Sign: gantry-sign signs the index and every platform, attests SBOMs, SLSA provenance and the scan result")
	env := maps.Clone(base)
	env["INPUT_KEY"] = key
	env["INPUT_KEY-PASSWORD"] = password
	env["INPUT_ATTESTATIONS"] = "sbom,provenance,scan"
	env["INPUT_SBOM-FILES"] = sbomFiles
	env["INPUT_SCAN-RESULT"] = scanResult
	env["INPUT_REPORT-FILE"] = filepath.Join(work, "sign-report.json")
	out, err := runStage(ctx, io.Discard, filepath.Join(bin, "gantry-sign"), work, env)
	if err != nil {
		return err
	}
	var signed []signing.SignedDigest
	if err := json.Unmarshal([]byte(out["signed"]), &signed); err != nil {
		return fmt.Errorf("the signed output %q: %w", out["signed"], err)
	}
	for _, s := range signed {
		p := s.Platform
		if p == "" {
			p = "index"
		}
		fmt.Fprintf(w, "  %-12s %s  %s\n", p, s.Digest, strings.Join(s.Types, ", "))
	}

	step(w, "Sign: gantry-sign verify: true, requiring sbom, provenance and scan, against the public key")
	env = maps.Clone(base)
	env["INPUT_VERIFY"] = "true"
	env["INPUT_KEY"] = pubFile
	env["INPUT_REQUIRE"] = "sbom,provenance,scan"
	env["INPUT_REPORT-FILE"] = filepath.Join(work, "verify-report.json")
	out, err = runStage(ctx, io.Discard, filepath.Join(bin, "gantry-sign"), work, env)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(out["report-file"])
	if err != nil {
		return err
	}
	var rep signing.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	for _, c := range rep.Checks {
		res := "pass"
		if !c.Passed {
			res = "FAIL"
		}
		p := c.Platform
		if p == "" {
			p = "index"
		}
		fmt.Fprintf(w, "  %-4s %-12s %-10s %s\n", res, p, c.What, c.Reason)
	}
	fmt.Fprintf(w, "  verified: %s (also checkable with: cosign verify --key %s --insecure-ignore-tlog=true %s)\n", out["verified"], pubFile, image)
	return nil
}
