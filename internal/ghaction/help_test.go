package ghaction_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// TestStageHelp: every stage binary's --help lists each input of its
// action.yml (as the INPUT_ variable, with its default or "required" and
// its description's first words) and each output, read from the file on
// disk here, so help and action.yml cannot drift apart.
func TestStageHelp(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "actions", "*", "action.yml"))
	if err != nil || len(files) < 8 {
		t.Fatalf("action.yml files: %v %v", files, err)
	}
	for _, f := range files {
		stage := filepath.Base(filepath.Dir(f))
		t.Run(stage, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var meta struct {
				Inputs map[string]struct {
					Description string `json:"description"`
					Required    bool   `json:"required"`
					Default     string `json:"default"`
				} `json:"inputs"`
				Outputs map[string]struct {
					Description string `json:"description"`
				} `json:"outputs"`
			}
			if err := yaml.Unmarshal(raw, &meta); err != nil {
				t.Fatal(err)
			}
			var o, e bytes.Buffer
			code := ghaction.MainWith([]string{"/opt/bin/gantry-" + stage, "--help"}, func(string) string { return "" }, &o, &e, nil)
			help := o.String()
			if code != 0 || !strings.HasPrefix(help, "usage: gantry-"+stage+" ") {
				t.Fatalf("exit %d, help:\n%s\n%s", code, help, e.String())
			}
			flat := strings.Join(strings.Fields(help), " ")
			for name, in := range meta.Inputs {
				// The description says required and the default
				// (actioncheck holds them to Go's).
				line := "INPUT_" + strings.ToUpper(name)
				desc := strings.Join(strings.Fields(in.Description), " ")
				switch {
				case in.Required || in.Default != "":
					t.Errorf("input %s: action.yml sets required/default; they belong in the description", name)
				case strings.HasPrefix(desc, "Required (here or in gantry.yaml)."):
					line += "  (required)"
				case defaultRE.MatchString(desc):
					line += "  default: " + defaultRE.FindStringSubmatch(desc)[1]
				}
				if !strings.Contains(help, "  "+line+"\n") {
					t.Errorf("help lacks the line %q", line)
				}
				if words := strings.Fields(in.Description); len(words) > 0 && !strings.Contains(flat, strings.Join(words[:min(6, len(words))], " ")) {
					t.Errorf("help lacks input %s's description %q", name, in.Description)
				}
			}
			for name := range meta.Outputs {
				if !strings.Contains(help, "\n  "+name+"\n") {
					t.Errorf("help lacks output %s", name)
				}
			}
		})
	}
}

var defaultRE = regexp.MustCompile("Default: `([^`]*)`\\.$")

func TestVersionAndUnknownFlags(t *testing.T) {
	t.Parallel()
	code, stdout, _ := mainWith(nil, greet, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "gantry-test dev (commit ") || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("--version: exit %d, %q", code, stdout)
	}
	code, _, stderr := mainWith(nil, greet, "--verbose")
	if code != 1 || !strings.Contains(stderr, `unknown argument "--verbose"`) {
		t.Errorf("--verbose: exit %d, %s", code, stderr)
	}
	// A binary that is no stage's still has the generic help.
	code, stdout, _ = mainWith(nil, greet, "--help")
	if code != 0 || strings.Contains(stdout, "inputs (environment variables):") || !strings.Contains(stdout, "INPUT_<NAME>") {
		t.Errorf("--help of a binary without action.yml: exit %d\n%s", code, stdout)
	}
}
