package workflowtest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/dist"
	"github.com/gantry-ci/gantry/internal/ghrelease/ghreleasetest"
	"github.com/gantry-ci/gantry/internal/sigstoretest"
	"github.com/gantry-ci/gantry/internal/testproc"
	"github.com/gantry-ci/gantry/internal/workflowtest"
)

// TestPublish runs Gantry's own release workflow, .github/workflows/publish.yml,
// with act for a pushed tag, in a copy of the repository whose origin is a
// local bare repository, against a private Sigstore (OIDC issuer, Fulcio,
// Rekor v2, timestamp authority, a stand-in of GitHub's OIDC token
// endpoint) and a stand-in of the GitHub releases API. The matrix job
// cross-compiles gantry-notify for the four platforms (GANTRY_DIST_STAGES
// keeps it cheap); then, as a user of the release would check:
//
//   - origin: the version tag and the major tag point at one new commit whose
//     parent is the tagged commit and which changes only the embedded block
//     of the action.yml files: the version, the download URL and the SHA256
//     of every archive on the release; the branch is untouched.
//   - the GitHub Release of the tag: published, notes from the CHANGELOG
//     section, every archive byte for byte as dist.sh packed it, the SPDX and
//     CycloneDX SBOMs of each platform's binaries, the checksums file (its
//     lines match the assets) and its Sigstore bundle, which cosign
//     verify-blob accepts for publish.yml's identity against the private
//     trusted root (and refuses for changed checksums), and VERIFY.md, whose
//     cosign and sha256sum commands pass in a directory of the assets.
//   - the release installs: scripts/fetch.sh of the release commit, with the
//     values embedded in its actions/notify/action.yml and the assets served
//     as a mirror, installs the gantry-notify dist.sh built, and it runs.
func TestPublish(t *testing.T) {
	t.Parallel()
	act := workflowtest.New(t)
	const (
		version    = "v9.9.9"
		major      = "v9"
		repository = "gantry-ci/gantry"
	)
	began := time.Now()
	repo, origin, tagged := publishRepo(t, act.Repo, version)
	gh := ghreleasetest.Start(t)
	sig := sigstoretest.Start(t, sigstoretest.Options{TLog: true})
	workflowRef := repository + "/.github/workflows/publish.yml@refs/tags/" + version
	claims := sigstoretest.DefaultClaims()
	claims.Repository, claims.RepositoryOwner, claims.RepositoryVisibility = repository, "gantry-ci", "public"
	claims.Ref, claims.RefType, claims.SHA = "refs/tags/"+version, "tag", tagged
	claims.Workflow, claims.WorkflowRef, claims.WorkflowSHA = "publish", workflowRef, tagged
	claims.JobWorkflowRef, claims.JobWorkflowSHA = workflowRef, tagged
	sig.Claims = claims
	tokenURL, requestToken := sig.ActionsTokenServer(t)
	t.Logf("repository, GitHub API and Sigstore ready in %v", time.Since(began).Round(time.Millisecond))

	a := workflowtest.Act{
		Binary:  act.Binary,
		Repo:    repo,
		Secrets: map[string]string{"GITHUB_TOKEN": gh.Token},
		Vars: map[string]string{
			"GANTRY_SIGNING_CONFIG": sig.SigningConfig,
			"GANTRY_TRUSTED_ROOT":   sig.TrustedRoot,
			"GANTRY_OIDC_ISSUER":    sig.IssuerURL,
		},
	}
	handoff := t.TempDir()
	start := time.Now()
	log, err := runReusable(t.Context(), t, a, ".github/workflows/publish.yml", map[string]string{
		// act takes github.ref (and from it github.ref_name) and
		// github.repository from these.
		"GITHUB_REF":        "refs/tags/" + version,
		"GITHUB_REPOSITORY": repository,
		"GITHUB_API_URL":    gh.URL,

		// A runner's git: no configuration of this machine's user.
		"GIT_CONFIG_GLOBAL": os.DevNull,

		"GANTRY_ACT_HANDOFF":             handoff,
		"GANTRY_DIST_STAGES":             "notify",
		"ACTIONS_ID_TOKEN_REQUEST_URL":   tokenURL,
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": requestToken,
	})
	t.Logf("act ran publish.yml in %v", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for _, line := range strings.Split(log, "\n") {
		if (strings.Contains(line, gh.Token) || strings.Contains(line, requestToken)) && !strings.Contains(line, "add-mask") {
			t.Errorf("a token appears in the workflow log: %s", line)
		}
	}

	// What dist.sh packed, handed from the matrix jobs to the release job.
	archives := map[string][]byte{}
	var platforms []string
	for _, p := range dist.Platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		platforms = append(platforms, goos+"_"+goarch)
		name := dist.ArchiveName("gantry-notify", version, goos, goarch)
		b, err := os.ReadFile(filepath.Join(handoff, "dist-"+goos+"-"+goarch, "dist", name))
		if err != nil {
			t.Fatalf("the binaries job for %s handed over no %s: %v\n%s", p, name, err, log)
		}
		archives[name] = b
	}

	// The GitHub Release.
	rels := gh.ReleasesForTag(repository, version)
	if len(rels) != 1 {
		t.Fatalf("%d releases for %s in %s, want 1 (calls: %v)\n%s", len(rels), version, repository, gh.Calls(), log)
	}
	rel := rels[0]
	if rel.Draft || rel.Prerelease {
		t.Errorf("release draft=%v prerelease=%v, want published and not a prerelease", rel.Draft, rel.Prerelease)
	}
	if !strings.Contains(rel.Body, publishChangelogLine) {
		t.Errorf("the release notes are not the CHANGELOG section of %s:\n%s", version, rel.Body)
	}
	checksums := "gantry_" + version + "_checksums.txt"
	want := []string{checksums, checksums + ".sigstore.json"}
	for name := range archives {
		want = append(want, name)
	}
	for _, p := range platforms {
		for _, f := range []string{"spdx", "cyclonedx"} {
			want = append(want, fmt.Sprintf("gantry_%s_%s.%s.json", version, p, f))
		}
	}
	want = append(want, "VERIFY.md")
	sort.Strings(want)
	got := rel.AssetNames()
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("release assets\n  %v\nwant\n  %v", got, want)
	}
	asset := func(name string) []byte {
		a, ok := rel.Asset(name)
		if !ok {
			t.Fatalf("no asset %s on the release", name)
		}
		return a.Data
	}
	for name, b := range archives {
		if !bytes.Equal(asset(name), b) {
			t.Errorf("asset %s differs from the archive dist.sh packed", name)
		}
	}
	for _, p := range platforms {
		base := fmt.Sprintf("gantry_%s_%s", version, p)
		spdx, cdx := asset(base+".spdx.json"), asset(base+".cyclonedx.json")
		var doc struct {
			SPDXVersion string `json:"spdxVersion"`
			BOMFormat   string `json:"bomFormat"`
		}
		if json.Unmarshal(spdx, &doc) != nil || !strings.HasPrefix(doc.SPDXVersion, "SPDX-") {
			t.Errorf("%s.spdx.json is not an SPDX document", base)
		}
		if json.Unmarshal(cdx, &doc) != nil || doc.BOMFormat != "CycloneDX" {
			t.Errorf("%s.cyclonedx.json is not a CycloneDX document", base)
		}
		for n, b := range map[string][]byte{"spdx": spdx, "cyclonedx": cdx} {
			if !bytes.Contains(b, []byte("github.com/gantry-ci/gantry")) {
				t.Errorf("the %s SBOM of %s does not list the module the binaries were built from", n, p)
			}
		}
	}

	// The checksums file covers every archive and SBOM, each line the
	// SHA256 of the asset of that name.
	sums, err := dist.ParseSums(bytes.NewReader(asset(checksums)))
	if err != nil {
		t.Fatalf("%s: %v", checksums, err)
	}
	var listed []string
	for _, s := range sums {
		listed = append(listed, s.Name)
		if a, ok := rel.Asset(s.Name); !ok {
			t.Errorf("%s lists %s, which is not on the release", checksums, s.Name)
		} else if h := sha256.Sum256(a.Data); hex.EncodeToString(h[:]) != s.SHA256 {
			t.Errorf("%s: %s has SHA256 %x, the checksums file says %s", checksums, s.Name, h, s.SHA256)
		}
	}
	sort.Strings(listed)
	wantListed := slices.DeleteFunc(slices.Clone(want), func(n string) bool {
		return n == "VERIFY.md" || strings.HasPrefix(n, "gantry_"+version+"_checksums")
	})
	if !slices.Equal(listed, wantListed) {
		t.Errorf("%s lists %v, want %v", checksums, listed, wantListed)
	}

	// The bundle, checked by cosign for publish.yml's exact identity and
	// tag against the private trusted root; changed checksums fail.
	files := t.TempDir()
	for _, a := range rel.Assets {
		write(t, filepath.Join(files, a.Name), string(a.Data), 0o644)
	}
	cosign := testproc.Tool(t, "cosign")
	sumsFile := filepath.Join(files, checksums)
	verify := []string{"verify-blob", "--bundle", sumsFile + ".sigstore.json", "--trusted-root", sig.TrustedRoot,
		"--certificate-identity", "https://github.com/" + workflowRef, "--certificate-oidc-issuer", sig.IssuerURL,
		"--certificate-github-workflow-repository", repository, "--certificate-github-workflow-ref", "refs/tags/" + version,
		"--insecure-ignore-sct", sumsFile}
	if out, err := runTool(t, files, cosign, verify...); err != nil {
		t.Errorf("cosign verify-blob of the released checksums: %v\n%s", err, out)
	}
	changedSums := filepath.Join(t.TempDir(), checksums)
	write(t, changedSums, strings.Replace(string(asset(checksums)), "  ", "  x", 1), 0o644)
	if out, err := runTool(t, files, cosign, append(verify[:len(verify)-1:len(verify)-1], changedSums)...); err == nil {
		t.Errorf("cosign verify-blob accepted changed checksums:\n%s", out)
	}
	// And the commands of VERIFY.md, run in the directory of the release's
	// files as it says, each cosign command told the private trusted root
	// (it names no root: the public-good one) and that there is no
	// certificate transparency log.
	var commands []string
	for _, l := range strings.Split(string(asset("VERIFY.md")), "\n") {
		if strings.HasPrefix(l, "cosign ") || strings.HasPrefix(l, "sha256sum ") {
			commands = append(commands, l)
		}
	}
	if len(commands) != 2 || !strings.HasPrefix(commands[0], "cosign verify-blob "+checksums+" ") {
		t.Errorf("VERIFY.md's commands %q, want cosign verify-blob of %s and sha256sum --check:\n%s", commands, checksums, asset("VERIFY.md"))
	}
	for _, c := range commands {
		if strings.HasPrefix(c, "cosign ") {
			c += " --trusted-root '" + sig.TrustedRoot + "' --insecure-ignore-sct"
		}
		if out, err := runTool(t, files, "bash", "-euc", c); err != nil {
			t.Errorf("VERIFY.md: %s: %v\n%s", c, err, out)
		}
	}

	// The release commit on origin.
	release := runGit(t, origin, "rev-parse", "refs/tags/"+version+"^{commit}")
	if release == tagged {
		t.Fatalf("origin's %s still points at the tagged commit: no release commit was pushed\n%s", version, log)
	}
	if m := runGit(t, origin, "rev-parse", "refs/tags/"+major+"^{commit}"); m != release {
		t.Errorf("origin's %s is at %s, want the release commit %s", major, m, release)
	}
	if p := runGit(t, origin, "rev-list", "--parents", "-n1", release); p != release+" "+tagged {
		t.Errorf("the release commit's parents: %q, want only the tagged commit %s", p, tagged)
	}
	if b := runGit(t, origin, "rev-parse", "refs/heads/main"); b != tagged {
		t.Errorf("origin's main moved to %s: the release must push only tags", b)
	}
	if s := runGit(t, origin, "log", "-1", "--format=%an%n%s", release); s != "github-actions[bot]\nRelease "+version+": embed the SHA256 of its binaries" {
		t.Errorf("the release commit's author and subject: %q", s)
	}
	changed := strings.Fields(runGit(t, origin, "diff", "--name-only", tagged, release))
	var wantChanged []string
	actionFiles, err := dist.ActionFiles(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range actionFiles {
		if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("# gantry:release-end")) {
			rel, _ := filepath.Rel(repo, f)
			wantChanged = append(wantChanged, rel)
		}
	}
	sort.Strings(wantChanged)
	if len(wantChanged) < 2 || !slices.Equal(changed, wantChanged) {
		t.Errorf("the release commit changes %v, want exactly the action.yml files with a release block, %v", changed, wantChanged)
	}
	// Each changed file is the tagged one with the release embedded, made
	// here from the assets' own SHA256 (not from the checksums file).
	var archiveSums []dist.Sum
	var sumLines strings.Builder
	names := make([]string, 0, len(archives))
	for n := range archives {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := sha256.Sum256(asset(n))
		archiveSums = append(archiveSums, dist.Sum{SHA256: hex.EncodeToString(h[:]), Name: n})
		fmt.Fprintf(&sumLines, "%x  %s\n", h, n)
	}
	url := "https://github.com/" + repository + "/releases/download/" + version
	embedded := t.TempDir()
	for _, f := range wantChanged {
		write(t, filepath.Join(embedded, f), string(gitBytes(t, origin, "show", tagged+":"+f)), 0o644)
	}
	if _, err := dist.Embed(embedded, dist.Release{Version: version, URL: url, Sums: archiveSums}); err != nil {
		t.Fatal(err)
	}
	for _, f := range wantChanged {
		b, _ := os.ReadFile(filepath.Join(embedded, f))
		pushed := gitBytes(t, origin, "show", release+":"+f)
		if !bytes.Equal(pushed, b) {
			t.Errorf("%s at the release commit is not the tagged file with only the release block filled in; the commit changes:\n%s", f, runGit(t, origin, "diff", tagged, release, "--", f))
			continue
		}
		env := releaseEnv(t, f, pushed)
		if env["GANTRY_RELEASE"] != version || env["GANTRY_RELEASE_URL"] != url || env["GANTRY_RELEASE_SHA256"] != sumLines.String() {
			t.Errorf("%s embeds GANTRY_RELEASE=%q GANTRY_RELEASE_URL=%q GANTRY_RELEASE_SHA256:\n%s\nwant %s, %s and\n%s",
				f, env["GANTRY_RELEASE"], env["GANTRY_RELEASE_URL"], env["GANTRY_RELEASE_SHA256"], version, url, sumLines.String())
		}
	}

	// The release installs: fetch.sh of the release commit, with what its
	// actions/notify/action.yml embeds, from a mirror of the assets.
	if !slices.Contains(dist.Platforms, runtime.GOOS+"/"+runtime.GOARCH) {
		return
	}
	checkout := filepath.Join(t.TempDir(), "gantry")
	runGit(t, filepath.Dir(checkout), "clone", "-q", "--branch", version, origin, checkout)
	b, err := os.ReadFile(filepath.Join(checkout, "actions", "notify", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	env := releaseEnv(t, "actions/notify/action.yml", b)
	mirror := httptest.NewServer(http.StripPrefix("/"+version+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := rel.Asset(r.URL.Path); ok {
			w.Write(a.Data)
			return
		}
		http.NotFound(w, r)
	})))
	t.Cleanup(mirror.Close)
	fetch := exec.CommandContext(t.Context(), "bash", filepath.Join(checkout, "scripts", "fetch.sh"), "notify")
	fetch.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "RUNNER_TEMP=" + t.TempDir(), "RUNNER_TOOL_CACHE=" + t.TempDir(),
		"GANTRY_RELEASE=" + env["GANTRY_RELEASE"],
		"GANTRY_RELEASE_URL=" + env["GANTRY_RELEASE_URL"],
		"GANTRY_RELEASE_SHA256=" + env["GANTRY_RELEASE_SHA256"],
		"GANTRY_DOWNLOAD_URL=" + mirror.URL + "/" + version,
	}
	out, err := fetch.CombinedOutput()
	if err != nil {
		t.Fatalf("fetch.sh of the release commit: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	installed := filepath.Join(lines[len(lines)-1], "gantry-notify")
	built, err := os.ReadFile(filepath.Join(handoff, "dist-"+runtime.GOOS+"-"+runtime.GOARCH, "bin-dist", runtime.GOOS+"_"+runtime.GOARCH, "gantry-notify"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(installed); err != nil || !bytes.Equal(b, built) {
		t.Errorf("fetch.sh installed %s (%v), not the gantry-notify dist.sh built", installed, err)
	}
	run := exec.CommandContext(t.Context(), installed)
	run.Env = []string{"PATH=" + os.Getenv("PATH"), "GITHUB_OUTPUT=" + filepath.Join(t.TempDir(), "out")}
	if o, err := run.CombinedOutput(); err != nil || !strings.Contains(string(o), `neither "token" nor "webhook" is set`) {
		t.Errorf("the released gantry-notify without inputs: %v\n%s\nwant the stage's warning about the token/webhook inputs", err, o)
	}
}

// publishChangelogLine is the entry publishRepo adds to CHANGELOG.md under
// the version's heading, for the release notes.
const publishChangelogLine = "- The release of this test: notes from the CHANGELOG section."

// publishRepo makes what a maintainer pushes a release tag from: a git
// repository holding the working tree of repo (tracked and untracked files
// that are not ignored, so uncommitted changes count; no bin/), with a
// CHANGELOG section for version, committed on main and tagged version, and
// its origin, a bare repository that has main and the tag. It returns both
// paths and the tagged commit.
func publishRepo(t *testing.T, repo, version string) (dir, origin, tagged string) {
	t.Helper()
	base := t.TempDir()
	dir, origin = filepath.Join(base, "gantry"), filepath.Join(base, "origin.git")
	ls, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(ls), "\x00"), "\x00") {
		src := filepath.Join(repo, f)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or not a file
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if f == "CHANGELOG.md" {
			b = bytes.Replace(b, []byte("## [Unreleased]\n"), []byte("## [Unreleased]\n\n## ["+strings.TrimPrefix(version, "v")+"] - 2026-11-27\n\n"+publishChangelogLine+"\n"), 1)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, fi.Mode().Perm()&fs.ModePerm); err != nil {
			t.Fatal(err)
		}
	}
	runGit(t, base, "init", "-q", "--bare", "-b", "main", origin)
	runGit(t, dir, "init", "-q", "-b", "main")
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "-m", "Gantry "+version)
	runGit(t, dir, "tag", "-a", "-m", "Gantry "+version, version)
	runGit(t, dir, "remote", "add", "origin", origin)
	runGit(t, dir, "push", "-q", "origin", "main", "refs/tags/"+version)
	return dir, origin, runGit(t, dir, "rev-parse", "HEAD")
}

