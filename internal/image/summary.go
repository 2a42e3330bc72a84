package image

import (
	"fmt"
	"strings"

	"github.com/gantry-ci/gantry/internal/human"
)

// Summary renders the job summary for a build: what a reviewer checks
// without opening the log.
func Summary(out Outputs) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### gantry-build\n\n")
	where := "pushed"
	if !out.Pushed {
		where = "written to an OCI layout (push: false)"
	}
	fmt.Fprintf(&b, "**Image** `%s` — %s, %s of blobs uploaded\n\n", out.Image, where, human.Bytes(out.Uploaded))
	if len(out.Merged) > 0 {
		fmt.Fprintf(&b, "**Merged** from %d build(s), no image rebuilt:\n\n", len(out.Merged))
		for _, m := range out.Merged {
			fmt.Fprintf(&b, "- `%s`\n", m)
		}
		fmt.Fprintf(&b, "\n| platform | manifest digest | size |\n|---|---|---|\n")
		for _, p := range out.Platforms {
			fmt.Fprintf(&b, "| %s | `%s` | %s |\n", p.Platform, p.Digest, human.Bytes(p.Size))
		}
	} else {
		fmt.Fprintf(&b, "**Base** `%s`\n\n", out.Base)
		fmt.Fprintf(&b, "| platform | manifest digest | size | app layers |\n|---|---|---|---|\n")
		for _, p := range out.Platforms {
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", p.Platform, p.Digest, human.Bytes(p.Size), human.Bytes(p.AppSize))
		}
	}
	if out.ByDigest {
		fmt.Fprintf(&b, "\nNo tag moved (push-by-digest): the digest is this job's output.\n")
	}
	if len(out.Tags) > 0 {
		fmt.Fprintf(&b, "\n**Tags**\n\n")
		for _, t := range out.Tags {
			fmt.Fprintf(&b, "- `%s`\n", t)
		}
	}
	b.WriteString("\n")
	return b.String()
}
