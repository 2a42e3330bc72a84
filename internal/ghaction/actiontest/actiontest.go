// Package actiontest holds the checks the stage binaries' tests share: the
// step outputs a run wrote, and a secret masked before anything else was
// logged and never shown again.
package actiontest

import (
	"os"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Outputs reads the GITHUB_OUTPUT file a step wrote.
func Outputs(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := ghaction.ParseOutputFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// MaskedFirst checks that the log's first line masks secret and that the
// secret appears nowhere after it.
func MaskedFirst(t testing.TB, log, secret string) {
	t.Helper()
	first, rest, _ := strings.Cut(log, "\n")
	if first != "::add-mask::"+secret {
		t.Errorf("the first line of the log is %q, want the secret's mask", first)
	}
	if strings.Contains(rest, secret) {
		t.Errorf("the secret appears in the log after its mask:\n%s", rest)
	}
}
