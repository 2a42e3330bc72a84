package slacknotify

import (
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Slack reads three characters specially in mrkdwn: "<" opens a control
// sequence (a link <https://x|label>, a mention <@U123>, a broadcast
// <!channel>), ">" closes it, and "&" starts an entity. Replacing exactly
// these with their entities is what Slack documents for untrusted text
// (https://api.slack.com/reference/surfaces/formatting#escaping); everything
// else (*bold*, _italic_, :emoji:) is cosmetic and cannot ping anyone or
// hide a link.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escape makes user-controlled text inert in mrkdwn.
func escape(s string) string { return escaper.Replace(s) }

// plainText prepares s for a plain_text object (the header). Slack does not
// parse links or mentions there, but whether it decodes entities is not
// something to bet a workflow name on: "<" and ">" become the look-alike
// angle quotes, which read the same and mean nothing either way.
func plainText(s string, n int) string {
	return clip(strings.NewReplacer("<", "‹", ">", "›").Replace(s), n)
}

// ellipsis marks text cut to fit a Slack limit.
const ellipsis = "…"

// clip cuts s to at most n characters (Slack counts characters, not bytes),
// ending with an ellipsis when it cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:n-1]), isSpace) + ellipsis
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// esc cuts s to n characters, then escapes it: for names and one-liners,
// where the limit is about reading, not about Slack's.
func esc(s string, n int) string { return escape(clip(s, n)) }

// escapeClip escapes s and cuts the result to at most n characters without
// splitting an entity: an "&amp;" cut in half would show as text.
func escapeClip(s string, n int) string {
	if e := escape(s); utf8.RuneCountInString(e) <= n {
		return e
	}
	var b strings.Builder
	used := 0
	for _, r := range s {
		piece := escape(string(r))
		l := utf8.RuneCountInString(piece)
		if used+l > n-1 {
			break
		}
		b.WriteString(piece)
		used += l
	}
	return strings.TrimRightFunc(b.String(), isSpace) + ellipsis
}

// oneLine is the first line of s, for commit messages and notes.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// code renders s as inline code: a backtick inside would end the span early
// (cosmetic, but it garbles a branch name), so it becomes a modifier letter
// that looks the same.
func code(s string, n int) string {
	s = strings.ReplaceAll(oneLine(s), "`", "ˋ")
	if s == "" {
		return ""
	}
	return "`" + esc(s, n-2) + "`"
}

// linkURL returns u made safe for the URL part of <url|label>, or "" when u
// is not an absolute http(s) URL. "|" and ">" would end the URL early, so
// they are percent-encoded; "&" is an entity like anywhere else.
func linkURL(u string) string {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
		return ""
	}
	s := strings.NewReplacer("|", "%7C", "<", "%3C", ">", "%3E", " ", "%20", "\n", "", "\r", "").Replace(p.String())
	return strings.ReplaceAll(s, "&", "&amp;")
}

// link renders <url|label> with the label escaped, or just the escaped label
// when url is not an http(s) URL.
func link(u, label string) string {
	l := escape(label)
	if s := linkURL(u); s != "" {
		return "<" + s + "|" + l + ">"
	}
	return l
}

// markdownInline matches the GitHub Markdown that has a mrkdwn spelling:
// [label](https://…) links, **bold**, __bold__, ~~strike~~ and `code`.
var markdownInline = regexp.MustCompile("\\[([^\\]\\n]+)\\]\\((https?://[^\\s)]+)\\)|\\*\\*([^*\\n]+)\\*\\*|__([^_\\n]+)__|~~([^~\\n]+)~~|`([^`\\n]+)`")

var (
	markdownHeading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	markdownBullet  = regexp.MustCompile(`^(\s*)[-*+]\s+`)
)

// markdownToMrkdwn converts the `text` input, GitHub-flavoured Markdown, to
// Slack mrkdwn: links, bold, strike-through, headings and bullets get their
// mrkdwn spelling, and everything else is escaped. So even text that
// interpolates a PR title or a commit message cannot ping a channel or hide
// a link: only [label](url) with an http(s) URL becomes a link.
func markdownToMrkdwn(s string) string {
	var out []string
	fenced := false
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			out = append(out, "```")
			continue
		}
		if fenced {
			out = append(out, escape(line))
			continue
		}
		if m := markdownHeading.FindStringSubmatch(line); m != nil {
			out = append(out, "*"+inlineMrkdwn(m[1])+"*")
			continue
		}
		if m := markdownBullet.FindStringSubmatch(line); m != nil {
			line = m[1] + "• " + line[len(m[0]):]
		}
		out = append(out, inlineMrkdwn(line))
	}
	if fenced {
		out = append(out, "```")
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

func inlineMrkdwn(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range markdownInline.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(escape(s[last:m[0]]))
		last = m[1]
		group := func(i int) string { return s[m[2*i]:m[2*i+1]] }
		switch {
		case m[2] >= 0:
			b.WriteString(link(group(2), group(1)))
		case m[6] >= 0:
			b.WriteString("*" + escape(group(3)) + "*")
		case m[8] >= 0:
			b.WriteString("*" + escape(group(4)) + "*")
		case m[10] >= 0:
			b.WriteString("~" + escape(group(5)) + "~")
		case m[12] >= 0:
			b.WriteString("`" + escape(group(6)) + "`")
		}
	}
	b.WriteString(escape(s[last:]))
	return b.String()
}

// clipMrkdwn cuts already-rendered mrkdwn to n characters. It cuts before a
// partial entity or an unclosed <…> link, so a cut can break formatting but
// never leave a half control sequence.
func clipMrkdwn(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:max(n-1, 0)]
	cut := string(r)
	if i := strings.LastIndexByte(cut, '<'); i >= 0 && !strings.Contains(cut[i:], ">") {
		cut = cut[:i]
	}
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	return strings.TrimRightFunc(cut, isSpace) + ellipsis
}
