package actioncheck_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/actioncheck"
)

// TestEveryInputDocumented: every input and output of every action has a
// table row of its own (| `name` | …) in README.md or a page under docs/,
// where users look for it.
func TestEveryInputDocumented(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	var docs strings.Builder
	pages, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	for _, p := range append(pages, filepath.Join(root, "README.md")) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(b)
	}
	text := docs.String()
	actions, _ := filepath.Glob(filepath.Join(root, "actions", "*", "action.yml"))
	actions = append(actions, filepath.Join(root, "action.yml"))
	sort.Strings(actions)
	for _, p := range actions {
		a, err := actioncheck.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		for name := range a.Inputs {
			if !documented(text, name) {
				t.Errorf("%s: input %s has no row in a table of README.md or docs/", rel, name)
			}
		}
		for name := range a.Outputs {
			if !documented(text, name) {
				t.Errorf("%s: output %s has no row in a table of README.md or docs/", rel, name)
			}
		}
	}
}

// documented says whether a Markdown table row starts with `name`.
func documented(text, name string) bool {
	re := regexp.MustCompile("(?m)^\\|\\s*`" + regexp.QuoteMeta(name) + "`\\s*\\|")
	return re.MatchString(text)
}
