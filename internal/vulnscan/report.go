package vulnscan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/runctx"
)

// ReportSchema identifies Gantry's JSON scan report.
const ReportSchema = "gantry.dev/scan/v1"

// Report is one run's result: the JSON report as written, and what the
// summary, SARIF and attestation are made from.
type Report struct {
	Schema  string `json:"schema"`
	Image   string `json:"image,omitempty"` // repo@sha256:… of the scanned image (index)
	Scanner Tool   `json:"scanner"`
	// HistoryScanner is the history scan's scanner (gitleaks), when on.
	HistoryScanner *Tool     `json:"historyScanner,omitempty"`
	DB             *DBInfo   `json:"db,omitempty"`
	Started        time.Time `json:"startedOn"`
	Finished       time.Time `json:"finishedOn"`
	Scanners       []string  `json:"scanners"`
	Gate           Gate      `json:"gate"`
	// Counts are the findings not ignored, by severity, over all targets.
	Counts  Counts          `json:"counts"`
	Targets []TargetResult  `json:"targets"`
	Expired []ExpiredIgnore `json:"expiredIgnores,omitempty"`
	// Unfixed is how many unfixed vulnerabilities ignore-unfixed dropped.
	Unfixed int `json:"droppedUnfixed,omitempty"`
}

// Tool names the scanner.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	URI     string `json:"uri"`
}

// Gate is the severity gate's decision.
type Gate struct {
	Severities []string `json:"severities"`
	Verdict    string   `json:"verdict"`
	// Failed are the findings that failed the gate.
	Failed []GateFinding `json:"failed,omitempty"`
}

// GateFinding is a finding that failed the gate, with its target.
type GateFinding struct {
	Target string `json:"target"`
	Finding
}

// TargetResult is one scanned target and its findings.
type TargetResult struct {
	Target
	Counts   Counts    `json:"counts"`
	Findings []Finding `json:"findings"`
}

// Counts are findings by severity.
type Counts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Unknown  int `json:"unknown"`
	Ignored  int `json:"ignored"`
}

func (c *Counts) add(f Finding) {
	if f.Ignored != nil {
		c.Ignored++
		return
	}
	switch f.Severity {
	case "CRITICAL":
		c.Critical++
	case "HIGH":
		c.High++
	case "MEDIUM":
		c.Medium++
	case "LOW":
		c.Low++
	default:
		c.Unknown++
	}
}

func (c *Counts) plus(o Counts) {
	c.Critical += o.Critical
	c.High += o.High
	c.Medium += o.Medium
	c.Low += o.Low
	c.Unknown += o.Unknown
	c.Ignored += o.Ignored
}

func severityRank(s string) int {
	if i := slices.Index(severities, s); i >= 0 {
		return i
	}
	return len(severities)
}

// writeJSON writes v as indented JSON and returns the absolute path.
func writeJSON(file string, v any) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(abs, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", abs, err)
	}
	return abs, nil
}

var categoryUnsafe = regexp.MustCompile(`[^a-z0-9._-]+`)

// category makes a SARIF category from parts: lower case, one segment.
func category(parts ...string) string {
	s := strings.ToLower(strings.Join(parts, "-"))
	return strings.Trim(categoryUnsafe.ReplaceAllString(s, "-"), "-")
}

// --- SARIF 2.1.0 ---

const (
	sarifSchema  = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	sarifVersion = "2.1.0"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool              sarifTool              `json:"tool"`
	AutomationDetails sarifAutomationDetails `json:"automationDetails"`
	Results           []sarifResult          `json:"results"`
	Properties        map[string]any         `json:"properties,omitempty"`
}

type sarifAutomationDetails struct {
	ID string `json:"id"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	Help                 sarifText      `json:"help"`
	HelpURI              string         `json:"helpUri,omitempty"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Suppressions        []sarifSuppressed `json:"suppressions,omitempty"`
	Properties          map[string]any    `json:"properties"`
}

