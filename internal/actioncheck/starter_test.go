package actioncheck_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The starter workflows in workflows/ call Gantry's reusable workflows only
// with inputs, secrets and outputs those declare, give each calling job at
// least the permissions the called jobs ask for, and follow the rules every
// workflow here follows: permissions per job, SHA-pinned actions, no
// expressions in run: scripts.
func TestStarterWorkflows(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, "workflows", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no starter workflows in workflows/")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			checkStarter(t, root, file)
		})
	}
	// Guard against a vacuous pass: the deploy path really calls Gantry.
	for _, name := range []string{"ship.yml", "release.yml", "production.yml", "security.yml"} {
		raw, err := os.ReadFile(filepath.Join(root, "workflows", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(string(raw), "uses: gantry-ci/gantry/.github/workflows/") {
			t.Errorf("%s calls no Gantry reusable workflow", name)
		}
	}
}

var (
	reusableRef = regexp.MustCompile(`^gantry-ci/gantry/\.github/workflows/([a-z-]+\.yml)@([0-9a-f]{40})$`)
	identitySHA = regexp.MustCompile(`verify-certificate-identity-regexp: .*build-and-push\\\.yml@([0-9a-f]{40})\$`)
	pinnedUse   = regexp.MustCompile(`^\s*(?:- )?uses: ([^@\s]+)@([0-9a-f]{40}) # v?\d[\w.-]*\s*$`)
	// Until Gantry has a release the starters pin a commit of main, and
	// their comment says so rather than name a version that does not exist.
	gantryMainPin = regexp.MustCompile(`^\s*(?:- )?uses: gantry-ci/gantry/\S+@[0-9a-f]{40} # main, \d{4}-\d{2}-\d{2} \(no Gantry release yet\)\s*$`)
	stepUseLine   = regexp.MustCompile(`^\s*(?:- )?uses: (\S+)`)
	needsOutputs  = regexp.MustCompile(`needs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)`)
)

// reusable is the workflow_call interface of one called workflow.
type reusable struct {
	inputs   map[string]map[string]any
	secrets  map[string]any
	outputs  map[string]any
	maxPerms map[string]string
}

func checkStarter(t *testing.T, root, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if !strings.HasPrefix(text, "# ") {
		t.Errorf("does not start with a comment block")
	}

	// Every remote action and every Gantry workflow is pinned by full SHA
	// with a version comment.
	for i, line := range strings.Split(text, "\n") {
		m := stepUseLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[1], "./") {
			continue
		}
		if !pinnedUse.MatchString(line) && !gantryMainPin.MatchString(line) {
			t.Errorf("line %d: %q is not pinned by commit SHA with a version comment", i+1, strings.TrimSpace(line))
		}
	}

	var wf map[string]any
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatalf("parsing: %v", err)
	}
	checkActionSteps(t, root, wf)
	if p, ok := wf["permissions"].(map[string]any); !ok || len(p) != 0 {
		t.Errorf("top-level permissions is %v, want {}", wf["permissions"])
	}
	jobs, _ := wf["jobs"].(map[string]any)
	if len(jobs) == 0 {
		t.Fatal("no jobs")
	}
	called := map[string]reusable{} // job ID → its reusable workflow
	for id, j := range jobs {
		job := j.(map[string]any)
		if uses, _ := job["uses"].(string); uses != "" {
			m := reusableRef.FindStringSubmatch(uses)
			if m == nil {
				t.Errorf("job %s: uses %q, want gantry-ci/gantry/.github/workflows/<file>@<commit SHA>", id, uses)
				continue
			}
			// A keyless signature made by build-and-push called at a SHA
			// carries that SHA in its identity: the deploy's identity
			// check must name the same commit, or every deploy is refused.
			for _, im := range identitySHA.FindAllStringSubmatch(text, -1) {
				if im[1] != m[2] {
					t.Errorf("job %s: calls Gantry at %s but verifies the signing identity at %s", id, m[2], im[1])
				}
			}
			called[id] = loadReusable(t, root, m[1], m[2])
		}
	}
	for id, j := range jobs {
		job := j.(map[string]any)
		perms, ok := job["permissions"].(map[string]any)
		if !ok {
			t.Errorf("job %s: no permissions: block", id)
		}
		for i, s := range asSlice(job["steps"]) {
			if run, _ := s.(map[string]any)["run"].(string); strings.Contains(run, "${{") {
				t.Errorf("job %s step %d: run: interpolates an expression; pass it through env:", id, i+1)
			}
		}
		r, ok := called[id]
		if !ok {
			continue
		}
		with, _ := job["with"].(map[string]any)
		// Every caller of build-and-push.yml signs with its identity: a
		// deploy that checks the identity must check the source
		// repository too, or another repository's image passes.
		if _, ok := with["verify-certificate-identity-regexp"]; ok {
			if with["verify-source-repository"] != "${{ github.repository }}" {
				t.Errorf("job %s: verifies the signing identity but not verify-source-repository: ${{ github.repository }}", id)
			}
		}
		for name := range with {
			if _, ok := r.inputs[name]; !ok {
				t.Errorf("job %s: input %q is not declared by the called workflow", id, name)
			}
		}
		for name, in := range r.inputs {
			if req, _ := in["required"].(bool); req {
				if _, ok := with[name]; !ok {
					t.Errorf("job %s: required input %q is missing", id, name)
				}
			}
		}
		secrets, _ := job["secrets"].(map[string]any)
		for name := range secrets {
			if _, ok := r.secrets[name]; !ok {
				t.Errorf("job %s: secret %q is not declared by the called workflow", id, name)
			}
		}
		// Outputs of another called workflow that this job reads exist.
		for _, v := range append(values(with), values(secrets)...) {
			for _, m := range needsOutputs.FindAllStringSubmatch(v, -1) {
				if src, ok := called[m[1]]; ok {
					if _, ok := src.outputs[m[2]]; !ok {
						t.Errorf("job %s: needs.%s.outputs.%s is not an output of that workflow", id, m[1], m[2])
					}
				}
			}
		}
		// The caller's permissions are the ceiling of the called jobs'.
		for scope, want := range r.maxPerms {
			if level(perms[scope]) < level(want) {
				t.Errorf("job %s: permission %s is %v, the called workflow needs %s", id, scope, perms[scope], want)
			}
		}
	}
}

