package image

import (
	"fmt"
	"strings"
	"time"

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
	if d := out.Dockerfile; d != nil {
		target := ""
		if d.Target != "" {
			target = fmt.Sprintf(", target `%s`", d.Target)
		}
		fmt.Fprintf(&b, "**Dockerfile** `%s`%s, built by BuildKit in %s: %d step(s), %d cached\n\n", d.Dockerfile, target, d.Duration.Round(100*time.Millisecond), len(d.Steps), d.Cached)
		for _, c := range d.CacheFrom {
			fmt.Fprintf(&b, "- cache from `%s`\n", c)
		}
		for _, c := range d.CacheTo {
			fmt.Fprintf(&b, "- cache to `%s`\n", c)
		}
		fmt.Fprintf(&b, "\n| platform | manifest digest | size |\n|---|---|---|\n")
		for _, p := range out.Platforms {
			fmt.Fprintf(&b, "| %s | `%s` | %s |\n", p.Platform, p.Digest, human.Bytes(p.Size))
		}
		fmt.Fprintf(&b, "\n<details><summary>Steps</summary>\n\n| step | | time |\n|---|---|---|\n")
		for _, s := range d.Steps {
			how := "ran"
			if s.Cached {
				how = "cached"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", strings.ReplaceAll(s.Name, "|", "\\|"), how, s.Duration.Round(10*time.Millisecond))
		}
		fmt.Fprintf(&b, "\n</details>\n")
	} else if len(out.Merged) > 0 {
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
