package ghrelease

import (
	"regexp"
	"slices"
	"strings"
)

// Section is a changelog's section for one version.
type Section struct {
	// Heading is the section's heading line without "## ", e.g.
	// "[1.2.3] - 2026-11-26".
	Heading string
	// Body is the text under the heading, up to the next heading of level
	// one or two, without surrounding blank lines. Link reference
	// definitions the body uses are included even when they sit at the end
	// of the file; other ones (Keep a Changelog's compare links) are not.
	Body string
}

// Versions returns the version strings a changelog heading may use for
// tag: the tag itself and, for v1.2.3, 1.2.3; for a monorepo tag such as
// app/v1.2.3, the part after the last slash as well.
func Versions(tag string) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, t := range []string{tag, tag[strings.LastIndex(tag, "/")+1:]} {
		add(t)
		if len(t) > 1 && (t[0] == 'v' || t[0] == 'V') && t[1] >= '0' && t[1] <= '9' {
			add(t[1:])
		}
	}
	return out
}

// FindSection returns the section of text (a Markdown changelog) for tag.
// A section starts at a level-two heading naming the version — "## [1.2.3]",
// "## 1.2.3", "## v1.2.3", optionally followed by a date or anything else
// ("## [1.2.3] - 2026-11-26", "## 1.2.3 (2026-11-26)") — and runs until the
// next heading of level one or two outside a code fence. "## 1.2.3-rc.1"
// is not the section of 1.2.3.
func FindSection(text, tag string) (Section, bool) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	versions := Versions(tag)
	fenced := fenceMap(lines)
	start := -1
	var heading string
	for i, l := range lines {
		if fenced[i] {
			continue
		}
		title, ok := headingTitle(l)
		if !ok {
			continue
		}
		if start >= 0 {
			return finishSection(lines, start, i, heading, fenced), true
		}
		if headingNames(title, versions) {
			start, heading = i+1, title
		}
	}
	if start < 0 {
		return Section{}, false
	}
	return finishSection(lines, start, len(lines), heading, fenced), true
}

// headingTitle returns the text of a level-one or level-two ATX heading.
func headingTitle(line string) (string, bool) {
	l := strings.TrimLeft(line, " ")
	if len(line)-len(l) > 3 {
		return "", false // four spaces of indent make a code block
	}
	for _, p := range []string{"## ", "# "} {
		if t, ok := strings.CutPrefix(l, p); ok {
			return strings.TrimSpace(t), true
		}
	}
	if l == "#" || l == "##" {
		return "", true
	}
	return "", false
}

// headingNames reports whether a heading's title names one of versions.
func headingNames(title string, versions []string) bool {
	t := strings.TrimPrefix(title, "[")
	if len(t) > 1 && (t[0] == 'v' || t[0] == 'V') && t[1] >= '0' && t[1] <= '9' {
		t = t[1:]
	}
	for _, v := range versions {
		if (v[0] == 'v' || v[0] == 'V') && len(v) > 1 && v[1] >= '0' && v[1] <= '9' {
			v = v[1:]
		}
		rest, ok := strings.CutPrefix(t, v)
		if !ok {
			continue
		}
		if rest == "" || !isVersionChar(rest[0]) {
			return true
		}
	}
	return false
}

// isVersionChar reports whether c can continue a version, so that 1.2.3
// does not name 1.2.30, 1.2.3-rc.1 or 1.2.3+build.5.
func isVersionChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '+' || c == '_'
}

// fenceMap marks the lines inside fenced code blocks (and the fences), so
// a "## " line in an example does not end a section.
func fenceMap(lines []string) []bool {
	in := make([]bool, len(lines))
	var fence string
	for i, l := range lines {
		t := strings.TrimLeft(l, " ")
		if fence == "" {
			for _, f := range []string{"```", "~~~"} {
				if strings.HasPrefix(t, f) {
					n := len(t) - len(strings.TrimLeft(t, f[:1]))
					fence = strings.Repeat(f[:1], n)
					in[i] = true
				}
			}
			continue
		}
		in[i] = true
		if strings.HasPrefix(t, fence) && strings.TrimSpace(strings.TrimLeft(t, fence[:1])) == "" {
			fence = ""
		}
	}
	return in
}

// linkDef matches a Markdown link reference definition: [label]: url.
var linkDef = regexp.MustCompile(`^ {0,3}\[([^\]]+)\]:\s*\S`)

// bracketed finds [label] uses in text.
var bracketed = regexp.MustCompile(`\[([^\[\]]+)\]`)

func normLabel(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// finishSection cuts lines[start:end] to the section's body: link
// definitions at its end that the body does not use are dropped (Keep a
// Changelog's version compare links, which follow the last section), and
// definitions elsewhere in the file that the body does use are added.
func finishSection(lines []string, start, end int, heading string, fenced []bool) Section {
	body := append([]string(nil), lines[start:end]...)
	bodyFenced := fenced[start:end]

	// The trailing block of definitions (blank lines between them allowed).
	cut := len(body)
	for i := len(body) - 1; i >= 0; i-- {
		if bodyFenced[i] {
			break
		}
		if strings.TrimSpace(body[i]) == "" || linkDef.MatchString(body[i]) {
			cut = i
			continue
		}
		break
	}
	trailing := body[cut:]
	body = body[:cut]

	used := map[string]bool{}
	for i, l := range body {
		if bodyFenced[i] || linkDef.MatchString(l) {
			continue
		}
		for _, m := range bracketed.FindAllStringSubmatch(l, -1) {
			used[normLabel(m[1])] = true
		}
	}
	defined := map[string]bool{}
	for i, l := range body {
		if m := linkDef.FindStringSubmatch(l); m != nil && !bodyFenced[i] {
			defined[normLabel(m[1])] = true
		}
	}
	var defs []string
	for _, l := range trailing {
		if m := linkDef.FindStringSubmatch(l); m != nil && used[normLabel(m[1])] && !defined[normLabel(m[1])] {
			defs = append(defs, l)
			defined[normLabel(m[1])] = true
		}
	}
	// Definitions the body uses that live outside the section.
	for i, l := range lines {
		if i >= start && i < end || fenced[i] {
			continue
		}
		if m := linkDef.FindStringSubmatch(l); m != nil && used[normLabel(m[1])] && !defined[normLabel(m[1])] {
			defs = append(defs, l)
			defined[normLabel(m[1])] = true
		}
	}
	for len(body) > 0 && strings.TrimSpace(body[0]) == "" {
		body = body[1:]
	}
	for len(body) > 0 && strings.TrimSpace(body[len(body)-1]) == "" {
		body = body[:len(body)-1]
	}
	if len(defs) > 0 {
		if len(body) > 0 {
			body = append(body, "")
		}
		body = append(body, defs...)
	}
	text := strings.Join(body, "\n")
	return Section{Heading: heading, Body: text}
}
