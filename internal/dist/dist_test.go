package dist_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/dist"
	"github.com/gantry-ci/gantry/internal/dist/disttest"
	"github.com/gantry-ci/gantry/internal/testproc"
)

const version = "v9.8.7"

// fetch runs scripts/fetch.sh as an action step would, with the release
// embedded as the action.yml's env.
func fetch(t *testing.T, r *disttest.Release, toolCache string, extraEnv []string, stages ...string) (string, error) {
	t.Helper()
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", append([]string{filepath.Join(root, "scripts", "fetch.sh")}, stages...)...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"RUNNER_OS=" + disttest.RunnerOS(),
		"RUNNER_ARCH=" + disttest.RunnerArch(),
		"RUNNER_TEMP=" + t.TempDir(),
		"RUNNER_TOOL_CACHE=" + toolCache,
		"GANTRY_RELEASE=" + version,
		"GANTRY_RELEASE_URL=" + r.URL(),
		"GANTRY_RELEASE_SHA256=" + r.SumsText(),
	}, extraEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestFetchInstallsCheckedBinariesAndReusesTheCache(t *testing.T) {
	r := disttest.Start(t, version, "gantry-notify", "gantry")
	cache := t.TempDir()
	out, err := fetch(t, r, cache, nil, "notify", "gantry")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	bin := lines[len(lines)-1]
	if want := filepath.Join(cache, "gantry", "9.8.7", runtime.GOOS+"-"+runtime.GOARCH); bin != want {
		t.Fatalf("bin dir %q, want %q\n%s", bin, want, out)
	}
	for _, name := range []string{"gantry-notify", "gantry"} {
		got, err := exec.Command(filepath.Join(bin, name)).Output()
		if err != nil {
			t.Fatalf("running the installed %s: %v", name, err)
		}
		if want := name + " " + version; strings.TrimSpace(string(got)) != want {
			t.Errorf("%s printed %q, want %q", name, got, want)
		}
	}

	// A second job on the same runner uses the tool cache.
	out, err = fetch(t, r, cache, nil, "notify")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	name := dist.ArchiveName("gantry-notify", version, runtime.GOOS, runtime.GOARCH)
	if n := r.Fetched(name); n != 1 {
		t.Errorf("%s downloaded %d times, want once (then from the tool cache)\n%s", name, n, out)
	}

	// A cached binary changed on disk is not trusted: it is downloaded again.
	if err := os.WriteFile(filepath.Join(bin, "gantry-notify"), []byte("#!/bin/sh\necho evil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = fetch(t, r, cache, nil, "notify")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if n := r.Fetched(name); n != 2 {
		t.Errorf("after the cached binary changed, %s downloaded %d times in all, want 2\n%s", name, n, out)
	}
	got, _ := exec.Command(filepath.Join(bin, "gantry-notify")).Output()
	if strings.Contains(string(got), "evil") {
		t.Errorf("the changed cached binary is still installed")
	}
}

// TestFetchRefusesAMismatchedBinary: the server hands out an archive other
// than the one the release embedded the SHA256 of. The install fails naming
// the archive and both sums, and nothing reaches the tool cache — not even
// the binaries whose archives did match.
func TestFetchRefusesAMismatchedBinary(t *testing.T) {
	r := disttest.Start(t, version, "gantry", "gantry-notify")
	name := dist.ArchiveName("gantry-notify", version, runtime.GOOS, runtime.GOARCH)
	evil := disttest.Archive(t, "gantry-notify", "#!/bin/sh\necho evil\n")
	r.Serve(name, evil)
	cache := t.TempDir()
	out, err := fetch(t, r, cache, nil, "gantry", "notify")
	if err == nil {
		t.Fatalf("fetch installed a binary whose SHA256 does not match:\n%s", out)
	}
	want := r.Sums[1].SHA256
	got := fmt.Sprintf("%x", sha256.Sum256(evil))
	for _, s := range []string{"SHA256 mismatch for " + name, "got " + got, "want " + want, "nothing was installed"} {
		if !strings.Contains(out, s) {
			t.Errorf("the error lacks %q:\n%s", s, out)
		}
	}
	var files []string
	filepath.Walk(cache, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) > 0 {
		t.Errorf("the refused install left files in the tool cache: %v", files)
	}
}

func TestFetchErrors(t *testing.T) {
	r := disttest.Start(t, version, "gantry-notify")
	for _, tc := range []struct {
		name   string
		env    []string
		stages []string
		want   string
	}{
		{"stage not in the release", nil, []string{"scan"}, "no SHA256 for gantry-scan_" + version},
		{"windows", []string{"RUNNER_OS=Windows"}, []string{"notify"}, "not Windows: set from-source: true"},
		{"32-bit", []string{"RUNNER_ARCH=X86"}, []string{"notify"}, "not X86: set from-source: true"},
		{"no sums", []string{"GANTRY_RELEASE_SHA256="}, []string{"notify"}, "embeds no SHA256 sums"},
		{"mirror without the file", []string{"GANTRY_DOWNLOAD_URL=" + r.Server.URL + "/mirror"}, []string{"notify"}, "downloading " + r.Server.URL + "/mirror/gantry-notify_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			out, err := fetch(t, r, cache, tc.env, tc.stages...)
			if err == nil {
				t.Fatalf("fetch succeeded:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("error lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestParseSums(t *testing.T) {
	h := strings.Repeat("ab", 32)
	sums, err := dist.ParseSums(strings.NewReader(h + "  a.tar.gz\n" + h + " *b.tar.gz\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || sums[0].Name != "a.tar.gz" || sums[1].Name != "b.tar.gz" || sums[1].SHA256 != h {
		t.Errorf("parsed %+v", sums)
	}
	for in, want := range map[string]string{
		"":                           "lists no files",
		"abc  a.tar.gz\n":            "64 hex digits",
		h + "\n":                     "64 hex digits",
		h + "  a\n" + h + "  a\n":    "listed twice",
		h + "  ../etc/passwd\n":      "64 hex digits",
		strings.ToUpper(h) + "  a\n": "64 hex digits",
		h + "  \"quoted\".tar.gz\n":  "64 hex digits",
	} {
		if _, err := dist.ParseSums(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSums(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

// copyActions copies the repository's action.yml files into a temp tree.
func copyActions(t *testing.T) string {
	t.Helper()
	root, err := testproc.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := dist.ActionFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755)
		if err := os.WriteFile(filepath.Join(dst, rel), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

type actionYAML struct {
	Runs struct {
		Steps []struct {
			ID  string            `json:"id"`
			Env map[string]string `json:"env"`
		} `json:"steps"`
	} `json:"runs"`
}

// TestEmbedWritesEveryActionsReleaseBlock embeds a release into copies of
// every action.yml: each one's setup step then carries the version, URL and
// exactly the archives' sums (as YAML a runner reads), embedding again
// replaces them, and the checksums file's other lines are not embedded.
func TestEmbedWritesEveryActionsReleaseBlock(t *testing.T) {
	tree := copyActions(t)
	h1, h2, h3 := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)
	rel := dist.Release{Version: version, URL: "https://github.com/gantry-ci/gantry/releases/download/" + version + "/", Sums: []dist.Sum{
		{SHA256: h2, Name: "gantry-scan_" + version + "_linux_amd64.tar.gz"},
		{SHA256: h1, Name: "gantry-build_" + version + "_darwin_arm64.tar.gz"},
		{SHA256: h3, Name: "gantry_" + version + "_checksums.txt.sigstore.json"},
	}}
	changed, err := dist.Embed(tree, rel)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := dist.ActionFiles(tree)
	if len(changed) != len(files) {
		t.Errorf("embedded into %d of %d action.yml files: %v (every action installs Gantry binaries, so each must carry the block)", len(changed), len(files), changed)
	}
	wantSums := h1 + "  gantry-build_" + version + "_darwin_arm64.tar.gz\n" + h2 + "  gantry-scan_" + version + "_linux_amd64.tar.gz\n"
	for _, f := range changed {
		b, _ := os.ReadFile(f)
		var a actionYAML
		if err := yaml.Unmarshal(b, &a); err != nil {
			t.Fatalf("%s after embedding is not YAML: %v", f, err)
		}
		var env map[string]string
		for _, s := range a.Runs.Steps {
			if _, ok := s.Env["GANTRY_RELEASE"]; ok {
				env = s.Env
			}
		}
		if env == nil {
			t.Fatalf("%s: no step has GANTRY_RELEASE", f)
		}
		if env["GANTRY_RELEASE"] != version || env["GANTRY_RELEASE_URL"] != "https://github.com/gantry-ci/gantry/releases/download/"+version || env["GANTRY_RELEASE_SHA256"] != wantSums {
			t.Errorf("%s: embedded env %q", f, env)
		}
	}

	// Embedding the next release replaces the block instead of adding one.
	rel2 := rel
	rel2.Version = "v9.8.8"
	rel2.URL = "https://github.com/gantry-ci/gantry/releases/download/v9.8.8"
	rel2.Sums = []dist.Sum{{SHA256: h3, Name: "gantry-scan_v9.8.8_linux_amd64.tar.gz"}}
	if _, err := dist.Embed(tree, rel2); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(tree, "action.yml"))
	if strings.Contains(string(b), version) || strings.Count(string(b), "GANTRY_RELEASE_SHA256:") != 1 {
		t.Errorf("re-embedding left the old release or a second block:\n%s", b)
	}
}

func TestEmbedRefusesBadInputWithoutWriting(t *testing.T) {
	tree := copyActions(t)
	before, _ := os.ReadFile(filepath.Join(tree, "action.yml"))
	good := []dist.Sum{{SHA256: strings.Repeat("1", 64), Name: "gantry_" + version + "_linux_amd64.tar.gz"}}
	for _, tc := range []struct {
		rel  dist.Release
		want string
	}{
		{dist.Release{Version: "1.2.3", URL: "https://x", Sums: good}, "want a tag like v1.2.3"},
		{dist.Release{Version: version, URL: "ftp://x", Sums: good}, "want an http(s) URL"},
		{dist.Release{Version: version, URL: "https://x", Sums: []dist.Sum{{SHA256: good[0].SHA256, Name: "notes.md"}}}, "no binary archive of " + version},
	} {
		if _, err := dist.Embed(tree, tc.rel); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Embed(%+v) = %v, want an error with %q", tc.rel, err, tc.want)
		}
	}
	// A block without its end marker in one file: no file is written.
	broken := filepath.Join(tree, "actions", "zz", "action.yml")
	os.MkdirAll(filepath.Dir(broken), 0o755)
	os.WriteFile(broken, []byte("runs:\n  steps:\n    - env:\n        # gantry:release\n        GANTRY_RELEASE: \"\"\n"), 0o644)
	if _, err := dist.Embed(tree, dist.Release{Version: version, URL: "https://x", Sums: good}); err == nil || !strings.Contains(err.Error(), "without a matching") {
		t.Errorf("a block without its end marker: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(tree, "action.yml"))
	if !bytes.Equal(before, after) {
		t.Errorf("a refused embed changed action.yml")
	}
}

var yamlUnmarshal = func(b []byte, v any) error { return yaml.Unmarshal(b, v) }

func startFileServer(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.StripPrefix("/download/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, file, _ := strings.Cut(r.URL.Path, "/")
		http.ServeFile(w, r, filepath.Join(dir, filepath.Base(file)))
	})))
	t.Cleanup(srv.Close)
	return srv.URL
}