// runGit runs git in dir as a maintainer with no configuration of their own
// and returns its output, trimmed.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(string(gitBytes(t, dir, args...)))
}

// gitBytes is runGit, returning the output as it is (a file's bytes from git
// show).
func gitBytes(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Maintainer", "GIT_AUTHOR_EMAIL=maintainer@example.test",
		"GIT_COMMITTER_NAME=Maintainer", "GIT_COMMITTER_EMAIL=maintainer@example.test",
		"GIT_AUTHOR_DATE=2026-11-27T12:00:00Z", "GIT_COMMITTER_DATE=2026-11-27T12:00:00Z",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// releaseEnv returns the env of the step of an action.yml that embeds a
// release (the one with GANTRY_RELEASE set).
func releaseEnv(t *testing.T, name string, actionYML []byte) map[string]string {
	t.Helper()
	var a struct {
		Runs struct {
			Steps []struct {
				Env map[string]string `json:"env"`
			} `json:"steps"`
		} `json:"runs"`
	}
	if err := yaml.Unmarshal(actionYML, &a); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, s := range a.Runs.Steps {
		if s.Env["GANTRY_RELEASE"] != "" {
			return s.Env
		}
	}
	t.Errorf("%s embeds no release", name)
	return map[string]string{}
}

// runTool runs a command in dir as a user checking a release: a HOME and
// TUF cache of its own (so cosign works offline), cosign on PATH.
func runTool(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"HOME=" + home, "TMPDIR=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"),
		"PATH=" + filepath.Dir(testproc.Tool(t, "cosign")) + ":/usr/bin:/bin",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
