package ghrelease

import (
	"fmt"
	"strings"

	"github.com/gantry-ci/gantry/internal/human"
)

// Summary renders the job summary: the release and its state, where the
// notes came from, and the assets with their sizes.
func Summary(out Outputs) string {
	var b strings.Builder
	title := out.Tag
	if out.URL != "" {
		title = fmt.Sprintf("[%s](%s)", out.Tag, out.URL)
	}
	fmt.Fprintf(&b, "### Gantry release %s\n\n", title)
	var state []string
	switch {
	case out.Draft:
		state = append(state, "**draft** (not visible to users)")
	default:
		state = append(state, "published")
	}
	if out.Prerelease {
		state = append(state, "prerelease")
	}
	switch out.MakeLatest {
	case "true":
		state = append(state, "marked latest")
	case "legacy":
		state = append(state, "latest if it is the newest version")
	}
	if out.Created {
		state = append(state, "created by this run")
	} else if out.ReleaseID != 0 {
		state = append(state, "updated by this run")
	}
	b.WriteString(strings.Join(state, " · ") + "\n\n")
	if out.NotesDetail != "" {
		fmt.Fprintf(&b, "Notes: %s (`%s`).\n\n", out.NotesDetail, out.NotesSource)
	}
	if len(out.Uploaded) > 0 {
		b.WriteString("| asset | size | sha256 |\n|---|--:|---|\n")
		for _, a := range out.Uploaded {
			name := a.Name
			if a.URL != "" {
				name = fmt.Sprintf("[%s](%s)", a.Name, a.URL)
			}
			fmt.Fprintf(&b, "| %s | %s | `%s` |\n", name, human.Bytes(a.Size), short(strings.TrimPrefix(a.Digest, "sha256:")))
		}
	}
	return b.String()
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}
