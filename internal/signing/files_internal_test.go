package signing

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// failingSigner signs every blob except one whose content holds fail.
type failingSigner struct{ fail []byte }

func (f failingSigner) SignStatement(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("not used")
}
func (f failingSigner) SignBlob(_ context.Context, data []byte) ([]byte, error) {
	if bytes.Contains(data, f.fail) {
		return nil, errors.New("fulcio: 503 Service Unavailable")
	}
	return []byte(`{"fake":true}`), nil
}
func (f failingSigner) Describe() string { return "fake" }

// TestSignFilesAllOrNothing: when one file fails to sign, no file gets a
// bundle, not even those signed before it; when all are signed, all get
// one.
func TestSignFilesAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	var files []string
	var contents [][]byte
	for _, n := range []string{"a.txt", "b.txt", "c.txt", "d.txt"} {
		p := filepath.Join(dir, n)
		c := []byte("content of " + n)
		if err := os.WriteFile(p, c, 0o644); err != nil {
			t.Fatal(err)
		}
		files, contents = append(files, p), append(contents, c)
	}
	_, err := signFiles(t.Context(), failingSigner{fail: []byte("c.txt")}, files, contents, 1, ghaction.Discard{})
	if err == nil || !strings.Contains(err.Error(), "signing "+files[2]+": fulcio: 503") {
		t.Fatalf("err = %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 4 {
		t.Errorf("files after a failed run (want only the four signed files, no bundles or temporary files): %v", m)
	}
	signed, err := signFiles(t.Context(), failingSigner{fail: []byte("none")}, files, contents, 2, ghaction.Discard{})
	if err != nil || len(signed) != 4 {
		t.Fatalf("%v %+v", err, signed)
	}
	for _, s := range signed {
		if b, err := os.ReadFile(s.Bundle); err != nil || string(b) != "{\"fake\":true}\n" {
			t.Errorf("bundle %s: %q %v", s.Bundle, b, err)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}