type sarifSuppressed struct {
	Kind          string `json:"kind"`
	Justification string `json:"justification,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

// sarifLevel is a result's level, from the gate's decision (Finding.Gate)
// so that code scanning and the gate never disagree: "error" exactly for
// the findings that failed the gate; below the gate "warning" (MEDIUM and
// up) or "note"; ignored findings "note", with their suppression.
func sarifLevel(f Finding) string {
	switch {
	case f.Gate == "fail":
		return "error"
	case f.Gate == "ignored":
		return "note"
	case severityRank(f.Severity) <= severityRank("MEDIUM"):
		return "warning"
	}
	return "note"
}

// ruleLevel is a rule's default level: the gate decides per result, so
// the rule says what its severity would usually mean.
func ruleLevel(sev string) string {
	switch sev {
	case "CRITICAL", "HIGH":
		return "error"
	case "MEDIUM":
		return "warning"
	}
	return "note"
}

// fingerprintKey names Gantry's partial fingerprint in SARIF results.
const fingerprintKey = "gantryFinding/v1"

// findingFingerprint identifies a finding across runs for code scanning's
// deduplication: what it is and where, never when it was found. A history
// finding's is its gitleaks fingerprint (commit:file:rule:line), hashed.
func findingFingerprint(t Target, f Finding) string {
	key := f.Fingerprint
	if key == "" {
		// A package's vulnerability or license stays the same finding when
		// lines move in its lockfile; a secret or a misconfiguration is one
		// per place.
		line := ""
		if f.Kind == KindSecret || f.Kind == KindMisconfig {
			line = fmt.Sprint(f.Line)
		}
		key = strings.Join([]string{f.Kind, f.ID, f.Package, f.Installed, f.File, line, f.Source}, "\x00")
	}
	sum := sha256.Sum256([]byte(t.Category + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

// securitySeverity is GitHub code scanning's numeric severity.
func securitySeverity(sev string) string {
	switch sev {
	case "CRITICAL":
		return "9.5"
	case "HIGH":
		return "8.0"
	case "MEDIUM":
		return "5.5"
	case "LOW":
		return "2.0"
	}
	return "0.0"
}

// sarifReport makes one run per target, each with its own
// automationDetails.id, so code scanning keeps the targets' alerts apart.
func sarifReport(rep Report) sarifLog {
	log := sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{}}
	for _, t := range rep.Targets {
		run := sarifRun{
			Tool: sarifTool{Driver: sarifDriver{
				Name: "gantry-scan", Version: rep.Scanner.Version, InformationURI: "https://github.com/gantry-ci/gantry/blob/main/docs/scan.md",
				Rules: []sarifRule{},
			}},
			AutomationDetails: sarifAutomationDetails{ID: t.Category + "/"},
			Results:           []sarifResult{},
			Properties:        map[string]any{"target": t.Name, "kind": t.Kind},
		}
		index := map[string]int{}
		for _, f := range t.Findings {
			ruleID := f.ID
			i, ok := index[ruleID]
			if !ok {
				i = len(run.Tool.Driver.Rules)
				index[ruleID] = i
				help := f.Title
				if f.Resolution != "" {
					help += "\nResolution: " + f.Resolution
				}
				if f.URL != "" {
					help += "\n" + f.URL
				}
				run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
					ID: ruleID, Name: sarifRuleName(f), ShortDescription: sarifText{Text: nonEmpty(f.Title, f.ID)},
					Help: sarifText{Text: nonEmpty(help, f.ID)}, HelpURI: f.URL,
					DefaultConfiguration: sarifConfig{Level: ruleLevel(f.Severity)},
					Properties: map[string]any{
						"security-severity": securitySeverity(f.Severity),
						"tags":              []string{"security", f.Kind, f.Severity},
					},
				})
			}
			uri := strings.TrimPrefix(nonEmpty(f.File, f.Source), "/")
			res := sarifResult{
				RuleID: ruleID, RuleIndex: i, Level: sarifLevel(f),
				Message: sarifText{Text: sarifMessage(t, f)},
				Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
					ArtifactLocation: sarifArtifact{URI: nonEmpty(uri, t.Name)},
					Region:           sarifRegion{StartLine: max(f.Line, 1)},
				}}},
				PartialFingerprints: map[string]string{fingerprintKey: findingFingerprint(t.Target, f)},
				Properties:          map[string]any{"gate": f.Gate, "severity": f.Severity},
			}
			if f.Commit != "" {
				res.Properties["commit"] = f.Commit
				res.Properties["date"] = f.Date
			}
			if f.Ignored != nil {
				res.Suppressions = []sarifSuppressed{{Kind: "external", Justification: f.Ignored.Reason}}
			}
			run.Results = append(run.Results, res)
		}
		log.Runs = append(log.Runs, run)
	}
	return log
}

func sarifRuleName(f Finding) string {
	switch f.Kind {
	case KindVulnerability:
		return "Vulnerability"
	case KindSecret:
		return "Secret"
	case KindMisconfig:
		return "Misconfiguration"
	}
	return "License"
}

func sarifMessage(t TargetResult, f Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)", f.Severity, f.ID, f.Kind)
	if f.Package != "" {
		fmt.Fprintf(&b, " in %s %s", f.Package, f.Installed)
	}
	if f.Fixed != "" {
		fmt.Fprintf(&b, ", fixed in %s", f.Fixed)
	}
	if f.Title != "" {
		fmt.Fprintf(&b, ": %s", f.Title)
	}
	if f.Commit != "" {
		fmt.Fprintf(&b, "; committed in %s", shortSHA(f.Commit))
		if f.Date != "" {
			fmt.Fprintf(&b, " on %s", f.Date)
		}
		if f.Author != "" {
			fmt.Fprintf(&b, " by %s", f.Author)
		}
		b.WriteString(": rotate it, it is in every clone of the history")
	}
	fmt.Fprintf(&b, " [target %s]", t.Name)
	return b.String()
}

func nonEmpty(s, fallback string) string {
	if strings.TrimSpace(s) == "" {
		return fallback
	}
	return s
}

// --- cosign vulnerability attestation ---

// PredicateType is the cosign vulnerability attestation predicate type.
const PredicateType = "https://cosign.sigstore.dev/attestation/vuln/v1"

// Invocation describes how the scan was run (cosign's vuln predicate).
type Invocation struct {
	Parameters []string `json:"parameters"`
	URI        string   `json:"uri"`
	EventID    string   `json:"event_id"`
	BuilderID  string   `json:"builder.id"`
}

// InvocationFromRun describes the run for the attestation: the run's page
// (with its attempt) as URI, its ID, and the workflow that ran it; no
// parameters yet. The URI and builder name the server only when the CI
// said which: a guessed github.com would be a wrong link on GitHub
// Enterprise.
func InvocationFromRun(r *runctx.Run) Invocation {
	inv := Invocation{Parameters: []string{}}
	if r.RunID != 0 {
		inv.EventID = strconv.FormatInt(r.RunID, 10)
	}
	if u := r.RunURL(); u != "" && r.ServerURL != "" {
		inv.URI = u
		if r.RunAttempt != 0 {
			inv.URI += "/attempts/" + strconv.FormatInt(r.RunAttempt, 10)
		}
	}
	if r.WorkflowRef != "" && r.ServerURL != "" {
		inv.BuilderID = r.ServerURL + "/" + r.WorkflowRef
	}
	return inv
}

// Predicate is cosign's vuln/v1 predicate.
type Predicate struct {
	Invocation Invocation       `json:"invocation"`
	Scanner    PredicateScanner `json:"scanner"`
	Metadata   PredicateMeta    `json:"metadata"`
}

// PredicateScanner is the predicate's scanner section.
type PredicateScanner struct {
	URI     string      `json:"uri"`
	Version string      `json:"version"`
	DB      PredicateDB `json:"db"`
	Result  any         `json:"result"`
}

// PredicateDB is the vulnerability DB the scanner used.
type PredicateDB struct {
	URI     string `json:"uri"`
	Version string `json:"version"`
}

// PredicateMeta holds the scan times.
type PredicateMeta struct {
	ScanStartedOn  time.Time `json:"scanStartedOn"`
	ScanFinishedOn time.Time `json:"scanFinishedOn"`
}

func predicate(rep Report, inv Invocation) Predicate {
	p := Predicate{
		Invocation: inv,
		Scanner: PredicateScanner{
			URI:     rep.Scanner.URI,
			Version: rep.Scanner.Version,
			Result:  rep,
		},
		Metadata: PredicateMeta{ScanStartedOn: rep.Started, ScanFinishedOn: rep.Finished},
	}
	if p.Invocation.Parameters == nil {
		p.Invocation.Parameters = []string{}
	}
	if rep.DB != nil {
		p.Scanner.DB = PredicateDB{URI: rep.DB.URI(), Version: rep.DB.Version()}
	}
	return p
}
