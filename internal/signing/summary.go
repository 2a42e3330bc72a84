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
	b.WriteString("| digest | platform | attached | read back from the registry |\n|---|---|---|---|\n")
	for _, s := range r.Signed {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", short(s.Digest), orIndex(s.Platform), strings.Join(s.Types, ", "), cell(readBack(s)))
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

// readBack says how many attached manifests the read-back of a digest's
// referrers found, where, and what is missing.
func readBack(s SignedDigest) string {
	found := 0
	var missing []string
	for _, a := range s.Attached {
		if a.Found {
			found++
		} else {
			missing = append(missing, a.Type)
		}
	}
	out := fmt.Sprintf("✅ %d of %d", found, len(s.Attached))
	if len(missing) > 0 {
		out = fmt.Sprintf("❌ %d of %d, missing %s", found, len(s.Attached), strings.Join(missing, ", "))
	}
	switch tag, ok := strings.CutPrefix(s.Referrers, "fallback tag "); {
	case ok:
		out += ", fallback tag `" + tag + "`"
	case s.Referrers != "":
		out += ", " + s.Referrers
	}
	if s.Readded > 0 {
		out += fmt.Sprintf(" (%d lost to another writer and re-added)", s.Readded)
	}
	return out
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
