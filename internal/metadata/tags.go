package metadata

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultRules are the tag rules used when the tags input is empty:
// a branch run gets the branch name, a tag run the semver family
// (1.2.3, 1.2, 1 and latest, or the raw tag when it is not semver), a pull
// request pr-<n>, a schedule run "nightly", and every run sha-<short>.
func DefaultRules() []string {
	return []string{
		"type=schedule",
		"type=ref,event=branch",
		"type=ref,event=pr",
		"type=semver,pattern={{version}}",
		"type=semver,pattern={{major}}.{{minor}}",
		"type=semver,pattern={{major}}",
		"type=ref,event=tag,enable={{is_not_semver}}",
		"type=sha",
	}
}

// rule is one parsed line of the tags input.
type rule struct {
	line  string
	typ   string
	attrs map[string]string
}

// flavor holds the settings that apply to every tag.
type flavor struct {
	latest   string // auto, true, false
	prefix   string
	suffix   string
	onLatest bool
}

var knownAttrs = map[string][]string{
	"ref":      {"event"},
	"semver":   {"pattern", "value"},
	"sha":      {"format"},
	"raw":      {"value"},
	"schedule": {"pattern"},
	"edge":     {"branch"},
}

// Tags evaluates tag rules (docker/metadata-action syntax, one rule per line:
// "type=semver,pattern={{major}}.{{minor}}") against the context and returns
// the sanitised, de-duplicated tags in rule order, "latest" last. A line
// without type= sets the flavor: "latest=auto|true|false,prefix=..,suffix=..".
func Tags(c Context, lines []string) ([]string, error) {
	fl := flavor{latest: "auto"}
	var rules []rule
	for _, line := range lines {
		attrs, err := parseAttrs(line)
		if err != nil {
			return nil, err
		}
		typ, ok := attrs["type"]
		if !ok {
			if err := fl.set(line, attrs); err != nil {
				return nil, err
			}
			continue
		}
		allowed, ok := knownAttrs[typ]
		if !ok {
			return nil, fmt.Errorf("tag rule %q: unknown type %q: use one of ref, semver, sha, raw, schedule, edge", line, typ)
		}
		for k := range attrs {
			switch k {
			case "type", "prefix", "suffix", "enable":
				continue
			}
			if !contains(allowed, k) {
				return nil, fmt.Errorf("tag rule %q: type=%s has no attribute %q (it takes %s, prefix, suffix, enable)", line, typ, k, strings.Join(allowed, ", "))
			}
		}
		if typ == "semver" && attrs["pattern"] == "" {
			return nil, fmt.Errorf("tag rule %q: type=semver needs pattern=, e.g. pattern={{version}}", line)
		}
		rules = append(rules, rule{line: line, typ: typ, attrs: attrs})
	}
	// Flavor lines alone adjust the default rules rather than replace them.
	if len(rules) == 0 {
		for _, line := range DefaultRules() {
			attrs, _ := parseAttrs(line)
			rules = append(rules, rule{line: line, typ: attrs["type"], attrs: attrs})
		}
	}

	var tags []string
	seen := map[string]bool{}
	add := func(t string) {
		t = Sanitize(t)
		if t != "" && !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	latest := false
	for _, r := range rules {
		enabled, err := r.enabled(c)
		if err != nil {
			return nil, err
		}
		if !enabled {
			continue
		}
		values, autoLatest, err := r.eval(c)
		if err != nil {
			return nil, err
		}
		latest = latest || autoLatest
		// As in metadata-action, a rule's own prefix/suffix (sha- and pr-
		// by default for those types) replaces the flavor's.
		prefix, err := expand(c, r.affix("prefix", fl.prefix))
		if err != nil {
			return nil, fmt.Errorf("tag rule %q: %w", r.line, err)
		}
		suffix, err := expand(c, r.affix("suffix", fl.suffix))
		if err != nil {
			return nil, fmt.Errorf("tag rule %q: %w", r.line, err)
		}
		for _, v := range values {
			add(prefix + v + suffix)
		}
	}
	switch fl.latest {
	case "true":
		latest = true
	case "false":
		latest = false
	}
	if latest {
		t := "latest"
		if fl.onLatest {
			prefix, err := expand(c, fl.prefix)
			if err != nil {
				return nil, fmt.Errorf("tag flavor: %w", err)
			}
			suffix, err := expand(c, fl.suffix)
			if err != nil {
				return nil, fmt.Errorf("tag flavor: %w", err)
			}
			t = prefix + t + suffix
		}
		add(t)
	}
	return tags, nil
}

func (f *flavor) set(line string, attrs map[string]string) error {
	for k, v := range attrs {
		switch k {
		case "latest":
			if v != "auto" && v != "true" && v != "false" {
				return fmt.Errorf("tag flavor %q: latest=%q: use auto, true or false", line, v)
			}
			f.latest = v
		case "prefix":
			f.prefix = v
		case "suffix":
			f.suffix = v
		case "onlatest":
			f.onLatest = v == "true"
		default:
			return fmt.Errorf("tag line %q has no type=: write a rule such as type=ref,event=branch, or a flavor line with latest=, prefix=, suffix=, onlatest=", line)
		}
	}
	return nil
}

func parseAttrs(line string) (map[string]string, error) {
	attrs := map[string]string{}
	for _, part := range splitAttrs(line) {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("tag rule %q: %q is not key=value", line, part)
		}
		attrs[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	return attrs, nil
}

// splitAttrs splits on commas outside {{ }} so patterns like
// {{date 'YYYY,MM'}} survive.
func splitAttrs(line string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(line); i++ {
		switch {
		case strings.HasPrefix(line[i:], "{{"):
			depth++
			i++
		case strings.HasPrefix(line[i:], "}}") && depth > 0:
			depth--
			i++
		case line[i] == ',' && depth == 0:
			parts = append(parts, line[start:i])
			start = i + 1
		}
	}
	return append(parts, line[start:])
}

// affix returns the rule's prefix or suffix: its own attribute when given
// (even empty), else the type's default (sha-, pr-), else the flavor's.
func (r rule) affix(key, flavor string) string {
	if v, ok := r.attrs[key]; ok {
		return v
	}
	if key == "prefix" {
		switch {
		case r.typ == "sha":
			return "sha-"
		case r.typ == "ref" && r.attrs["event"] == "pr":
			return "pr-"
		}
	}
	return flavor
}

func (r rule) enabled(c Context) (bool, error) {
	v, ok := r.attrs["enable"]
	if !ok {
		return true, nil
	}
	v, err := expand(c, v)
	if err != nil {
		return false, fmt.Errorf("tag rule %q: %w", r.line, err)
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("tag rule %q: enable=%q: use true, false, {{is_default_branch}} or {{is_not_semver}}", r.line, v)
	}
	return b, nil
}

// eval returns the tag values of one rule and whether it asks for "latest"
// under latest=auto (tag runs that are releases, as in metadata-action).
func (r rule) eval(c Context) ([]string, bool, error) {
	wrap := func(err error) error { return fmt.Errorf("tag rule %q: %w", r.line, err) }
	switch r.typ {
	case "ref":
		switch ev := r.attrs["event"]; ev {
		case "branch":
			if b := c.Branch(); b != "" && !c.IsPR() {
				return []string{b}, false, nil
			}
		case "tag":
			if t := c.Tag(); t != "" {
				// A pre-release must not move "latest", whichever rule tags it.
				v, isSemver := ParseSemver(t)
				return []string{t}, !isSemver || v.Pre == "", nil
			}
		case "pr":
			if c.IsPR() && c.PRNumber > 0 {
				return []string{strconv.Itoa(c.PRNumber)}, false, nil
			}
		default:
			return nil, false, wrap(fmt.Errorf("event=%q: use branch, tag or pr", ev))
		}
		return nil, false, nil
	case "semver":
		raw := r.attrs["value"]
		if raw == "" {
			raw = c.Tag()
		}
		v, ok := ParseSemver(raw)
		if !ok {
			return nil, false, nil
		}
		pattern := r.attrs["pattern"]
		if pattern == "" {
			return nil, false, wrap(fmt.Errorf("type=semver needs pattern=, e.g. pattern={{version}}"))
		}
		// Pre-releases only get full versions: a 2.0.0-rc.1 must not move
		// the "2" or "2.0" tags users pin to.
		if v.Pre != "" && !strings.Contains(pattern, "{{version}}") && !strings.Contains(pattern, "{{raw}}") {
			return nil, false, nil
		}
		// 0.x releases make no "0" tag: 0.y is not a compatibility line.
		if v.Major == 0 && strings.TrimSpace(pattern) == "{{major}}" {
			return nil, false, nil
		}
		out := strings.NewReplacer(
			"{{version}}", v.String(),
			"{{raw}}", raw,
			"{{major}}", strconv.Itoa(v.Major),
			"{{minor}}", strconv.Itoa(v.Minor),
			"{{patch}}", strconv.Itoa(v.Patch),
		).Replace(pattern)
		out, err := expand(c, out)
		if err != nil {
			return nil, false, wrap(err)
		}
		return []string{out}, v.Pre == "", nil
	case "sha":
		sha := c.CommitSHA()
		if sha == "" {
			return nil, false, nil
		}
		switch r.attrs["format"] {
		case "", "short":
			if len(sha) > 7 {
				sha = sha[:7]
			}
		case "long":
		default:
			return nil, false, wrap(fmt.Errorf("format=%q: use short or long", r.attrs["format"]))
		}
		return []string{sha}, false, nil
	case "raw":
		v, err := expand(c, r.attrs["value"])
		if err != nil {
			return nil, false, wrap(err)
		}
		return []string{v}, false, nil
	case "schedule":
		if c.EventName != "schedule" {
			return nil, false, nil
		}
		p := r.attrs["pattern"]
		if p == "" {
			p = "nightly"
		}
		v, err := expand(c, p)
		if err != nil {
			return nil, false, wrap(err)
		}
		return []string{v}, false, nil
	case "edge":
		branch := r.attrs["branch"]
		if branch == "" {
			branch = c.DefaultBranch
		}
		if c.Branch() == branch && !c.IsPR() {
			return []string{"edge"}, false, nil
		}
		return nil, false, nil
	}
	return nil, false, nil
}

var dateRE = regexp.MustCompile(`\{\{\s*date\s+'([^']*)'\s*\}\}`)

// expand replaces the context placeholders a rule value may use.
func expand(c Context, s string) (string, error) {
	sha := c.CommitSHA()
	if len(sha) > 7 {
		sha = sha[:7]
	}
	_, semver := ParseSemver(c.Tag())
	s = strings.NewReplacer(
		"{{branch}}", c.Branch(),
		"{{tag}}", c.Tag(),
		"{{sha}}", sha,
		"{{base_ref}}", c.PRBaseRef,
		"{{is_default_branch}}", strconv.FormatBool(c.IsDefaultBranch()),
		"{{is_not_semver}}", strconv.FormatBool(!semver),
	).Replace(s)
	s = dateRE.ReplaceAllStringFunc(s, func(m string) string {
		return formatDate(c.Now.UTC(), dateRE.FindStringSubmatch(m)[1])
	})
	if i := strings.Index(s, "{{"); i >= 0 {
		return "", fmt.Errorf("unknown placeholder in %q: use {{branch}}, {{tag}}, {{sha}}, {{base_ref}}, {{is_default_branch}} or {{date 'YYYYMMDD'}}", s)
	}
	return s, nil
}

// formatDate renders a Moment.js-style pattern (YYYY, YY, MM, M, DD, D, HH,
// H, mm, ss); every other character is copied as it is.
func formatDate(t time.Time, pattern string) string {
	tokens := []struct {
		tok string
		val func() string
	}{
		{"YYYY", func() string { return fmt.Sprintf("%04d", t.Year()) }},
		{"YY", func() string { return fmt.Sprintf("%02d", t.Year()%100) }},
		{"MM", func() string { return fmt.Sprintf("%02d", int(t.Month())) }},
		{"M", func() string { return strconv.Itoa(int(t.Month())) }},
		{"DD", func() string { return fmt.Sprintf("%02d", t.Day()) }},
		{"D", func() string { return strconv.Itoa(t.Day()) }},
		{"HH", func() string { return fmt.Sprintf("%02d", t.Hour()) }},
		{"H", func() string { return strconv.Itoa(t.Hour()) }},
		{"mm", func() string { return fmt.Sprintf("%02d", t.Minute()) }},
		{"ss", func() string { return fmt.Sprintf("%02d", t.Second()) }},
	}
	var b strings.Builder
outer:
	for i := 0; i < len(pattern); {
		for _, tk := range tokens {
			if strings.HasPrefix(pattern[i:], tk.tok) {
				b.WriteString(tk.val())
				i += len(tk.tok)
				continue outer
			}
		}
		b.WriteByte(pattern[i])
		i++
	}
	return b.String()
}

var invalidTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Sanitize turns any string into a valid OCI tag: each run of characters
// outside [A-Za-z0-9_.-] becomes one '-', leading '.' and '-' are dropped, and the result
// is cut to 128 characters.
func Sanitize(t string) string {
	t = invalidTagChars.ReplaceAllString(t, "-")
	t = strings.TrimLeft(t, ".-")
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
