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
	fmt.Fprintf(&b, "### Gantry verify: %s\n\n`%s` against %s\n\n", verdict, r.Image, r.Policy)
	b.WriteString("| digest | platform | check | result | reason |\n|---|---|---|---|---|\n")
	for _, c := range r.Checks {
		res := "✅ pass"
		if !c.Passed {
			res = "❌ fail"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", short(c.Digest), orIndex(c.Platform), c.What, res, cell(c.Reason))
	}
	return b.String()
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
