// Package actioncheck checks action.yml files, which actionlint does not
// lint: every input of a stage action is declared as its Go Inputs struct
// declares it and reaches the binary as INPUT_<NAME>, every output comes from
// the Go Outputs, no run: script interpolates an expression, no description
// holds one, and every third-party action is pinned by commit SHA. The
// workflows in .github/workflows get the checks actionlint lacks: explicit
// permissions on the workflow and every job, no expression in run:, every
// remote action and reusable workflow pinned by SHA.
package actioncheck

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Stage ties an actions/<Name>/action.yml to its Go types. (internal/stages
// lists Gantry's own; this package takes them as arguments, so a test that
// checks one action does not link every stage.)
type Stage struct {
	Name    string // directory under actions/ and cmd/
	Binary  string // gantry-<name>
	Inputs  any    // zero value of the stage's Inputs struct
	Outputs any    // zero value of the stage's Outputs struct
}

// Action is the part of action.yml the checks read.
type Action struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Inputs      map[string]Input  `json:"inputs"`
	Outputs     map[string]Output `json:"outputs"`
	Runs        struct {
		Using string `json:"using"`
		Steps []Step `json:"steps"`
	} `json:"runs"`
}

// Input is one declared input.
type Input struct {
	Description string `json:"description"`
	Required    any    `json:"required"`
	Default     any    `json:"default"`
}

// Output is one declared output.
type Output struct {
	Description string `json:"description"`
	Value       string `json:"value"`
}

// Step is one composite step.
type Step struct {
	ID    string            `json:"id"`
	Name  string            `json:"name"`
	Uses  string            `json:"uses"`
	Run   string            `json:"run"`
	Shell string            `json:"shell"`
	Env   map[string]string `json:"env"`
}

