package ghrelease

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/gantry-ci/gantry/internal/release"
)

// maxBody is GitHub's limit on a release body, in characters.
const maxBody = 125000

// semverRE is semver 2.0.0 with an optional leading v; group 4 is the
// pre-release part.
var semverRE = regexp.MustCompile(`^[vV]?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$`)

// IsPrerelease reports whether tag is a semantic version with a
// pre-release part (v1.2.3-rc.1, 2.0.0-beta); build metadata (+build.5)
// does not count. The part after the last slash of a monorepo tag is what
// is read.
func IsPrerelease(tag string) bool {
	m := semverRE.FindStringSubmatch(tag[strings.LastIndex(tag, "/")+1:])
	return m != nil && m[4] != ""
}

// changelogNotes is what the changelog gives for the release.
type changelogNotes struct {
	Section Section
	Found   bool
	Detail  string // for logs and the summary
}

// readChangelog finds the tag's section in the changelog. The default
// CHANGELOG.md may be missing; a path given explicitly must exist.
func readChangelog(dir, p, tag string) (changelogNotes, error) {
	if p == "" {
		p = DefaultChangelog
	}
	full := p
	if !filepath.IsAbs(full) {
		full = filepath.Join(dir, p)
	}
	b, err := os.ReadFile(full)
	switch {
	case errors.Is(err, fs.ErrNotExist) && p == DefaultChangelog:
		return changelogNotes{Detail: "no " + p}, nil
	case errors.Is(err, fs.ErrNotExist):
		return changelogNotes{}, fmt.Errorf(`input "changelog": %s does not exist (looked in %s): give the changelog's path relative to the repository root, or leave the input unset for CHANGELOG.md`, p, filepath.Dir(full))
	case err != nil:
		return changelogNotes{}, fmt.Errorf(`input "changelog": %w`, err)
	}
	sec, ok := FindSection(string(b), tag)
	switch {
	case !ok:
		return changelogNotes{Detail: fmt.Sprintf("%s has no section for %s", p, tag)}, nil
	case strings.TrimSpace(sec.Body) == "":
		return changelogNotes{Section: sec, Detail: fmt.Sprintf("the section %q of %s is empty", sec.Heading, p)}, nil
	}
	return changelogNotes{Section: sec, Found: true, Detail: fmt.Sprintf("%s, section %q", p, sec.Heading)}, nil
}

// imageSection describes the released image: by digest, per platform,
// its tags and where it was built.
func imageSection(rec release.Record) string {
	if rec.Image == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("## Image\n\n")
	fmt.Fprintf(&b, "```\n%s\n```\n\n", rec.Image)
	if len(rec.Platforms) > 0 {
		b.WriteString("| platform | digest |\n|---|---|\n")
		for _, p := range rec.Platforms {
			fmt.Fprintf(&b, "| %s | `%s` |\n", p.Platform, p.Digest)
		}
		b.WriteString("\n")
	}
	if len(rec.Tags) > 0 {
		tags := make([]string, len(rec.Tags))
		for i, t := range rec.Tags {
			tags[i] = "`" + t + "`"
		}
		fmt.Fprintf(&b, "Tags: %s (a tag can move; deploy by digest).\n\n", strings.Join(tags, ", "))
	}
	if src := rec.Source; src.Revision != "" {
		short := src.Revision
		if len(short) > 12 {
			short = short[:12]
		}
		commit := "`" + short + "`"
		if src.URL != "" {
			commit = fmt.Sprintf("[`%s`](%s/commit/%s)", short, strings.TrimSuffix(src.URL, "/"), src.Revision)
		}
		line := "Built from " + commit
		if src.RunURL != "" {
			line += fmt.Sprintf(" by [this workflow run](%s)", src.RunURL)
		}
		b.WriteString(line + ".\n\n")
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// composeNotes joins the release body: the changelog section and/or
// GitHub's generated notes, then the image and how to verify it. The notes
// are cut (never the image or verify sections) when the body would exceed
// GitHub's limit.
func composeNotes(cl changelogNotes, generated string, tail ...string) (body, source string) {
	var notes []string
	source = SourceNone
	if cl.Found {
		notes = append(notes, cl.Section.Body)
		source = SourceChangelog
	}
	if generated != "" {
		notes = append(notes, generated)
		if source == SourceNone {
			source = SourceGenerated
		}
	}
	text := strings.Join(notes, "\n\n")
	var rest []string
	for _, t := range tail {
		if t = strings.TrimSpace(t); t != "" {
			rest = append(rest, t)
		}
	}
	after := strings.Join(rest, "\n\n")
	const cutNote = "\n\n… (cut to fit GitHub's limit on release notes; the changelog has the rest)"
	if room := maxBody - utf8.RuneCountInString(after) - 2; utf8.RuneCountInString(text) > room {
		keep := max(room-utf8.RuneCountInString(cutNote), 0)
		r := []rune(text)
		text = string(r[:min(keep, len(r))]) + cutNote
	}
	parts := []string{}
	for _, p := range []string{text, after} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "", source
	}
	return strings.Join(parts, "\n\n") + "\n", source
}
