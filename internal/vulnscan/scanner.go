package vulnscan

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Scanner is the seam between the stage and the scanning library: only
// trivy.go imports trivy. A Scanner is opened once per run and scans each
// target in turn.
type Scanner interface {
	// Scan returns every finding of the enabled scanners in one target.
	Scan(ctx context.Context, t Target) ([]Finding, error)
	// Version is the scanner's version, e.g. "0.74.0".
	Version() string
	// Close releases the DB and caches.
	Close() error
}

// ScannerConfig is what a Scanner is opened with.
type ScannerConfig struct {
	// CacheDir holds the vulnerability DB in CacheDir/db (already present
	// and checked: the scanner never downloads).
	CacheDir string
	// Scanners are the enabled scanners (vuln, secret, misconfig, license).
	Scanners []string
}

// Target is one thing to scan: one platform of an image, or a directory.
type Target struct {
	Kind     string `json:"kind"`     // "image", "path" or "history"
	Name     string `json:"name"`     // what the summary and SARIF call it
	Category string `json:"category"` // SARIF automationDetails category, unique per target

	// Image targets.
	Image    v1.Image `json:"-"`
	Ref      string   `json:"ref,omitempty"`      // repo@sha256:… of this platform's manifest
	Index    string   `json:"index,omitempty"`    // repo@sha256:… of the index it came from, if any
	Platform string   `json:"platform,omitempty"` // os/arch[/variant]

	// Path and history targets.
	Dir string `json:"dir,omitempty"`
	// History says what a history target covered, once scanned.
	History *HistoryInfo `json:"history,omitempty"`
}

// Finding kinds.
const (
	KindVulnerability = "vulnerability"
	KindSecret        = "secret"
	KindMisconfig     = "misconfiguration"
	KindLicense       = "license"
)

// Finding is one result of any scanner, normalized for the gate, the
// summary and the reports.
type Finding struct {
	Kind     string `json:"kind"`
	ID       string `json:"id"` // CVE/GHSA ID, secret rule, check ID (KSV017) or license name
	Severity string `json:"severity"`
	Title    string `json:"title,omitempty"`
	// Package, Installed and Fixed are set for vulnerabilities and licenses
	// of packages.
	Package   string `json:"package,omitempty"`
	Installed string `json:"installedVersion,omitempty"`
	Fixed     string `json:"fixedVersion,omitempty"`
	// Source is where in the target it was found as the scanner names it
	// (e.g. "package-lock.json", "alpine 3.20.3" for OS packages).
	Source string `json:"source,omitempty"`
	// File and Line locate it when it is in a file.
	File       string `json:"file,omitempty"`
	Line       int    `json:"line,omitempty"`
	URL        string `json:"url,omitempty"`
	Resolution string `json:"resolution,omitempty"`
	// Commit, Date (the author date) and Author say where in the Git
	// history a history finding was committed; Fingerprint
	// (commit:file:rule:line, gitleaks' own) names it for ignore entries.
	Commit      string `json:"commit,omitempty"`
	Date        string `json:"date,omitempty"`
	Author      string `json:"author,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`

	// Gate is what the gate made of it: "fail" (at a gate severity, not
	// ignored), "ignored" (an ignore entry matched) or "pass" (below the
	// gate severities). The JSON report, the SARIF levels and the summary
	// all show this one value.
	Gate string `json:"gate,omitempty"`

	// Ignored is set when an ignore entry hides it from the gate.
	Ignored *Ignored `json:"ignored,omitempty"`
}

// Ignored says which ignore entry matched a finding.
type Ignored struct {
	Entry   string `json:"entry"`
	Reason  string `json:"reason,omitempty"`
	Expires string `json:"expires,omitempty"`
	File    string `json:"file"`
}

// Where is a short location for people: file:line, else the source; for
// a history finding, the commit too.
func (f Finding) Where() string {
	var w string
	switch {
	case f.File != "" && f.Line > 0:
		w = fmt.Sprintf("%s:%d", f.File, f.Line)
	case f.File != "":
		w = f.File
	default:
		return f.Source
	}
	if f.Commit != "" {
		w += " @ " + shortSHA(f.Commit)
	}
	return w
}

// FakeScanner returns canned findings per target name; tests of the stage's
// own logic (gate, ignore file, reports) use it instead of trivy.
type FakeScanner struct {
	Findings map[string][]Finding // by Target.Name
	Err      error
	Scanned  []Target
}

// Scan returns the canned findings for t.
func (f *FakeScanner) Scan(_ context.Context, t Target) ([]Finding, error) {
	f.Scanned = append(f.Scanned, t)
	if f.Err != nil {
		return nil, f.Err
	}
	return append([]Finding(nil), f.Findings[t.Name]...), nil
}

// Version is a fixed fake version.
func (f *FakeScanner) Version() string { return "0.0.0-fake" }

// Close does nothing.
func (f *FakeScanner) Close() error { return nil }
