// Package workflowtest runs GitHub Actions workflows for real with act in
// host mode (no Docker): local composite actions, outputs between steps and
// reusable workflows all run as on a runner. Tests use it to prove that an
// action.yml wires its inputs to the binary and its outputs back.
package workflowtest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// SetupGoSHA is the actions/setup-go commit Gantry's actions pin.
const SetupGoSHA = "d35c59abb061a4a6fb18e82ac0862c26744d6ab5"

// Act is an act binary and the repository it runs in.
type Act struct {
	Binary  string            // path to act
	Repo    string            // repository root (a git checkout)
	Secrets map[string]string // passed as --secret (GITHUB_TOKEN becomes github.token)
	Vars    map[string]string // passed as --var (the vars context: repository variables)
	// CacheDir holds act's action cache, host workspaces and tool cache.
	// Empty gives every run its own directory, removed afterwards (act
	// would otherwise leave a copy of the repository per run in
	// ~/.cache/act); set it to keep the tool cache across runs.
	CacheDir string
}

// Find locates act: $ACT, else bin/act under the repository root.
func Find(repo string) (Act, error) {
	bin := os.Getenv("ACT")
	if bin == "" {
		bin = filepath.Join(repo, "bin", "act")
	}
	if _, err := os.Stat(bin); err != nil {
		return Act{}, fmt.Errorf("act not found at %s: run `make tools` (or set ACT)", bin)
	}
	return Act{Binary: bin, Repo: repo}, nil
}

// New finds act and the repository for a test, failing it (never skipping)
// when act is missing. It also checks that every action pins the
// actions/setup-go commit the offline stand-in replaces, so a bumped pin
// fails here with a clear message instead of as a network error inside act.
func New(t testing.TB) Act {
	t.Helper()
	repo, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	a, err := Find(repo)
	if err != nil {
		t.Fatal(err)
	}
	ymls, _ := filepath.Glob(filepath.Join(repo, "actions", "*", "action.yml"))
	ymls = append(ymls, filepath.Join(repo, "action.yml"))
	for _, p := range ymls {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range setupGoRE.FindAllStringSubmatch(string(b), -1) {
			if m[1] != SetupGoSHA {
				t.Fatalf("%s pins actions/setup-go@%s, but workflowtest.SetupGoSHA is %s: update the constant", p, m[1], SetupGoSHA)
			}
		}
	}
	return a
}

var setupGoRE = regexp.MustCompile(`actions/setup-go@([0-9a-f]{40})`)

// installDir is where source installs go by default: bin/ of the checkout
// the tests run from (not of repo, which may be a copy made by a test).
func installDir(repo string) (string, error) {
	root, err := testproc.RepoRoot()
	if err != nil {
		return "", fmt.Errorf("install directory for act runs in %s: %w", repo, err)
	}
	return filepath.Join(root, "bin"), nil
}

// Run runs one workflow file for event with the given --env values and
// returns act's combined log.
func (a Act) Run(ctx context.Context, event, workflow string, env map[string]string) (string, error) {
	return a.RunWith(ctx, event, workflow, env, nil)
}

// RunWith is Run with more offline stand-ins for remote actions: each
// key (owner/repo@sha) is served from its directory.
func (a Act) RunWith(ctx context.Context, event, workflow string, env, localRepos map[string]string) (string, error) {
	args := []string{
		event,
		"-W", workflow,
		"-P", "ubuntu-latest=-self-hosted",
		"--container-daemon-socket", "-",
		"--no-cache-server",
		"--action-offline-mode",
		// Remote actions cannot be fetched offline; stand-ins live in
		// testdata/workflows/stubs.
		"--local-repository", "actions/setup-go@" + SetupGoSHA + "=" + filepath.Join(a.Repo, "testdata", "workflows", "stubs", "setup-go"),
	}
	repos := make([]string, 0, len(localRepos))
	for k := range localRepos {
		repos = append(repos, k)
	}
	sort.Strings(repos)
	for _, k := range repos {
		args = append(args, "--local-repository", k+"="+localRepos[k])
	}
	for _, k := range sortedKeys(a.Secrets) {
		args = append(args, "--secret", k+"="+a.Secrets[k])
	}
	for _, k := range sortedKeys(a.Vars) {
		args = append(args, "--var", k+"="+a.Vars[k])
	}
	if _, ok := env["GANTRY_INSTALL_DIR"]; !ok {
		// The actions' source installs (scripts/install.sh) build into one
		// directory kept across runs and tests, as on a self-hosted runner:
		// the checkout's bin/, where `make build` puts the same binaries
		// with the same flags. A stage is linked at most once (go build
		// leaves a binary built from the same sources alone, and
		// install.sh does not even ask it again while the sources are
		// unchanged), not once per action per run; a run in a copy of the
		// repository (same sources) shares it too.
		dir, err := installDir(a.Repo)
		if err != nil {
			return "", err
		}
		env = maps.Clone(env)
		if env == nil {
			env = map[string]string{}
		}
		env["GANTRY_INSTALL_DIR"] = dir
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--env", k+"="+env[k])
	}
	cache := a.CacheDir
	if cache == "" {
		dir, err := os.MkdirTemp("", "gantry-act-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(dir)
		cache = dir
	}
	args = append(args, "--action-cache-path", cache)
	cmd := exec.CommandContext(ctx, a.Binary, args...)
	cmd.Dir = a.Repo
	cmd.Stdin = strings.NewReader("")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("act %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