// loadReusable reads a called workflow as it is at the commit the starter
// pins: what a team that copies the starter gets.
func loadReusable(t *testing.T, root, file, commit string) reusable {
	t.Helper()
	path := commit + ":.github/workflows/" + file
	git := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(t.Context(), "git", args...)
		cmd.Dir = root
		return cmd.Output()
	}
	raw, err := git("show", path)
	if err != nil {
		// A shallow clone lacks the history: the called workflow as it is
		// now is the best there is (a full clone checks the pin itself).
		if shallow, serr := git("rev-parse", "--is-shallow-repository"); serr == nil && strings.TrimSpace(string(shallow)) == "true" {
			t.Logf("shallow clone: %s is not here; checking against the working tree's %s", commit, file)
			if raw, err = os.ReadFile(filepath.Join(root, ".github", "workflows", file)); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Fatalf("the starter pins Gantry at %s, and git show %s failed (%v): pin a commit of main's history", commit, path, err)
		}
	}
	var wf map[string]any
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	// YAML 1.1 reads the key on as true.
	on, _ := wf["on"].(map[string]any)
	if on == nil {
		on, _ = wf["true"].(map[string]any)
	}
	call, _ := on["workflow_call"].(map[string]any)
	if call == nil {
		t.Fatalf("%s is not a reusable workflow", path)
	}
	r := reusable{inputs: map[string]map[string]any{}, maxPerms: map[string]string{}}
	for name, in := range asMap(call["inputs"]) {
		r.inputs[name] = asMap(in)
	}
	r.secrets = asMap(call["secrets"])
	r.outputs = asMap(call["outputs"])
	for _, j := range asMap(wf["jobs"]) {
		for scope, lv := range asMap(asMap(j)["permissions"]) {
			if s, _ := lv.(string); level(s) > level(r.maxPerms[scope]) {
				r.maxPerms[scope] = s
			}
		}
	}
	if len(r.inputs) == 0 || len(r.maxPerms) == 0 {
		t.Fatalf("%s: no inputs or permissions read", path)
	}
	return r
}

func level(v any) int {
	s, _ := v.(string)
	return slices.Index([]string{"none", "read", "write"}, s)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func values(m map[string]any) []string {
	var out []string
	for _, v := range m {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

var gantryAction = regexp.MustCompile(`^gantry-ci/gantry/actions/([a-z]+)@([0-9a-f]{40})$`)

// checkActionSteps checks every step that uses a Gantry action against
// that action.yml at the pinned commit: each with: key is one of its
// inputs, and the action takes the config input, so the inputs a starter
// leaves to gantry.yaml are read from it at that commit.
func checkActionSteps(t *testing.T, root string, wf map[string]any) {
	t.Helper()
	for id, j := range asMap(wf["jobs"]) {
		steps, _ := asMap(j)["steps"].([]any)
		for i, st := range steps {
			step := asMap(st)
			uses, _ := step["uses"].(string)
			m := gantryAction.FindStringSubmatch(uses)
			if m == nil {
				continue
			}
			path := m[2] + ":actions/" + m[1] + "/action.yml"
			cmd := exec.CommandContext(t.Context(), "git", "show", path)
			cmd.Dir = root
			raw, err := cmd.Output()
			if err != nil {
				if out, serr := exec.Command("git", "-C", root, "rev-parse", "--is-shallow-repository").Output(); serr == nil && strings.TrimSpace(string(out)) == "true" {
					t.Logf("shallow clone: %s is not here; checking against the working tree", path)
					if raw, err = os.ReadFile(filepath.Join(root, "actions", m[1], "action.yml")); err != nil {
						t.Fatal(err)
					}
				} else {
					t.Fatalf("job %s step %d pins %s, and git show failed (%v): pin a commit of main's history", id, i+1, path, err)
				}
			}
			var action struct {
				Inputs map[string]any `json:"inputs"`
			}
			if err := yaml.Unmarshal(raw, &action); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if _, ok := action.Inputs["config"]; !ok {
				t.Errorf("job %s step %d: %s has no config input at %s: that commit's actions do not read gantry.yaml", id, i+1, m[1], m[2])
			}
			for key := range asMap(step["with"]) {
				if _, ok := action.Inputs[key]; !ok {
					t.Errorf("job %s step %d: with: %s is no input of actions/%s at %s", id, i+1, key, m[1], m[2])
				}
			}
		}
	}
}
