package ghrelease_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// TestVerifyCommandsRun releases files signed with `cosign sign-blob
// --key` (no transparency log, as the sign stage does in key mode),
// downloads every asset the way `gh release download` does, and runs the
// cosign and sha256sum lines of VERIFY.md exactly as written, with the
// real cosign CLI first on PATH. They pass; after a file is changed, the
// command checking it fails.
func TestVerifyCommandsRun(t *testing.T) {
	t.Parallel()
	cosign := testproc.Tool(t, "cosign")
	path := t.TempDir()
	if err := os.Symlink(cosign, filepath.Join(path, "cosign")); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := []string{
		"PATH=" + path + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"), "SIGSTORE_NO_CACHE=true",
	}
	sh := func(dir string, extra []string, line string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Dir, cmd.Env = dir, append(append([]string{}, env...), extra...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	keys := t.TempDir()
	pw := []string{"COSIGN_PASSWORD=release-test"}
	if out, err := sh(keys, pw, "cosign generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(filepath.Join(keys, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}

	e := newEnv(t)
	const sums = "gantry_v1.2.3_checksums.txt"
	var list strings.Builder
	for i, f := range []string{"gantry-scan_v1.2.3_darwin_arm64.tar.gz", "gantry-scan_v1.2.3_linux_amd64.tar.gz"} {
		data := payload(5000+i, byte(i))
		e.write(t, "dist/"+f, data)
		list.WriteString(sha256hex(data) + "  " + f + "\n")
	}
	e.write(t, "dist/"+sums, []byte(list.String()))
	for _, f := range []string{sums, "gantry-scan_v1.2.3_linux_amd64.tar.gz"} {
		line := "cosign sign-blob --key " + filepath.Join(keys, "cosign.key") + " --bundle " + f + ".sigstore.json --use-signing-config=false --tlog-upload=false --yes " + f
		if out, err := sh(filepath.Join(e.dir, "dist"), pw, line); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	in := e.inputs()
	in.Assets = []string{"dist/gantry*"}
	in.VerifyKey = string(pub) // attached as cosign.pub
	out, err := e.run(t, in)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, e.log)
	}

	dl := t.TempDir()
	for _, a := range e.one(t, "v1.2.3").Assets {
		if err := os.WriteFile(filepath.Join(dl, a.Name), a.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile(filepath.Join(dl, "VERIFY.md"))
	if err != nil || string(doc) != out.Verify {
		t.Fatalf("VERIFY.md asset: %v", err)
	}
	var blobs, checks []string
	sc := bufio.NewScanner(strings.NewReader(string(doc)))
	for sc.Scan() {
		switch l := sc.Text(); {
		case strings.HasPrefix(l, "cosign verify-blob "):
			blobs = append(blobs, l)
		case strings.HasPrefix(l, "sha256sum "):
			checks = append(checks, l)
		case strings.HasPrefix(l, "cosign "):
			t.Errorf("VERIFY.md of a release without an image has %s", l)
		}
	}
	if len(blobs) != 2 || len(checks) != 1 {
		t.Fatalf("VERIFY.md has %d verify-blob and %d sha256sum lines, want 2 and 1:\n%s", len(blobs), len(checks), doc)
	}
	for _, l := range append(blobs, checks...) {
		out, err := sh(dl, nil, l)
		if err != nil {
			t.Errorf("%s: %v\n%s", l, err, out)
		} else {
			t.Logf("%s:\n%s", l, out)
		}
	}

	// Only the archive the user needs: --ignore-missing skips the other.
	if err := os.Remove(filepath.Join(dl, "gantry-scan_v1.2.3_darwin_arm64.tar.gz")); err != nil {
		t.Fatal(err)
	}
	if out, err := sh(dl, nil, checks[0]); err != nil {
		t.Errorf("%s with one archive downloaded: %v\n%s", checks[0], err, out)
	}

	// A changed file: the command checking it fails.
	tamper := func(name string) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dl, name), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("\n")
		f.Close()
	}
	tamper(sums)
	tamper("gantry-scan_v1.2.3_linux_amd64.tar.gz")
	for _, l := range append(blobs, checks...) {
		if out, err := sh(dl, nil, l); err == nil {
			t.Errorf("%s passed after the file was changed:\n%s", l, out)
		}
	}
}
