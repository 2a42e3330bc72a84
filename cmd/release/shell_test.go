package main

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/ghrelease/ghreleasetest"
)

func TestMain(m *testing.M) { actiontest.TestMain(m, main) }

// TestOutsideActions runs gantry-release as a process from a shell, GitLab
// or Jenkins would, in the checkout after a build (workspace): no GITHUB_*
// at all. What a GitHub run takes from GITHUB_REF, GITHUB_REPOSITORY and
// GITHUB_API_URL is given as the inputs tag, repository and api-url; the
// API is ghreleasetest's stand-in for GitHub's releases API over real HTTP.
// Outputs come on stdout, the log is plain on stderr without the token,
// the summary is on stderr, and the exit code is 0 or 1.
func TestOutsideActions(t *testing.T) {
	inputs := func(srv *ghreleasetest.Server, extra map[string]string) map[string]string {
		env := map[string]string{
			"INPUT_TAG":          "v1.2.3",
			"INPUT_REPOSITORY":   "acme/prompt-builder",
			"INPUT_API-URL":      srv.URL,
			"INPUT_TOKEN":        ghreleasetest.Token,
			"INPUT_ASSETS":       "dist/*.tar.gz",
			"INPUT_RELEASE-FILE": "gantry-release.json",
			"INPUT_VERIFY-CERTIFICATE-IDENTITY-REGEXP": identity,
		}
		maps.Copy(env, extra)
		return env
	}

	t.Run("publishes", func(t *testing.T) {
		t.Parallel()
		srv := ghreleasetest.Start(t)
		r := execIn(t, workspace(t), inputs(srv, nil))
		if r.Code != 0 {
			t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
		}
		rels := srv.ReleasesForTag("acme/prompt-builder", "v1.2.3")
		if len(rels) != 1 || rels[0].Draft {
			t.Fatalf("releases %+v, want one published release", rels)
		}
		rel := rels[0]
		outs := actiontest.StdoutOutputs(t, r)
		if outs["release-id"] != strconv.FormatInt(rel.ID, 10) {
			t.Errorf("release-id = %q, want %d", outs["release-id"], rel.ID)
		}
		if want := srv.URL + "/acme/prompt-builder/releases/tag/v1.2.3"; outs["url"] != want {
			t.Errorf("url = %q, want %q", outs["url"], want)
		}
		if outs["notes-source"] != "changelog" {
			t.Errorf("notes-source = %q, want changelog (CHANGELOG.md in the working directory)", outs["notes-source"])
		}
		var assets []string
		if err := json.Unmarshal([]byte(outs["assets"]), &assets); err != nil {
			t.Fatalf("assets output %q is not a JSON list: %v", outs["assets"], err)
		}
		if want := []string{"app_linux_amd64.tar.gz", "app_linux_arm64.tar.gz", "gantry-release.json", "VERIFY.md"}; !slices.Equal(assets, want) || !slices.Equal(rel.AssetNames(), want) {
			t.Errorf("assets output %v, release assets %v, want %v", assets, rel.AssetNames(), want)
		}
		// No GITHUB_SERVER_URL: VERIFY.md's identity is github.com's.
		if doc, _ := rel.Asset("VERIFY.md"); !strings.Contains(string(doc.Data), "cosign verify ghcr.io/acme/prompt-builder@sha256:3b0b") {
			t.Errorf("VERIFY.md:\n%s", doc.Data)
		}
		actiontest.Plain(t, r.Stderr, ghreleasetest.Token)
		if !strings.Contains(r.Stderr, "### Gantry release [v1.2.3]("+outs["url"]+")") || !strings.Contains(r.Stderr, "[app_linux_amd64.tar.gz]") {
			t.Errorf("the summary is not on stderr:\n%s", r.Stderr)
		}
		if strings.Contains(r.Stdout, "###") {
			t.Errorf("the summary is on stdout, which is for outputs only:\n%s", r.Stdout)
		}
	})

	t.Run("no tag or repository", func(t *testing.T) {
		// What a GitHub run takes from GITHUB_REF and GITHUB_REPOSITORY
		// is missing: the error names the inputs to set, and GitHub is
		// not called.
		t.Parallel()
		srv := ghreleasetest.Start(t)
		env := inputs(srv, nil)
		delete(env, "INPUT_TAG")
		delete(env, "INPUT_REPOSITORY")
		r := execIn(t, workspace(t), env)
		if r.Code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.Code, r.Stderr)
		}
		// One error with a line for each input, the last thing logged.
		_, msg, _ := strings.Cut("\n"+r.Stderr, "\nerror: ")
		if !strings.HasPrefix(msg, `input "tag" is empty`) || !strings.Contains(msg, "\n"+`input "repository" is empty`) {
			t.Errorf("the log does not end with an error naming the inputs tag and repository:\n%s", r.Stderr)
		}
		actiontest.Plain(t, r.Stderr, ghreleasetest.Token)
		if r.Stdout != "" {
			t.Errorf("outputs for a failed run:\n%s", r.Stdout)
		}
		if calls := srv.Calls(); len(calls) != 0 {
			t.Errorf("GitHub was called: %v", calls)
		}
	})

	t.Run("unwritable GITHUB_OUTPUT", func(t *testing.T) {
		t.Parallel()
		srv := ghreleasetest.Start(t)
		env := inputs(srv, nil)
		env["GITHUB_OUTPUT"] = actiontest.ReadOnlyOutput(t)
		r := execIn(t, workspace(t), env)
		if r.Code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "::error::") || !strings.Contains(r.Stdout, "GITHUB_OUTPUT") {
			t.Errorf("no error annotation naming GITHUB_OUTPUT:\n%s", r.Stdout)
		}
		actiontest.MaskedFirst(t, r.Stdout, ghreleasetest.Token)
	})
}

// execIn runs gantry-release in dir (its CHANGELOG.md and assets are
// found relative to the working directory).
func execIn(t *testing.T, dir string, env map[string]string, args ...string) actiontest.Result {
	t.Helper()
	cmd := actiontest.Command(t, "gantry-release", env, args...)
	cmd.Dir = dir
	return actiontest.Run(t, cmd)
}
