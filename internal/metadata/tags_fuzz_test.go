package metadata_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/metadata"
)

// validTag is the OCI distribution spec's tag grammar.
var validTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// FuzzTags: any tags input (rule lines, each fuzzed) either yields tags a
// registry accepts, without duplicates, or is refused naming the rule or
// flavor line. Never a panic.
func FuzzTags(f *testing.F) {
	for _, s := range []string{
		"type=ref,event=branch\ntype=sha",
		"type=semver,pattern={{major}}.{{minor}}\ntype=semver,pattern={{version}}",
		"type=raw,value=nightly,enable={{is_default_branch}}",
		"latest=false,prefix=v,suffix=-x\ntype=ref,event=tag",
		"type=schedule,pattern={{date 'YYYYMMDD'}}",
		"type=raw,value=Feature/Login Form!!",
		"type=sha,format=long,prefix=",
		"type=nope", "type=semver", "garbage", "type=raw,value={{unknown}}", "type=ref,event=pr,x=y", "=,=,",
	} {
		f.Add("push-tag.json", s)
		f.Add("push-branch-slash.json", s)
	}
	f.Fuzz(func(t *testing.T, event, rules string) {
		if event != "push-tag.json" && event != "push-branch-slash.json" {
			event = "pull_request.json"
		}
		c := contextFor(t, event)
		tags, err := metadata.Tags(c, strings.Split(rules, "\n"))
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "tag rule ") && !strings.HasPrefix(msg, "tag flavor") && !strings.HasPrefix(msg, "tag line ") {
				t.Fatalf("Tags(%q): error %q does not name the rule", rules, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, tag := range tags {
			if !validTag.MatchString(tag) {
				t.Fatalf("Tags(%q) = %q: %q is not a valid tag", rules, tags, tag)
			}
			if seen[tag] {
				t.Fatalf("Tags(%q) = %q: %q twice", rules, tags, tag)
			}
			seen[tag] = true
		}
	})
}
