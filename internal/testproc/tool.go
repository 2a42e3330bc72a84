package testproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FindTool locates a CLI the tests run (cosign, syft, trivy, fulcio ...):
// $NAME (upper case, dashes as underscores) when set, else bin/<name> under
// the repository root, where `make tools` builds it.
func FindTool(name string) (string, error) {
	env := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	bin := os.Getenv(env)
	if bin == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", fmt.Errorf("%s not found (%v): run `make tools` or set %s", name, err, env)
		}
		bin = filepath.Join(root, "bin", name)
	}
	fi, err := os.Stat(bin)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s not found at %s: run `make tools` or set %s", name, bin, env)
	}
	return bin, nil
}

// Tool is FindTool for a test: a missing tool fails the test (never skips
// it), with the command that installs it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	bin, err := FindTool(name)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