// Load parses an action.yml.
func Load(path string) (Action, error) {
	var a Action
	b, err := os.ReadFile(path)
	if err != nil {
		return a, err
	}
	if err := yaml.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// CheckTree checks root/action.yml and every root/actions/*/action.yml
// against the stages and returns one line per problem.
func CheckTree(root string, all []Stage) ([]string, error) {
	var problems []string
	setup := filepath.Join(root, "action.yml")
	a, err := Load(setup)
	if err != nil {
		return nil, err
	}
	problems = append(problems, prefix("action.yml", CheckSafety(a))...)

	paths, err := filepath.Glob(filepath.Join(root, "actions", "*", "action.yml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	byName := map[string]Stage{}
	for _, s := range all {
		byName[s.Name] = s
	}
	seen := map[string]bool{}
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		dir := filepath.Base(filepath.Dir(p))
		a, err := Load(p)
		if err != nil {
			return nil, err
		}
		s, ok := byName[dir]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no stage named %q in internal/stages", rel, dir))
			continue
		}
		seen[dir] = true
		problems = append(problems, prefix(rel, CheckSafety(a))...)
		problems = append(problems, prefix(rel, CheckStage(a, s))...)
	}
	for _, s := range all {
		if !seen[s.Name] {
			problems = append(problems, fmt.Sprintf("actions/%s/action.yml: missing for stage %s", s.Name, s.Name))
		}
	}
	// Every file that can name a remote action: pins carry the version
	// they stand for, and no pull_request_target runs the head's code.
	pinned := []string{setup}
	pinned = append(pinned, paths...)
	for _, dir := range []string{filepath.Join(root, ".github", "workflows"), filepath.Join(root, "workflows")} {
		ymls, err := filepath.Glob(filepath.Join(dir, "*.yml"))
		if err != nil {
			return nil, err
		}
		pinned = append(pinned, ymls...)
	}
	for _, p := range pinned {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(root, p)
		problems = append(problems, prefix(rel, CheckPins(string(b)))...)
	}
	workflows, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(workflows)
	for _, p := range workflows {
		rel, _ := filepath.Rel(root, p)
		w, err := LoadWorkflow(p)
		if err != nil {
			return nil, err
		}
		problems = append(problems, prefix(rel, CheckWorkflow(w))...)
	}
	return problems, nil
}

// Workflow is the part of a workflow file CheckWorkflow reads.
type Workflow struct {
	Permissions any            `json:"permissions"`
	Jobs        map[string]Job `json:"jobs"`
}

// Job is one workflow job: steps, or a call of a reusable workflow.
type Job struct {
	Permissions any    `json:"permissions"`
	Uses        string `json:"uses"`
	Steps       []Step `json:"steps"`
}

// LoadWorkflow parses a workflow file.
func LoadWorkflow(path string) (Workflow, error) {
	var w Workflow
	b, err := os.ReadFile(path)
	if err != nil {
		return w, err
	}
	if err := yaml.Unmarshal(b, &w); err != nil {
		return w, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// CheckWorkflow checks what actionlint does not: least privilege spelled
// out (a top-level permissions: and one on every job), no ${{ }} inside
// run: (values go through env:), and every remote action or reusable
// workflow pinned by full commit SHA.
func CheckWorkflow(w Workflow) []string {
	var problems []string
	if w.Permissions == nil {
		problems = append(problems, "no top-level permissions: (write permissions: {} and grant each job what it needs)")
	}
	for _, id := range slices.Sorted(maps.Keys(w.Jobs)) {
		j := w.Jobs[id]
		if j.Permissions == nil {
			problems = append(problems, fmt.Sprintf("job %s: no permissions: block", id))
		}
		if j.Uses != "" && !strings.HasPrefix(j.Uses, "./") && !pinnedRE.MatchString(j.Uses) {
			problems = append(problems, fmt.Sprintf("job %s: uses %q is not pinned by a full commit SHA", id, j.Uses))
		}
		for i, st := range j.Steps {
			label := "job " + id + " " + stepLabel(i, st)
			if expr.MatchString(st.Run) {
				problems = append(problems, fmt.Sprintf("%s: run: contains ${{ }}: pass the value through env: and read it as a variable", label))
			}
			if st.Uses != "" && !strings.HasPrefix(st.Uses, "./") && !pinnedRE.MatchString(st.Uses) {
				problems = append(problems, fmt.Sprintf("%s: uses %q is not pinned by a full commit SHA: write owner/repo@<40-hex sha> # vX.Y.Z", label, st.Uses))
			}
		}
	}
	return problems
}

// CheckPins reads a workflow or action file as text (the comments
// matter): every remote action or reusable workflow pinned by commit SHA
// says which release the SHA is (`# v4.2.1`), so a reviewer can tell a
// moved pin from an update; and a pull_request_target workflow, which runs
// with the base repository's secrets, never checks out the pull request's
// head.
func CheckPins(text string) []string {
	var problems []string
	for i, line := range strings.Split(text, "\n") {
		m := usesPinRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		// Gantry's own workflows have no release yet: a pin of one of
		// main's commits says so, with its date.
		if !versionCommentRE.MatchString(m[2]) && !(strings.HasPrefix(m[1], "gantry-ci/gantry/") && gantryMainRE.MatchString(m[2])) {
			problems = append(problems, fmt.Sprintf("line %d: %s is pinned by SHA without the release it stands for: add a comment such as # v1.2.3", i+1, m[1]))
		}
	}
	if strings.Contains(text, "pull_request_target") && headCheckoutRE.MatchString(text) {
		problems = append(problems, "pull_request_target checks out the pull request's head: that code would run with this repository's secrets; use pull_request, or never check out the head here")
	}
	return problems
}

func prefix(p string, lines []string) []string {
	for i, l := range lines {
		lines[i] = p + ": " + l
	}
	return lines
}

var (
	expr     = regexp.MustCompile(`\$\{\{`)
	pinnedRE = regexp.MustCompile(`^[^@]+@[0-9a-f]{40}$`)
	// usesPinRE: a uses: line with a remote ref pinned by SHA; group 2 is
	// what follows it on the line.
	usesPinRE        = regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*['"]?([^./\s'"][^\s'"@]*@[0-9a-f]{40})['"]?(.*)$`)
	versionCommentRE = regexp.MustCompile(`^\s*#\s*v?\d+(\.\d+)*\S*`)
	gantryMainRE     = regexp.MustCompile(`^\s*# main, \d{4}-\d{2}-\d{2} \(no Gantry release yet\)\s*$`)
	headCheckoutRE   = regexp.MustCompile(`github\.event\.pull_request\.head\.(sha|ref|repo)|github\.head_ref`)
)

// CheckSafety checks what any composite action must get right: a shell on
// each run: step, no ${{ }} inside run: (script injection: values go through
// env:), and third-party actions pinned by full commit SHA.
func CheckSafety(a Action) []string {
	var problems []string
	if a.Runs.Using != "composite" {
		problems = append(problems, fmt.Sprintf("runs.using is %q: Gantry actions are composite", a.Runs.Using))
	}
	for i, st := range a.Runs.Steps {
		label := stepLabel(i, st)
		if st.Run != "" {
			if expr.MatchString(st.Run) {
				problems = append(problems, fmt.Sprintf("%s: run: contains ${{ }}: pass the value through env: and read it as a variable", label))
			}
			if st.Shell == "" {
				problems = append(problems, fmt.Sprintf("%s: run: step has no shell: (composite steps need one, e.g. shell: bash)", label))
			}
		}
		if st.Uses != "" && !strings.HasPrefix(st.Uses, "./") && !pinnedRE.MatchString(st.Uses) {
			problems = append(problems, fmt.Sprintf("%s: uses %q is not pinned by a full commit SHA: write owner/repo@<40-hex sha> # vX.Y.Z", label, st.Uses))
		}
	}
	// A description is metadata, but runners (and act) parse ${{ }} in it
	// and refuse the action when it is not valid there.
	if expr.MatchString(a.Description) {
		problems = append(problems, "description contains ${{ }}: write the expression in words")
	}
	for name, in := range a.Inputs {
		if strings.TrimSpace(in.Description) == "" {
			problems = append(problems, fmt.Sprintf("input %q has no description", name))
		}
		if expr.MatchString(in.Description) {
			problems = append(problems, fmt.Sprintf("input %q: description contains ${{ }}: write the expression in words", name))
		}
	}
	for name, out := range a.Outputs {
		if strings.TrimSpace(out.Description) == "" {
			problems = append(problems, fmt.Sprintf("output %q has no description", name))
		}
		if expr.MatchString(out.Description) {
			problems = append(problems, fmt.Sprintf("output %q: description contains ${{ }}: write the expression in words", name))
		}
	}
	sort.Strings(problems)
	return problems
}

func stepLabel(i int, st Step) string {
	if st.Name != "" {
		return fmt.Sprintf("step %d (%s)", i+1, st.Name)
	}
	return fmt.Sprintf("step %d", i+1)
}

// ConfigInput is the input every stage action has beside its Go Inputs:
// the gantry.yaml it reads (ghaction handles it).
const ConfigInput = "config"

// requiredNote starts the description of an input the stage requires.
const requiredNote = "Required (here or in gantry.yaml)."

// CheckStage checks a stage action against its Go Inputs and Outputs: the
// same inputs with the same defaults and required flags, every input passed
// to the binary's step as INPUT_<NAME>: ${{ inputs.<name> }}, and the same
// outputs, each read from that step.
func CheckStage(a Action, s Stage) []string {
	var problems []string
	goIn := map[string]ghaction.Field{}
	for _, f := range ghaction.InputFields(s.Inputs) {
		goIn[f.Name] = f
	}
	goOut := map[string]ghaction.Field{}
	for _, f := range ghaction.OutputFields(s.Outputs) {
		goOut[f.Name] = f
	}

	// The step that runs the binary is the one whose env carries INPUT_*.
	runStep := -1
	for i, st := range a.Runs.Steps {
		if strings.Contains(st.Run, s.Binary) {
			runStep = i
		}
	}
	if runStep < 0 {
		return []string{fmt.Sprintf("no step runs %s", s.Binary)}
	}
	st := a.Runs.Steps[runStep]

	if _, ok := a.Inputs[ConfigInput]; !ok {
		problems = append(problems, fmt.Sprintf("input %q is not declared: every stage action takes it (the gantry.yaml to read)", ConfigInput))
	}
	for _, name := range slices.Sorted(maps.Keys(a.Inputs)) {
		in := a.Inputs[name]
		// An input set in the step wins over gantry.yaml, and the file
		// over the default, so GitHub must hand an unset input over
		// empty: the default and required flag live in Go, and the
		// description says them.
		if got := scalar(in.Default); got != "" {
			problems = append(problems, fmt.Sprintf("input %q: default %q in action.yml: write default: \"\" and end the description with \"Default: `%s`.\" (the Go default applies after gantry.yaml)", name, got, got))
		}
		if scalar(in.Required) == "true" {
			problems = append(problems, fmt.Sprintf("input %q: required: true in action.yml: write required: false and start the description with %q (gantry.yaml may set it)", name, requiredNote))
		}
		if name == ConfigInput {
			if want := "${{ inputs.config }}"; strings.TrimSpace(st.Env["INPUT_CONFIG"]) != want {
				problems = append(problems, fmt.Sprintf("input %q is not passed to %s: add INPUT_CONFIG: %s to the step's env:", name, s.Binary, want))
			}
			continue
		}
		f, ok := goIn[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("input %q is not a field of the Go Inputs (add an input:%q tag or remove the input)", name, name))
			continue
		}
		desc := strings.Join(strings.Fields(in.Description), " ")
		if want := "Default: `" + f.Default + "`."; f.Default != "" && !strings.HasSuffix(desc, want) {
			problems = append(problems, fmt.Sprintf("input %q: the description must end with %q (the default in Go, %s)", name, want, f.GoName))
		}
		if f.Default == "" && strings.Contains(desc, "Default: `") {
			problems = append(problems, fmt.Sprintf("input %q: the description names a default but Go has none (%s)", name, f.GoName))
		}
		if req := strings.HasPrefix(desc, requiredNote); req != f.Required {
			problems = append(problems, fmt.Sprintf("input %q: the description starts with %q: %v, but required in Go: %v (%s)", name, requiredNote, req, f.Required, f.GoName))
		}
		key := ghaction.InputName(name)
		want := fmt.Sprintf("${{ inputs.%s }}", name)
		if v, ok := st.Env[key]; !ok {
			problems = append(problems, fmt.Sprintf("input %q is not passed to %s: add %s: %s to the step's env:", name, s.Binary, key, want))
		} else if strings.TrimSpace(v) != want {
			problems = append(problems, fmt.Sprintf("input %q: env %s is %q, want %q", name, key, v, want))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(goIn)) {
		if _, ok := a.Inputs[name]; !ok {
			problems = append(problems, fmt.Sprintf("Go input %q (%s) is not declared in action.yml", name, goIn[name].GoName))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(st.Env)) {
		if strings.HasPrefix(key, "INPUT_") {
			found := key == "INPUT_CONFIG"
			for name := range a.Inputs {
				found = found || ghaction.InputName(name) == key
			}
			if !found {
				problems = append(problems, fmt.Sprintf("env %s matches no declared input", key))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.Outputs)) {
		if _, ok := goOut[name]; !ok {
			problems = append(problems, fmt.Sprintf("output %q is not a field of the Go Outputs", name))
			continue
		}
		want := fmt.Sprintf("${{ steps.%s.outputs.%s }}", st.ID, name)
		if st.ID == "" || strings.TrimSpace(a.Outputs[name].Value) != want {
			problems = append(problems, fmt.Sprintf("output %q: value is %q, want %q (the step that runs %s needs an id)", name, a.Outputs[name].Value, want, s.Binary))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(goOut)) {
		if _, ok := a.Outputs[name]; !ok {
			problems = append(problems, fmt.Sprintf("Go output %q (%s) is not declared in action.yml", name, goOut[name].GoName))
		}
	}
	return problems
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		// YAML numbers arrive as float64; GitHub passes their text, so
		// 1000000 must not become 1e+06.
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}
