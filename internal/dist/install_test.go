package dist_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// sourceCopy copies what scripts/install.sh builds from (go.mod, go.sum,
// cmd/, internal/ and the script itself) into a new directory, so a test can
// change a source file without touching the checkout.
func sourceCopy(t *testing.T) string {
	t.Helper()
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	for _, top := range []string{"go.mod", "go.sum", "actions", "cmd", "internal", "scripts/install.sh"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// install runs scripts/install.sh as the actions' "Build Gantry binaries"
// step does and returns its output.
func install(t *testing.T, root, dir string, stages ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "bash", append([]string{filepath.Join(root, "scripts", "install.sh")}, stages...)...)
	cmd.Env = append(os.Environ(), "GANTRY_ROOT="+root, "GANTRY_INSTALL_DIR="+dir, "GITHUB_PATH=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh %s: %v\n%s", strings.Join(stages, " "), err, out)
	}
	return string(out)
}

func modTime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// TestInstallKeepsABinaryWhileItsSourcesAreUnchanged: a second install of
// a stage from the same sources keeps the binary (go build is not run);
// a changed source file, a changed binary or a module replaced by a
// directory builds again, and the binary runs.
func TestInstallKeepsABinaryWhileItsSourcesAreUnchanged(t *testing.T) {
	root := sourceCopy(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "gantry-notify")
	runs := func(why string) {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), bin, "--help").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "usage: gantry-notify ") {
			t.Fatalf("%s: %s --help: %v\n%s", why, bin, err, out)
		}
	}

	if out := install(t, root, dir, "notify"); !strings.Contains(out, "built "+bin) {
		t.Fatalf("first install did not build:\n%s", out)
	}
	runs("first install")
	built := modTime(t, bin)
	time.Sleep(10 * time.Millisecond)

	out := install(t, root, dir, "notify")
	if !strings.Contains(out, "up to date: "+bin) || strings.Contains(out, "built "+bin) {
		t.Fatalf("second install from the same sources did not keep the binary:\n%s", out)
	}
	if !modTime(t, bin).Equal(built) {
		t.Fatal("second install from the same sources rewrote the binary")
	}

	// A change anywhere under internal/ (a comment is enough for the key,
	// even if go build would then find nothing to relink).
	src := filepath.Join(root, "internal", "human", "human.go")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, append(b, []byte("\n// changed by the test\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := install(t, root, dir, "notify"); !strings.Contains(out, "built "+bin) {
		t.Fatalf("install after a source change kept the old binary:\n%s", out)
	}
	runs("after a source change")
	if out := install(t, root, dir, "notify"); !strings.Contains(out, "up to date: "+bin) {
		t.Fatalf("install after the rebuild did not record the new sources:\n%s", out)
	}

	// The binary replaced by another program since (gofmt, a Go binary, so
	// go build may overwrite it): built again, whatever the record says.
	other, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	gofmt, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(other)), "bin", "gofmt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, gofmt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out := install(t, root, dir, "notify"); !strings.Contains(out, "built "+bin) {
		t.Fatalf("install kept a binary changed since it was built:\n%s", out)
	}
	runs("after the binary was replaced")

	// go.mod replaces a module: its source may be anywhere, so there is no
	// record and go build decides every time.
	mod := filepath.Join(root, "go.mod")
	gomod, err := os.ReadFile(mod)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mod, append(gomod, []byte("\nreplace example.com/unused => ./unused\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if out := install(t, root, dir, "notify"); !strings.Contains(out, "built "+bin) {
			t.Fatalf("install %d with a replace in go.mod kept the binary without go build:\n%s", i+1, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".gantry-notify.source")); !os.IsNotExist(err) {
		t.Fatalf("a source record was written for a go.mod with a replace (stat: %v)", err)
	}
}
