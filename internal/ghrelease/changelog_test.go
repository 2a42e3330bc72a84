package ghrelease_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghrelease"
)

func TestFindSection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, tag   string
		wantHeading string
		want        string // "" means no section
	}{
		{
			file: "keepachangelog.md", tag: "v1.2.3",
			wantHeading: "[1.2.3] - 2026-11-26",
			// The rc section after it is not included; of the link
			// references at the end of the file only the one the section
			// uses comes along.
			want: "### Fixed\n\n" +
				"- Cold starts no longer time out behind the corporate proxy ([#41]).\n" +
				"- The API returns 429 instead of 500 when a model is saturated.\n\n" +
				"### Security\n\n" +
				"- Base image rebuilt for CVE-2026-41873.\n\n" +
				"[#41]: https://github.com/acme/prompt-builder/pull/41",
		},
		{
			file: "keepachangelog.md", tag: "v1.2.3-rc.1",
			wantHeading: "[1.2.3-rc.1] - 2026-11-20",
			want:        "### Added\n\n- Release candidate for the proxy fix.",
		},
		{
			// The last section: the compare links that follow it are not
			// part of it.
			file: "keepachangelog.md", tag: "1.2.2",
			wantHeading: "[1.2.2] - 2026-10-01",
			want:        "### Added\n\n- Prompt history, kept for 30 days.",
		},
		{file: "keepachangelog.md", tag: "v1.2.4"},
		{file: "keepachangelog.md", tag: "v1.2"},     // 1.2 does not name 1.2.3
		{file: "keepachangelog.md", tag: "v1.2.3.1"}, // nor does 1.2.3 name 1.2.3.1
		{
			// A ## line inside a code fence does not end the section.
			file: "plain.md", tag: "v2.0.0",
			wantHeading: "v2.0.0 (2026-12-01)",
			want:        "Breaking: the config file moved to `config/app.yaml`.\n\n```yaml\n## a YAML comment, not a heading\nlisten: \":8080\"\n```",
		},
		{
			// A bare version heading; deeper headings stay in the section.
			file: "plain.md", tag: "v1.9.0",
			wantHeading: "1.9.0",
			want:        "* Streaming responses.\n\n#### Internals\n\nMoved to Node 22.",
		},
		{
			file: "plain.md", tag: "app/v1.9.0", // a monorepo tag
			wantHeading: "1.9.0",
			want:        "* Streaming responses.\n\n#### Internals\n\nMoved to Node 22.",
		},
		{
			// A heading that is a link, with the date in parentheses;
			// 1.8.0-beta.2 is a different version.
			file: "plain.md", tag: "v1.8.0",
			wantHeading: "[v1.8.0](https://github.com/acme/prompt-builder/compare/v1.7.0...v1.8.0) (2026-08-01)",
			want:        "- Older things.",
		},
		{file: "plain.md", tag: "1.8.0-beta.2", wantHeading: "1.8.0-beta.2", want: "- A beta."},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+strings.ReplaceAll(tt.tag, "/", "_"), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join("testdata", "changelog", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, text := range []string{string(b), strings.ReplaceAll(string(b), "\n", "\r\n")} {
				sec, ok := ghrelease.FindSection(text, tt.tag)
				if tt.want == "" {
					if ok {
						t.Fatalf("FindSection(%s) found %q, want no section", tt.tag, sec.Heading)
					}
					continue
				}
				if !ok {
					t.Fatalf("FindSection(%s) found no section", tt.tag)
				}
				if sec.Heading != tt.wantHeading {
					t.Errorf("heading = %q, want %q", sec.Heading, tt.wantHeading)
				}
				if sec.Body != tt.want {
					t.Errorf("body:\n%s\n--- want:\n%s", sec.Body, tt.want)
				}
			}
		})
	}
}

func TestIsPrerelease(t *testing.T) {
	t.Parallel()
	for tag, want := range map[string]bool{
		"v1.2.3":          false,
		"1.2.3":           false,
		"v1.2.3-rc.1":     true,
		"2.0.0-beta":      true,
		"v1.2.3+build.5":  false,
		"v1.2.3-0.3.7+b1": true,
		"app/v1.2.3-rc.1": true,
		"v1.2":            false, // not semver: auto never guesses
		"release-2026-11": false,
		"v01.2.3-rc.1":    false, // leading zero: not semver
	} {
		if got := ghrelease.IsPrerelease(tag); got != want {
			t.Errorf("IsPrerelease(%q) = %v, want %v", tag, got, want)
		}
	}
}
