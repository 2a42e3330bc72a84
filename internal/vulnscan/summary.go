package vulnscan

import (
	"fmt"
	"slices"
	"strings"
)

// topFindings is how many findings the summary lists per target.
const topFindings = 10

// Summary renders the job summary: the verdict and exactly which findings
// failed the gate, counts by severity per target, the top findings with
// their fixed versions, and ignore entries that expired.
func Summary(out Outputs) string {
	rep := out.Report
	var b strings.Builder
	icon := "✅"
	if rep.Gate.Verdict == "fail" {
		icon = "❌"
	}
	fmt.Fprintf(&b, "## %s Gantry scan: %s\n\n", icon, rep.Gate.Verdict)
	gate := strings.Join(rep.Gate.Severities, ", ")
	if gate == "" {
		gate = "none"
	}
	switch n := len(rep.Gate.Failed); {
	case n == 0:
		fmt.Fprintf(&b, "No finding at the gate severities (%s) that is not ignored.\n\n", gate)
	default:
		fmt.Fprintf(&b, "**%d finding(s) failed the gate** (severities %s, not ignored):\n\n", n, gate)
		b.WriteString("| Severity | ID | Kind | Package | Installed | Fixed in | Where | Target |\n|---|---|---|---|---|---|---|---|\n")
		for _, f := range rep.Gate.Failed {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", f.Severity, link(f.ID, f.URL), f.Kind, md(f.Package), md(f.Installed), md(nonEmpty(f.Fixed, dash(f.Finding))), md(f.Where()), md(f.Target))
		}
		b.WriteString("\nFix them, or add an entry with a reason (and an expiry date) to the ignore file.")
		if slices.ContainsFunc(rep.Gate.Failed, func(f GateFinding) bool { return f.Commit != "" }) {
			b.WriteString(" A secret in the Git history is in every clone: rotate it first (revoke, issue a new one), then ignore its `fingerprint` from the JSON report.")
		}
		b.WriteString("\n\n")
	}

	b.WriteString("| Target | Critical | High | Medium | Low | Unknown | Ignored |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range rep.Targets {
		c := t.Counts
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d |\n", md(t.Name), c.Critical, c.High, c.Medium, c.Low, c.Unknown, c.Ignored)
	}
	b.WriteString("\n")

	for _, t := range rep.Targets {
		live := slices.DeleteFunc(slices.Clone(t.Findings), func(f Finding) bool { return f.Ignored != nil })
		if len(live) == 0 {
			continue
		}
		fmt.Fprintf(&b, "<details><summary>Top findings in %s (%d)</summary>\n\n", md(t.Name), len(live))
		if t.Kind == "history" {
			b.WriteString("| Gate | Severity | Rule | Where | Committed | Author |\n|---|---|---|---|---|---|\n")
		} else {
			b.WriteString("| Gate | Severity | ID | Kind | Package | Installed | Fixed in | Where |\n|---|---|---|---|---|---|---|---|\n")
		}
		for i, f := range live {
			if i == topFindings {
				fmt.Fprintf(&b, "\n…and %d more in the JSON report.\n", len(live)-topFindings)
				break
			}
			if t.Kind == "history" {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", gateCell(f), f.Severity, md(f.ID), md(f.Where()), md(f.Date), md(f.Author))
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", gateCell(f), f.Severity, link(f.ID, f.URL), f.Kind, md(f.Package), md(f.Installed), md(nonEmpty(f.Fixed, dash(f))), md(f.Where()))
		}
		b.WriteString("\n</details>\n\n")
	}

	if len(rep.Expired) > 0 {
		b.WriteString("**Expired ignore entries** (no longer ignoring; renew with a new date or fix the finding):\n\n")
		for _, e := range rep.Expired {
			fmt.Fprintf(&b, "- `%s` expired %s (%s: %s) — matches %d finding(s) again\n", e.Entry.Key(), e.Entry.Expires, md(e.Entry.File), md(e.Entry.Reason), e.Findings)
		}
		b.WriteString("\n")
	}
	var ignored []string
	for _, t := range rep.Targets {
		for _, f := range t.Findings {
			if f.Ignored != nil {
				ignored = append(ignored, fmt.Sprintf("- %s %s in %s: %s", f.Severity, f.ID, md(t.Name), md(f.Ignored.Reason)))
			}
		}
	}
	if len(ignored) > 0 {
		fmt.Fprintf(&b, "<details><summary>Ignored (%d)</summary>\n\n%s\n\n</details>\n\n", len(ignored), strings.Join(ignored, "\n"))
	}
	if rep.Unfixed > 0 {
		fmt.Fprintf(&b, "%d unfixed vulnerabilities not counted (ignore-unfixed).\n\n", rep.Unfixed)
	}
	for _, t := range rep.Targets {
		if h := t.History; h != nil {
			fmt.Fprintf(&b, "Git history of %s: %d commit(s) (`%s`), gitleaks %s with %s rules (%d). A secret found there is in every clone: rotate it.\n\n", md(h.Repository), h.Commits, md(h.Range), h.Gitleaks, md(h.Rules), h.RuleCount)
		}
	}
	if rep.DB != nil {
		fmt.Fprintf(&b, "Vulnerability DB built %s (%s: %s). ", rep.DB.UpdatedAt.UTC().Format("2006-01-02 15:04 MST"), rep.DB.Source, md(rep.DB.URI()))
	}
	scanned := rep.Scanner.Name + " " + rep.Scanner.Version
	if h := rep.HistoryScanner; h != nil && h.Name != rep.Scanner.Name {
		scanned += " and " + h.Name + " " + h.Version
	}
	fmt.Fprintf(&b, "Scanned with %s: %s.\n", scanned, strings.Join(rep.Scanners, ", "))
	return b.String()
}

// gateCell is a finding's gate decision in the tables: the same value the
// JSON report and the SARIF level carry.
func gateCell(f Finding) string {
	if f.Gate == "fail" {
		return "❌ fail"
	}
	return f.Gate
}

// dash is shown for a missing fixed version: "none yet" for a vuln.
func dash(f Finding) string {
	if f.Kind == KindVulnerability {
		return "no fix yet"
	}
	return "–"
}

func link(text, url string) string {
	if url == "" {
		return md(text)
	}
	return fmt.Sprintf("[%s](%s)", md(text), url)
}

// md keeps a value from breaking a table cell.
func md(s string) string {
	if s == "" {
		return ""
	}
	r := strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}
