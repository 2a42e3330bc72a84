package actioncheck_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/actioncheck"
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/stages"
)

// The repository's own action.yml files pass every check.
func TestCheckTreeRepo(t *testing.T) {
	t.Parallel()
	problems, err := actioncheck.CheckTree(filepath.Join("..", ".."), stages.All())
	if err != nil {
		t.Fatalf("CheckTree: %v", err)
	}
	for _, p := range problems {
		t.Errorf("problem: %s", p)
	}

	// Guard against a vacuous pass: the build action really was read and
	// has every Go input and output.
	a, err := actioncheck.Load(filepath.Join("..", "..", "actions", "build", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stages.All() {
		if s.Name != "build" {
			continue
		}
		if got, want := len(a.Inputs), len(ghaction.InputFields(s.Inputs))+1; got != want || got == 1 { // + config
			t.Errorf("actions/build/action.yml has %d inputs, Go %d", got, want)
		}
		if got, want := len(a.Outputs), len(ghaction.OutputFields(s.Outputs)); got != want || got == 0 {
			t.Errorf("actions/build/action.yml has %d outputs, Go %d", got, want)
		}
	}
}

// Each directory in testdata is a copy of the repository's action.yml files
// with one thing broken, and want.txt lists the exact problem lines.
func TestCheckTreeFixtures(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range entries {
		if e.IsDir() {
			cases = append(cases, e.Name())
		}
	}
	// Every check the package documents has a fixture.
	for _, required := range []string{
		"input-not-passed", "expression-in-run", "unpinned-uses", "input-not-in-go",
		"default-differs", "output-missing", "missing-shell",
		"workflow-unsafe", "expression-in-description",
	} {
		if !slices.Contains(cases, required) {
			t.Errorf("testdata/%s is missing", required)
		}
	}

	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("testdata", name)
			b, err := os.ReadFile(filepath.Join(dir, "want.txt"))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(b), "\n") {
				if line = strings.TrimSpace(line); line != "" {
					want = append(want, line)
				}
			}
			if len(want) == 0 {
				t.Fatalf("%s/want.txt lists no problem: a broken fixture must show one", dir)
			}
			// The fixtures are copies of the build action only.
			got, err := actioncheck.CheckTree(dir, buildStageOnly(t))
			if err != nil {
				t.Fatalf("CheckTree: %v", err)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("CheckTree(%s) problems:\n got:\n  %s\nwant:\n  %s",
					dir, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

func TestCheckTreeErrors(t *testing.T) {
	t.Parallel()
	t.Run("no action.yml", func(t *testing.T) {
		t.Parallel()
		if _, err := actioncheck.CheckTree(t.TempDir(), stages.All()); err == nil {
			t.Error("CheckTree of an empty directory = nil error, want one")
		}
	})
	t.Run("invalid YAML names the file", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		real, err := os.ReadFile(filepath.Join("..", "..", "action.yml"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "action.yml"), string(real))
		bad := filepath.Join(root, "actions", "build", "action.yml")
		writeFile(t, bad, "inputs:\n  image: [unclosed\n")
		_, err = actioncheck.CheckTree(root, stages.All())
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("CheckTree error = %v, want one naming %s", err, bad)
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// numInputs is a stage whose defaults are numbers and booleans, which YAML
// authors often leave unquoted.
type numInputs struct {
	MaxBytes int    `input:"max-bytes" default:"1000000"`
	Jobs     int    `input:"jobs" default:"4"`
	Push     bool   `input:"push" default:"true"`
	Ratio    string `input:"ratio" default:"0.25"`
}

type noOutputs struct{}

// The defaults live in Go and in the descriptions; action.yml's default is
// empty so that gantry.yaml can apply. An action written so has no problem;
// a default left in action.yml is reported as the text GitHub would hand
// over, also when YAML reads it as a number (1000000, not 1e+06).
func TestCheckStageDefaultsInDescriptions(t *testing.T) {
	t.Parallel()
	stage := stages.Stage{Name: "num", Binary: "gantry-num", Inputs: numInputs{}, Outputs: noOutputs{}}
	write := func(t *testing.T, literal map[string]string) actioncheck.Action {
		var inputs, env strings.Builder
		for _, f := range ghaction.InputFields(numInputs{}) {
			def := `""`
			if l, ok := literal[f.Name]; ok {
				def = l
			}
			inputs.WriteString("  " + f.Name + ":\n    description: 'd. Default: `" + f.Default + "`.'\n    required: false\n    default: " + def + "\n")
			env.WriteString("        " + ghaction.InputName(f.Name) + ": ${{ inputs." + f.Name + " }}\n")
		}
		inputs.WriteString("  config:\n    description: the file\n    required: false\n    default: \"\"\n")
		env.WriteString("        INPUT_CONFIG: ${{ inputs.config }}\n")
		path := filepath.Join(t.TempDir(), "action.yml")
		writeFile(t, path, "name: num\ndescription: d\ninputs:\n"+inputs.String()+
			"runs:\n  using: composite\n  steps:\n    - name: Run\n      id: run\n      shell: bash\n      env:\n"+
			env.String()+"      run: gantry-num\n")
		a, err := actioncheck.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if p := actioncheck.CheckSafety(a); len(p) != 0 {
			t.Fatalf("test action is not safe: %q", p)
		}
		return a
	}
	if p := actioncheck.CheckStage(write(t, nil), stage); len(p) != 0 {
		t.Errorf("defaults in the descriptions: problems %q, want none", p)
	}
	for _, tt := range []struct{ input, literal string }{
		{"jobs", "4"}, {"push", "true"}, {"ratio", "0.25"}, {"max-bytes", "1000000"},
	} {
		p := actioncheck.CheckStage(write(t, map[string]string{tt.input: tt.literal}), stage)
		want := fmt.Sprintf("input %q: default %q in action.yml: write default: \"\" and end the description with \"Default: `%s`.\" (the Go default applies after gantry.yaml)", tt.input, tt.literal, tt.literal)
		if len(p) != 1 || p[0] != want {
			t.Errorf("default: %s (unquoted): problems %q, want [%q]", tt.literal, p, want)
		}
	}
}

// buildStageOnly returns the build stage, the one the fixture trees copy.
func buildStageOnly(t *testing.T) []stages.Stage {
	t.Helper()
	for _, s := range stages.All() {
		if s.Name == "build" {
			return []stages.Stage{s}
		}
	}
	t.Fatal("no build stage")
	return nil
}

func TestCheckPins(t *testing.T) {
	t.Parallel()
	sha := strings.Repeat("a1", 20)
	for _, tc := range []struct {
		name, text string
		want       []string // substrings of the problems, in order; none: clean
	}{
		{"version comment", "steps:\n  - uses: actions/checkout@" + sha + " # v5.0.0\n", nil},
		{"version without v", "      uses: treosh/lighthouse-ci-action@" + sha + " # 12.6.2\n", nil},
		{"quoted", "  - uses: 'actions/setup-go@" + sha + "' # v5\n", nil},
		{"local and docker refs", "  - uses: ./actions/build\n  - uses: docker://alpine:3\n", nil},
		{"no comment", "  - uses: actions/checkout@" + sha + "\n", []string{"line 1: actions/checkout@" + sha + " is pinned by SHA without the release"}},
		{"comment that is no version", "  - uses: actions/checkout@" + sha + " # latest\n", []string{"without the release"}},
		{"reusable workflow", "    uses: org/repo/.github/workflows/x.yml@" + sha + "\n", []string{"org/repo/.github/workflows/x.yml@"}},
		{"pull_request_target with head", "on: pull_request_target\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@" + sha + " # v5\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n",
			[]string{"pull_request_target checks out the pull request's head"}},
		{"pull_request_target without checkout of head", "on: pull_request_target\njobs:\n  a:\n    steps:\n      - run: echo hi\n", nil},
	} {
		got := actioncheck.CheckPins(tc.text)
		if len(got) != len(tc.want) {
			t.Errorf("%s: CheckPins = %q, want %d problem(s) %q", tc.name, got, len(tc.want), tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: problem %q, want it to say %q", tc.name, got[i], w)
			}
		}
	}
}
