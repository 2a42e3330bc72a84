// Package golden compares test output with files in testdata/, the way
// actionlint and goreleaser keep expected output beside their tests.
// Importing it registers the -update flag; only test binaries import it.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// Check compares got with testdata/<Test>.golden (subtests in a directory
// per test), or rewrites that file under -update.
func Check(t testing.TB, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", t.Name()+".golden")
	top := strings.Split(t.Name(), "/")[0]
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run '^%s$' -update to create it)", err, top)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test -run '^%s$' -update after checking the change):\n%s", path, top, LineDiff(string(want), string(got)))
	}
}

// LineDiff lists the lines that differ, numbered; enough to spot a change
// without a diff library.
func LineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}
