package slacknotify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"<!channel>", "&lt;!channel&gt;"},
		{"<@U123> hi", "&lt;@U123&gt; hi"},
		{"<https://evil|click>", "&lt;https://evil|click&gt;"},
		{"a & b &amp; c", "a &amp; b &amp;amp; c"},
		{"*bold* _it_ :tada:", "*bold* _it_ :tada:"},
	}
	for _, tt := range tests {
		if got := escape(tt.in); got != tt.want {
			t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClipping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(string, int) string
		in   string
		n    int
		want string
	}{
		{"clip short", clip, "deploy", 10, "deploy"},
		{"clip exact", clip, "deploy", 6, "deploy"},
		{"clip cuts with ellipsis", clip, "deploy to production", 10, "deploy to…"},
		{"clip counts characters", clip, "déploiement", 5, "dépl…"},
		{"escapeClip fits", escapeClip, "a<b", 6, "a&lt;b"},
		{"escapeClip never splits an entity", escapeClip, "ab&cd", 5, "ab…"},
		{"escapeClip keeps whole entities", escapeClip, "a<b>c", 9, "a&lt;b…"},
		{"clipMrkdwn drops a cut link", clipMrkdwn, "see <https://github.com/acme|the run> now", 20, "see…"},
		{"clipMrkdwn keeps a whole link", clipMrkdwn, "<https://x.io|x> and more text", 18, "<https://x.io|x>…"},
		{"clipMrkdwn drops a cut entity", clipMrkdwn, "1 &gt; 0 and more", 5, "1…"},
		{"plainText", plainText, "CI <!channel> & co", 100, "CI ‹!channel› & co"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			got := tt.fn(tt.in, tt.n)
			if got != tt.want {
				t.Errorf("= %q, want %q", got, tt.want)
			}
			if utf8.RuneCountInString(got) > tt.n {
				t.Errorf("%q is longer than %d characters", got, tt.n)
			}
		})
	}
}

func TestMarkdownToMrkdwn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Deployed 1.2.3", "Deployed 1.2.3"},
		{"bold", "**p95** 1.4 s > 1 s", "*p95* 1.4 s &gt; 1 s"},
		{"underscore bold", "__done__", "*done*"},
		{"strike", "~~flaky~~", "~flaky~"},
		{"link", "[run](https://github.com/acme/app/actions/runs/1?a=1&b=2)", "<https://github.com/acme/app/actions/runs/1?a=1&amp;b=2|run>"},
		{"link label escaped", "[<!channel>](https://x.io)", "<https://x.io|&lt;!channel&gt;>"},
		{"link URL with a pipe", "[x](https://x.io/a|b)", "<https://x.io/a%7Cb|x>"},
		{"non-http link stays text", "[x](javascript:alert(1))", "[x](javascript:alert(1))"},
		{"code span escaped", "`<@U1>`", "`&lt;@U1&gt;`"},
		{"heading", "## Result", "*Result*"},
		{"bullets", "- one\n  * two", "• one\n  • two"},
		{"fence", "```\n<!here> **x**\n```", "```\n&lt;!here&gt; **x**\n```"},
		{"unclosed fence closed", "```\nlog", "```\nlog\n```"},
		{"mentions inert", "<!channel> <@U123> <#C1> <!subteam^S1>", "&lt;!channel&gt; &lt;@U123&gt; &lt;#C1&gt; &lt;!subteam^S1&gt;"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			if got := markdownToMrkdwn(tt.in); got != tt.want {
				t.Errorf("markdownToMrkdwn(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLinkURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://github.com/acme/app", "https://github.com/acme/app"},
		{"http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"},
		{"https://x.io/?q=<!channel>&a=1", "https://x.io/?q=%3C!channel%3E&amp;a=1"},
		{"javascript:alert(1)", ""},
		{"ftp://x.io/f", ""},
		{"/relative", ""},
		{"https://user:pass@x.io/", ""},
	}
	for _, tt := range tests {
		if got := linkURL(tt.in); got != tt.want {
			t.Errorf("linkURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
