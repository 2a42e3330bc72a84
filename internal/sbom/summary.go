package sbom

import (
	"fmt"
	"strings"
)

// Summary renders the job summary: for each platform the manifest digest
// its SBOMs describe, and for each path entry its name and path, with what
// was found by package type and the files, so a reviewer sees what shipped
// without opening the log.
func Summary(out Outputs) string {
	var b strings.Builder
	b.WriteString("### gantry-sbom\n\n")
	if out.Digest != "" {
		fmt.Fprintf(&b, "**Image** `%s`\n\n", out.Digest)
		fmt.Fprintf(&b, "| platform | manifest digest | packages | by type | files |\n|---|---|---|---|---|\n")
		for _, p := range out.Platforms {
			fmt.Fprintf(&b, "| %s | `%s` | %d | %s | %s |\n", p.Platform, p.Digest, p.Packages, typeCounts(p.ByType), codeList(p.Files))
		}
		b.WriteString("\n")
	}
	if len(out.Paths) > 0 {
		b.WriteString("**Paths**\n\n| name | path | packages | by type | files |\n|---|---|---|---|---|\n")
		for _, p := range out.Paths {
			fmt.Fprintf(&b, "| %s | `%s` (%s) | %d | %s | %s |\n", p.Name, cell(p.Path), p.Kind, p.Packages, typeCounts(p.ByType), codeList(p.Files))
		}
		b.WriteString("\n")
	}
	if out.ReleaseFile != "" {
		fmt.Fprintf(&b, "Added to the release record `%s`.\n\n", out.ReleaseFile)
	}
	return b.String()
}

// codeList renders file names as code, one per line of a table cell.
func codeList(files []string) string {
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "`" + cell(f) + "`"
	}
	return strings.Join(quoted, "<br>")
}

// cell escapes the one character a path may hold that ends a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
