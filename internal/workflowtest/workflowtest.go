// Package workflowtest runs GitHub Actions workflows for real with act in
// host mode (no Docker): local composite actions, outputs between steps and
// reusable workflows all run as on a runner. Tests use it to prove that an
// action.yml wires its inputs to the binary and its outputs back.
package workflowtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// SetupGoSHA is the actions/setup-go commit Gantry's actions pin.
const SetupGoSHA = "d35c59abb061a4a6fb18e82ac0862c26744d6ab5"

// Act is an act binary and the repository it runs in.
type Act struct {
	Binary string // path to act
	Repo   string // repository root (a git checkout)
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

// Run runs one workflow file for event with the given --env values and
// returns act's combined log.
func (a Act) Run(ctx context.Context, event, workflow string, env map[string]string) (string, error) {
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
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--env", k+"="+env[k])
	}
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
