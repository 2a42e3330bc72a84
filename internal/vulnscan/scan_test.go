package vulnscan_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/release"
	"github.com/gantry-ci/gantry/internal/vulnscan"
)

// copyRepo copies the crafted repository so a test can add files to it.
func copyRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root(t), "testdata", "scan", "repo"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

const ignoreYAML = `ignore:
  - id: GPL-2.0-only
    reason: busybox ships unmodified; legal approved (LEGAL-42)
    expires: 2027-06-30
  - id: CVE-2024-6119
    reason: waiting for the base image rebuild
    expires: 2026-11-01
  - rule: KSV-0017
    paths: ["charts/*.yaml"]
    reason: only the chart's debug pod is privileged
`

// TestScanImageAndPath scans the crafted two-platform image from a real
// registry (by tag, resolved once) and the crafted repository with the
// fixture DB and trivy, and checks every finding a user would look for, the
// ignore file (live, expired, path-scoped, .trivyignore), the gate, the
// outputs, the release record, and the SARIF/JSON/attestation files.
func TestScanImageAndPath(t *testing.T) {
	reg := startRegistry(t)
	ref := pushFixtureImage(t, reg)
	repo := copyRepo(t)
	if err := os.WriteFile(filepath.Join(repo, ".trivyignore"), []byte("# from trivy-action days\nKSV-0014\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := baseInputs(t, fixtureCache(t))
	in.Image, in.Path = ref, repo
	in.IgnoreFile = filepath.Join(t.TempDir(), "scan-ignore.yaml")
	if err := os.WriteFile(in.IgnoreFile, []byte(ignoreYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	head, err := remote.Head(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := release.Write(in.ReleaseFile, release.Record{Image: ref, Digest: head.Digest.String()}); err != nil {
		t.Fatal(err)
	}
	log := &recorder{}
	in.Log = log

	out, err := vulnscan.Run(t.Context(), in)
	if !errors.Is(err, vulnscan.ErrGate) {
		t.Fatalf("Run = %v, want the gate to fail\n%s", err, log)
	}
	rep := out.Report
	if len(rep.Targets) != 3 {
		t.Fatalf("targets = %d, want linux/amd64, linux/arm64 and the path", len(rep.Targets))
	}
	if !strings.Contains(log.String(), "is a tag: resolved once to") {
		t.Errorf("the tag was not resolved once with a warning:\n%s", log)
	}

	// The image: every platform, OS packages from the Alpine DB.
	for _, plat := range []string{"linux/amd64", "linux/arm64"} {
		fs := findingsOf(rep, "("+plat+")")
		if len(fs) == 0 {
			t.Fatalf("no findings for %s", plat)
		}
		v, ok := find(fs, vulnscan.KindVulnerability, "CVE-2024-5535")
		if !ok || v.Package != "libcrypto3" || v.Installed != "3.3.1-r0" || v.Fixed != "3.3.1-r1" || v.Severity != "CRITICAL" {
			t.Errorf("%s: CVE-2024-5535 = %+v (found %v), want CRITICAL libcrypto3 3.3.1-r0 fixed in 3.3.1-r1", plat, v, ok)
		}
		if v, ok := find(fs, vulnscan.KindVulnerability, "CVE-2023-42366"); !ok || v.Fixed != "" || v.Package != "busybox" {
			t.Errorf("%s: unfixed busybox CVE-2023-42366 = %+v (found %v)", plat, v, ok)
		}
		got := ids(fs, vulnscan.KindVulnerability)
		for _, absent := range []string{"CVE-2024-4603", "CVE-2025-26519", "CVE-2021-23337"} {
			if got[absent] {
				t.Errorf("%s: %s reported, but the installed version is not affected (or it is not in the image)", plat, absent)
			}
		}
		gpl, ok := find(fs, vulnscan.KindLicense, "GPL-2.0-only")
		if !ok || gpl.Package != "busybox" || gpl.Ignored == nil || !strings.Contains(gpl.Ignored.Reason, "LEGAL-42") {
			t.Errorf("%s: GPL-2.0-only license of busybox = %+v (found %v), want it ignored with the file's reason", plat, gpl, ok)
		}
		if exp, _ := find(fs, vulnscan.KindVulnerability, "CVE-2024-6119"); exp.Ignored != nil {
			t.Errorf("%s: CVE-2024-6119 is ignored by an entry that expired on 2026-11-01", plat)
		}
	}

	// The repository: lockfile, secret, misconfiguration.
	fs := findingsOf(rep, "path ")
	if v, ok := find(fs, vulnscan.KindVulnerability, "CVE-2021-23337"); !ok || v.Package != "lodash" || v.Installed != "4.17.20" || v.Fixed != "4.17.21" || v.File != "package-lock.json" || v.Severity != "HIGH" {
		t.Errorf("lodash CVE-2021-23337 = %+v (found %v)", v, ok)
	}
	if got := ids(fs, vulnscan.KindVulnerability); got["CVE-2019-10744"] || got["CVE-2024-29041"] {
		t.Errorf("vulnerabilities of versions not installed reported: %v", got)
	}
	if s, ok := find(fs, vulnscan.KindSecret, "aws-access-key-id"); !ok || s.File != "config/deploy.env" || s.Line != 4 || s.Severity != "CRITICAL" {
		t.Errorf("planted AWS key = %+v (found %v), want config/deploy.env:4 CRITICAL", s, ok)
	}
	if m, ok := find(fs, vulnscan.KindMisconfig, "KSV-0017"); !ok || m.File != "deploy/worker.yaml" || m.Severity != "HIGH" || m.Ignored != nil {
		t.Errorf("privileged container KSV-0017 = %+v (found %v), want HIGH in deploy/worker.yaml, not ignored (the entry is scoped to charts/)", m, ok)
	}
	if m, ok := find(fs, vulnscan.KindMisconfig, "KSV-0014"); !ok || m.Ignored == nil || !strings.HasSuffix(m.Ignored.File, ".trivyignore") {
		t.Errorf("KSV-0014 = %+v (found %v), want it ignored by .trivyignore", m, ok)
	}

	// The gate: exactly the live findings at CRITICAL/HIGH.
	var failed []string
	for _, f := range rep.Gate.Failed {
		failed = append(failed, f.ID)
		if f.Ignored != nil || (f.Severity != "CRITICAL" && f.Severity != "HIGH") {
			t.Errorf("gate failed on %+v", f)
		}
	}
	for _, want := range []string{"CVE-2024-5535", "CVE-2024-6119", "CVE-2021-23337", "aws-access-key-id", "KSV-0017"} {
		if !slices.Contains(failed, want) {
			t.Errorf("gate failures %v lack %s", failed, want)
		}
	}
	for _, not := range []string{"GPL-2.0-only", "KSV-0014", "CVE-2023-42366", "CVE-2020-28500"} {
		if slices.Contains(failed, not) {
			t.Errorf("gate failed on %s (ignored or below the gate)", not)
		}
	}
	if !strings.Contains(err.Error(), "CVE-2024-5535") {
		t.Errorf("gate error does not name the findings: %v", err)
	}
	if len(rep.Expired) != 1 || rep.Expired[0].Entry.Key() != "CVE-2024-6119" || rep.Expired[0].Findings != 2 {
		t.Errorf("expired entries = %+v, want CVE-2024-6119 matching both platforms", rep.Expired)
	}
	if !strings.Contains(log.String(), "CVE-2024-6119") || !strings.Contains(log.String(), "expired on 2026-11-01") {
		t.Errorf("the log does not say the CVE-2024-6119 entry expired:\n%s", log)
	}

	// Outputs and the summary.
	if out.Verdict != "fail" || out.Critical != rep.Counts.Critical || out.Critical < 3 || out.High < 4 {
		t.Errorf("outputs verdict=%s critical=%d high=%d (counts %+v)", out.Verdict, out.Critical, out.High, rep.Counts)
	}
	sum := vulnscan.Summary(out)
	for _, want := range []string{"failed the gate", "CVE-2024-5535", "3.3.1-r1", "aws-access-key-id", "config/deploy.env:4", "Expired ignore entries", "| Target | Critical | High |", "(linux/arm64)"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}

	// SARIF: valid, one run per target, distinct categories.
	validateSARIF(t, out.SARIFFile)
	checkOneSeverityRule(t, out)
	var sarif struct {
		Runs []struct {
			AutomationDetails struct{ ID string } `json:"automationDetails"`
			Results           []struct {
				RuleID       string `json:"ruleId"`
				Suppressions []any  `json:"suppressions"`
			} `json:"results"`
		} `json:"runs"`
	}
	readJSON(t, out.SARIFFile, &sarif)
	cats := map[string]bool{}
	for _, r := range sarif.Runs {
		cats[r.AutomationDetails.ID] = true
	}
	if len(sarif.Runs) != 3 || len(cats) != 3 {
		t.Errorf("SARIF has %d runs with categories %v, want 3 distinct", len(sarif.Runs), cats)
	}

	// JSON report and attestation predicate.
	var js vulnscan.Report
	readJSON(t, out.JSONFile, &js)
	if js.Schema != vulnscan.ReportSchema || js.Gate.Verdict != "fail" || len(js.Targets) != 3 || js.DB == nil {
		t.Errorf("JSON report: schema %q verdict %q targets %d db %v", js.Schema, js.Gate.Verdict, len(js.Targets), js.DB)
	}
	var pred map[string]any
	readJSON(t, out.AttestationFile, &pred)
	scanner, _ := pred["scanner"].(map[string]any)
	db, _ := scanner["db"].(map[string]any)
	meta, _ := pred["metadata"].(map[string]any)
	if scanner["uri"] != "pkg:golang/github.com/aquasecurity/trivy@v0.74.0" || scanner["version"] != "0.74.0" || db["uri"] == "" || db["version"] == "" || scanner["result"] == nil {
		t.Errorf("predicate scanner = %v", scanner)
	}
	if meta["scanStartedOn"] == nil || meta["scanFinishedOn"] == nil || pred["invocation"] == nil || len(pred) != 3 {
		t.Errorf("predicate = keys %v, want exactly invocation, scanner, metadata", keys(pred))
	}

	// The release record gained a scan section.
	rec, err := release.Read(in.ReleaseFile)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(rec.Stages["scan"]); !strings.Contains(strings.Join(strings.Fields(s), ""), `"verdict":"fail"`) || !strings.Contains(s, "CVE-2024-5535") {
		t.Errorf("release record scan section = %s", s)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestGatePassesWhenOnlyIgnoredOrBelow scans the repository with the gate
// at CRITICAL, the secret ignored, and ignore-unfixed: it passes, and the
// outputs still count what is below the gate.
func TestGatePassesWhenOnlyIgnoredOrBelow(t *testing.T) {
	in := baseInputs(t, fixtureCache(t))
	in.Path = copyRepo(t)
	in.Severity = []string{"CRITICAL"}
	in.Scanners = []string{"vuln", "secret"}
	in.IgnoreUnfixed = true
	in.IgnoreFile = filepath.Join(t.TempDir(), "ignore.yaml")
	os.WriteFile(in.IgnoreFile, []byte("ignore:\n  - rule: aws-access-key-id\n    paths: [config/]\n    reason: a made-up key planted for tests\n"), 0o644)
	out, err := vulnscan.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("Run = %v, want a pass", err)
	}
	if out.Verdict != "pass" || out.Critical != 0 || out.High != 1 || out.Medium != 1 {
		t.Errorf("verdict %s critical %d high %d medium %d, want pass 0/1/1", out.Verdict, out.Critical, out.High, out.Medium)
	}
	if sum := vulnscan.Summary(out); !strings.Contains(sum, "Gantry scan: pass") || !strings.Contains(sum, "Ignored (1)") {
		t.Errorf("summary:\n%s", sum)
	}
	// The HIGH lodash finding is below this gate: the SARIF upload must not
	// show it as an error while the gate passes (trivy-action #309).
	checkOneSeverityRule(t, out)
	var sarif struct {
		Runs []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	readJSON(t, out.SARIFFile, &sarif)
	levels := map[string]string{}
	for _, r := range sarif.Runs {
		for _, res := range r.Results {
			levels[res.RuleID] = res.Level
		}
	}
	if levels["CVE-2021-23337"] != "warning" || levels["aws-access-key-id"] != "note" {
		t.Errorf("SARIF levels %v: want the HIGH CVE below the gate a warning, the ignored secret a note", levels)
	}
}

// TestNodeLockfiles: the dependency audit of Node lockfiles (npm's
// package-lock.json v3 of testdata/node-app, yarn.lock, pnpm-lock.yaml)
// reports each vulnerable package, however deep, with its installed and
// fixed versions and its lockfile.
func TestNodeLockfiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(root(t), "testdata", "node-app", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	yarn := filepath.Join(dir, "web")
	pnpm := filepath.Join(dir, "worker")
	os.MkdirAll(yarn, 0o755)
	os.MkdirAll(pnpm, 0o755)
	os.WriteFile(filepath.Join(yarn, "package.json"), []byte(`{"name":"web","version":"1.0.0","dependencies":{"lodash":"^4.17.20"}}`), 0o644)
	os.WriteFile(filepath.Join(yarn, "yarn.lock"), []byte(`# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


lodash@^4.17.20:
  version "4.17.20"
  resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.20.tgz#b44a9b6297bcb698f1c51a3545a2b3b368d59c52"
  integrity sha512-PlhdFcillOINfeV7Ni6oF1TAEayyZBoZ8bcshTHqOYJYlrqzRK5hagpagky5o4HfCzzd1TRkXPMFq6cKk9rGmA==
`), 0o644)
	os.WriteFile(filepath.Join(pnpm, "package.json"), []byte(`{"name":"worker","version":"1.0.0","dependencies":{"lodash":"4.17.20"}}`), 0o644)
	os.WriteFile(filepath.Join(pnpm, "pnpm-lock.yaml"), []byte(`lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .:
    dependencies:
      lodash:
        specifier: 4.17.20
        version: 4.17.20

packages:

  lodash@4.17.20:
    resolution: {integrity: sha512-PlhdFcillOINfeV7Ni6oF1TAEayyZBoZ8bcshTHqOYJYlrqzRK5hagpagky5o4HfCzzd1TRkXPMFq6cKk9rGmA==}

snapshots:

  lodash@4.17.20: {}
`), 0o644)

	in := baseInputs(t, fixtureCache(t))
	in.Path = dir
	in.Scanners = []string{"vuln"}
	out, err := vulnscan.Run(t.Context(), in)
	if !errors.Is(err, vulnscan.ErrGate) {
		t.Fatalf("Run = %v, want the gate to fail on lodash's HIGH CVE", err)
	}
	fs := findingsOf(out.Report, "path ")
	type key struct{ id, file string }
	got := map[key]vulnscan.Finding{}
	for _, f := range fs {
		got[key{f.ID, f.File}] = f
	}
	for _, w := range []struct{ id, file, pkg, installed, fixed, sev string }{
		{"CVE-2099-10001", "package-lock.json", "qs", "6.17.1", "6.17.2", "MEDIUM"},
		{"CVE-2099-10002", "package-lock.json", "tdigest", "0.1.3", "0.1.4", "LOW"},
		{"CVE-2021-23337", "web/yarn.lock", "lodash", "4.17.20", "4.17.21", "HIGH"},
		{"CVE-2021-23337", "worker/pnpm-lock.yaml", "lodash", "4.17.20", "4.17.21", "HIGH"},
	} {
		f, ok := got[key{w.id, w.file}]
		if !ok || f.Package != w.pkg || f.Installed != w.installed || f.Fixed != w.fixed || f.Severity != w.sev {
			t.Errorf("%s in %s = %+v (found %v), want %s %s %s fixed in %s", w.id, w.file, f, ok, w.sev, w.pkg, w.installed, w.fixed)
		}
	}
	if sum := vulnscan.Summary(out); !strings.Contains(sum, "| qs | 6.17.1 | 6.17.2 |") {
		t.Errorf("summary does not list qs with its fixed version:\n%s", sum)
	}
}
