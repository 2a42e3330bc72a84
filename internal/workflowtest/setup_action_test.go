package workflowtest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/dist"
	"github.com/gantry-ci/gantry/internal/dist/disttest"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// releaseTree is a git checkout holding Gantry's action.yml files and
// scripts but no Go source, with rel embedded as Gantry's release workflow
// embeds a release: nothing can be built there, so whatever runs was
// downloaded.
func releaseTree(t *testing.T, repo string, rel *disttest.Release) string {
	t.Helper()
	tree := t.TempDir()
	for _, f := range []string{"action.yml", "actions/notify/action.yml", "scripts/locate.sh", "scripts/fetch.sh", "scripts/install.sh", "go.mod", "testdata/workflows/setup-action.yml", "testdata/workflows/stubs/setup-go/action.yml"} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(tree, f)
		if f == "testdata/workflows/setup-action.yml" {
			dst = filepath.Join(tree, ".github", "workflows", "setup.yml")
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		mode := os.FileMode(0o644)
		if strings.HasSuffix(f, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(dst, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dist.Embed(tree, dist.Release{Version: rel.Version, URL: rel.URL(), Sums: rel.Sums}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "-m", "Release " + rel.Version},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = tree
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return tree
}

// TestSetupActionInstallsReleasedBinaries runs the root action and a stage
// action with act on a release commit: the binaries are downloaded, checked
// against the SHA256 sums embedded in action.yml, kept in the tool cache and
// put on PATH; a second job on the same runner takes them from the cache.
// Served an archive that differs from the embedded sum, the action refuses
// it and installs nothing.
func TestSetupActionInstallsReleasedBinaries(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	// A version of its own, so no earlier run's tool cache can answer.
	semver := fmt.Sprintf("0.0.%d-test.%d", os.Getpid(), time.Now().UnixNano())
	version := "v" + semver
	rel := disttest.Start(t, version, "gantry-notify", "gantry")
	tree := releaseTree(t, act.Repo, rel)
	// One act cache for the three runs: the second finds the tool cache the
	// first filled, as a second job on the same runner does.
	a := workflowtest.Act{Binary: act.Binary, Repo: tree, CacheDir: t.TempDir()}
	notify := rel.Archive("gantry-notify")
	var cache string // the tool cache's directory of this version
	t.Cleanup(func() {
		if cache != "" {
			os.RemoveAll(cache)
		}
	})

	run := func(t *testing.T) (map[string]string, string, error) {
		result := t.TempDir()
		log, err := a.Run(t.Context(), "push", ".github/workflows/setup.yml", map[string]string{
			"RESULT": result,
		})
		b, rerr := os.ReadFile(filepath.Join(result, "outputs"))
		if rerr != nil {
			return nil, log, err
		}
		out := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			k, v, _ := strings.Cut(l, "=")
			out[k] = v
		}
		return out, log, err
	}

	t.Run("release", func(t *testing.T) {
		out, log, err := run(t)
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		want := filepath.Join("gantry", semver, runtime.GOOS+"-"+runtime.GOARCH)
		if out["mode"] != "release" || !strings.HasSuffix(out["bin-dir"], want) || out["which"] != filepath.Join(out["bin-dir"], "gantry-notify") {
			t.Fatalf("outputs %v: want mode release and the binaries on PATH from the tool cache, in …/%s\n%s", out, want, log)
		}
		cache = filepath.Dir(out["bin-dir"])
		if out["notify"] != "gantry-notify "+version || out["gantry"] != "gantry "+version {
			t.Errorf("the binaries on PATH printed %q and %q, want the released ones", out["notify"], out["gantry"])
		}
		if !strings.Contains(log, "| gantry-notify "+version) {
			t.Errorf("the notify stage action did not run the released gantry-notify:\n%s", log)
		}
		if n := rel.Fetched(notify); n != 1 {
			t.Errorf("%s downloaded %d times, want once (the stage action reuses the tool cache)", notify, n)
		}
	})

	t.Run("cached", func(t *testing.T) {
		out, log, err := run(t)
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		if out["notify"] != "gantry-notify "+version {
			t.Errorf("outputs %v", out)
		}
		if n := rel.Fetched(notify); n != 1 {
			t.Errorf("%s downloaded %d times after a second job, want once (tool cache)", notify, n)
		}
	})

	t.Run("mismatch", func(t *testing.T) {
		if cache == "" {
			t.Fatal("the first run did not report its tool cache")
		}
		os.RemoveAll(cache)
		evil := disttest.Archive(t, "gantry-notify", "#!/bin/sh\necho evil\n")
		rel.Serve(notify, evil)
		out, log, err := run(t)
		if err == nil {
			t.Fatalf("the setup action installed an archive whose SHA256 does not match the embedded one:\n%s", log)
		}
		if out != nil {
			t.Errorf("the job went on after the refused install: %v", out)
		}
		if !strings.Contains(log, "SHA256 mismatch for "+notify) || !strings.Contains(log, "want "+rel.Sums[0].SHA256) {
			t.Errorf("the log does not name the archive and the embedded SHA256:\n%s", log)
		}
		if strings.Contains(log, "evil") && !strings.Contains(log, "echo evil") {
			t.Errorf("the refused binary ran:\n%s", log)
		}
		entries, _ := filepath.Glob(filepath.Join(cache, "*", "*"))
		if len(entries) > 0 {
			t.Errorf("the refused install left %v in the tool cache", entries)
		}
	})
}
