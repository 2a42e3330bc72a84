package sbom

import (
	"fmt"
	"strings"
)

// Summary renders the job summary: for each platform the manifest digest
// its SBOMs describe, what was found by package type, and the files, so a
// reviewer sees what shipped without opening the log.
func Summary(out Outputs) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### gantry-sbom\n\n**Image** `%s`\n\n", out.Digest)
	fmt.Fprintf(&b, "| platform | manifest digest | packages | by type | files |\n|---|---|---|---|---|\n")
	for _, p := range out.Platforms {
		files := make([]string, len(p.Files))
		for i, f := range p.Files {
			files[i] = "`" + f + "`"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %d | %s | %s |\n", p.Platform, p.Digest, p.Packages, typeCounts(p.ByType), strings.Join(files, "<br>"))
	}
	if out.ReleaseFile != "" {
		fmt.Fprintf(&b, "\nAdded to the release record `%s`.\n", out.ReleaseFile)
	}
	b.WriteString("\n")
	return b.String()
}
