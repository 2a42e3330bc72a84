package signing

import (
	"fmt"
	"strings"
)

// Summary renders the job summary: what was signed and attested, or the
// table of verification checks.
func Summary(out Outputs) string {
	r := out.Report
	if r.Mode == "verify" {
		return VerifySummary(r)
	}
	var b strings.Builder
	if len(r.Files) > 0 {
		fmt.Fprintf(&b, "### Gantry sign\n\n%d file(s) signed with %s; each bundle is `<file>%s`\n\n", len(r.Files), r.Signer, BundleSuffix)
		b.WriteString("| file | sha256 | bundle |\n|---|---|---|\n")
		for _, f := range r.Files {
			fmt.Fprintf(&b, "| `%s` | `%s` | `%s` |\n", cell(f.File), short(f.SHA256), cell(f.Bundle))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "### Gantry sign\n\n`%s` signed with %s\n\n", r.Image, r.Signer)
	b.WriteString("| digest | platform | signed |\n|---|---|---|\n")
	for _, s := range r.Signed {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", short(s.Digest), orIndex(s.Platform), strings.Join(s.Types, ", "))
	}
	if len(r.SBOMs) > 0 {
		b.WriteString("\nSBOMs attested: ")
		var files []string
		for _, s := range r.SBOMs {
			files = append(files, fmt.Sprintf("%s (%s, %s)", s.File, s.Platform, s.Format))
		}
		b.WriteString(strings.Join(files, "; ") + "\n")
	}
	return b.String()
}

// VerifySummary renders a verification report: the verdict, the policy,
// and one row per check with its reason.
func VerifySummary(r Report) string {
	var b strings.Builder
	verdict := "verified"
	if !r.Verified {
		verdict = "NOT verified"
	}
	if r.Image == "" && len(r.Files) > 0 {
		fmt.Fprintf(&b, "### Gantry verify: %s\n\n%d file(s) against %s\n\n", verdict, len(r.Files), r.Policy)
		b.WriteString("| file | sha256 | result | reason |\n|---|---|---|---|\n")
		for _, c := range r.Checks {
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", cell(c.File), short(strings.TrimPrefix(c.Digest, "sha256:")), result(c.Passed), cell(c.Reason))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "### Gantry verify: %s\n\n`%s` against %s\n\n", verdict, r.Image, r.Policy)
	b.WriteString("| digest | platform | check | result | reason |\n|---|---|---|---|---|\n")
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", short(c.Digest), orIndex(c.Platform), c.What, result(c.Passed), cell(c.Reason))
	}
	return b.String()
}

func result(passed bool) string {
	if passed {
		return "✅ pass"
	}
	return "❌ fail"
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19] + "…"
	}
	return d
}

func orIndex(p string) string {
	if p == "" {
		return "index"
	}
	return p
}

func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
