package ghrelease_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghrelease"
	"github.com/gantry-ci/gantry/internal/ghrelease/ghreleasetest"
)

// A tag push with a changelog section: the notes are the section, the
// release is published once (no draft left), named after the tag, and
// GitHub is not asked for generated notes.
func TestNotesFromChangelog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.inputs()
	in.Tag = ""
	in.Repository = ""
	in.Git.Ref, in.Git.RefName, in.Git.Repository = "refs/tags/v1.2.3", "v1.2.3", repo
	out, err := e.run(t, in)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, e.log)
	}
	rel := e.one(t, "v1.2.3")
	if rel.Draft || rel.Prerelease || rel.Name != "v1.2.3" || rel.MakeLatest != "legacy" {
		t.Errorf("release draft=%v prerelease=%v name=%q make_latest=%q, want published, not a prerelease, named v1.2.3, make_latest legacy", rel.Draft, rel.Prerelease, rel.Name, rel.MakeLatest)
	}
	if rel.TargetCommitish != commit {
		t.Errorf("target_commitish = %q, want the built commit %s", rel.TargetCommitish, commit)
	}
	for _, want := range []string{"### Fixed", "Cold starts no longer time out", "### Security", "[#41]: https://github.com/acme/prompt-builder/pull/41"} {
		if !strings.Contains(rel.Body, want) {
			t.Errorf("notes lack %q:\n%s", want, rel.Body)
		}
	}
	for _, unwanted := range []string{"Release candidate", "Prompt history", "Dark mode", "[1.2.3]:", "[unreleased]:", "compare/"} {
		if strings.Contains(rel.Body, unwanted) {
			t.Errorf("notes hold %q, which is not in the 1.2.3 section:\n%s", unwanted, rel.Body)
		}
	}
	if out.NotesSource != ghrelease.SourceChangelog || out.ReleaseID != rel.ID || !out.Created || out.Draft {
		t.Errorf("outputs %+v", out)
	}
	if want := e.srv.URL + "/" + repo + "/releases/tag/v1.2.3"; out.URL != want {
		t.Errorf("url = %q, want the published page %q (not the draft's)", out.URL, want)
	}
	for _, c := range e.srv.Calls() {
		if c.Route == ghreleasetest.RouteGenerateNotes {
			t.Errorf("generated notes were asked for although the changelog has a section")
		}
	}
	if s := ghrelease.Summary(out); !strings.Contains(s, "[v1.2.3]("+out.URL+")") || !strings.Contains(s, `CHANGELOG.md, section "[1.2.3] - 2026-11-26"`) {
		t.Errorf("summary:\n%s", s)
	}
}

func TestGeneratedNotes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, tag, generate string
		wantSource          string
		wantIn, wantNot     []string
		wantCall            bool
	}{
		{
			name: "auto without a section", tag: "v1.3.0", generate: "auto",
			wantSource: ghrelease.SourceGenerated, wantCall: true,
			wantIn: []string{"## What's Changed", "Add health endpoint by @octocat"},
		},
		{
			name: "true appends to the section", tag: "v1.2.3", generate: "true",
			wantSource: ghrelease.SourceChangelog, wantCall: true,
			wantIn: []string{"### Fixed", "## What's Changed"},
		},
		{
			name: "false without a section", tag: "v1.3.0", generate: "false",
			wantSource: ghrelease.SourceNone,
			wantNot:    []string{"What's Changed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in := e.inputs()
			in.Tag, in.GenerateNotes = tt.tag, tt.generate
			out, err := e.run(t, in)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if out.NotesSource != tt.wantSource {
				t.Errorf("notes-source = %q, want %q", out.NotesSource, tt.wantSource)
			}
			body := e.one(t, tt.tag).Body
			for _, w := range tt.wantIn {
				if !strings.Contains(body, w) {
					t.Errorf("notes lack %q:\n%s", w, body)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(body, w) {
					t.Errorf("notes hold %q:\n%s", w, body)
				}
			}
			if tt.wantSource == ghrelease.SourceChangelog && strings.Index(body, "### Fixed") > strings.Index(body, "## What's Changed") {
				t.Errorf("the changelog section does not come first:\n%s", body)
			}
			called := slices.ContainsFunc(e.srv.Calls(), func(c ghreleasetest.Call) bool { return c.Route == ghreleasetest.RouteGenerateNotes })
			if called != tt.wantCall {
				t.Errorf("generate-notes called = %v, want %v", called, tt.wantCall)
			}
			if tt.generate == "false" && !strings.Contains(e.log.String(), "warning: CHANGELOG.md has no section for v1.3.0") {
				t.Errorf("no warning about the missing section:\n%s", e.log)
			}
		})
	}
}

func TestPrerelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tag, prerelease, makeLatest string
		wantPre                     bool
		wantLatest                  string
	}{
		{"v1.2.3-rc.1", "auto", "auto", true, "false"},
		{"v1.2.3", "auto", "auto", false, "legacy"},
		{"v1.2.3", "true", "auto", true, "false"},
		{"v1.2.3-rc.1", "false", "true", false, "true"},
		{"v1.2.3-rc.1", "auto", "true", true, "false"}, // never latest, with a warning
		{"v1.2.3", "auto", "false", false, "false"},
	}
	for _, tt := range tests {
		t.Run(tt.tag+"/prerelease="+tt.prerelease+"/make-latest="+tt.makeLatest, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in := e.inputs()
			in.Tag, in.Prerelease, in.MakeLatest = tt.tag, tt.prerelease, tt.makeLatest
			out, err := e.run(t, in)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			rel := e.one(t, tt.tag)
			if rel.Prerelease != tt.wantPre || rel.MakeLatest != tt.wantLatest || out.Prerelease != tt.wantPre {
				t.Errorf("prerelease=%v make_latest=%q, want %v %q", rel.Prerelease, rel.MakeLatest, tt.wantPre, tt.wantLatest)
			}
			warned := strings.Contains(e.log.String(), `warning: input "make-latest" is true but`)
			if warned != (tt.makeLatest == "true" && tt.wantPre) {
				t.Errorf("make-latest warning = %v:\n%s", warned, e.log)
			}
		})
	}
}

// Assets arrive byte for byte, from globs and plain paths, under their base
// names, with the media type a browser needs; the checksums file alone
// (no release record, no bundle) gets a VERIFY.md with its sha256sum line,
// and no cosign.pub, since no command takes the key.
func TestAssetsUploaded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sums := e.write(t, "dist/checksums.txt", nil)
	var list bytes.Buffer
	for _, f := range []string{"app_linux_amd64.tar.gz", "app_linux_arm64.tar.gz"} {
		b, _ := os.ReadFile(filepath.Join(e.dir, "dist", f))
		list.WriteString(sha256hex(b) + "  " + f + "\n")
	}
	os.WriteFile(sums, list.Bytes(), 0o644)
	e.write(t, "docs/INSTALL.md", []byte("# Install\n"))
	in := e.inputs()
	in.Assets = []string{"dist/*.tar.gz", "dist/checksums.txt", "docs/**/*.md", "dist/app_linux_amd64.tar.gz"}
	in.VerifyKey = pubPEM // no command takes it: not attached
	out, err := e.run(t, in)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, e.log)
	}
	rel := e.one(t, "v1.2.3")
	wantNames := []string{"app_linux_amd64.tar.gz", "app_linux_arm64.tar.gz", "checksums.txt", "INSTALL.md", "VERIFY.md"}
	if got := rel.AssetNames(); !slices.Equal(got, wantNames) {
		t.Errorf("assets %v, want %v", got, wantNames)
	}
	for _, name := range wantNames[:4] {
		a, _ := rel.Asset(name)
		var want []byte
		for _, dir := range []string{"dist", "docs"} {
			if b, err := os.ReadFile(filepath.Join(e.dir, dir, name)); err == nil {
				want = b
			}
		}
		if !bytes.Equal(a.Data, want) {
			t.Errorf("asset %s: %d bytes stored, want the file's %d bytes exactly", name, len(a.Data), len(want))
		}
	}
	if a, _ := rel.Asset("app_linux_amd64.tar.gz"); a.ContentType != "application/gzip" {
		t.Errorf("tarball content type %q", a.ContentType)
	}
	if a, _ := rel.Asset("checksums.txt"); a.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("checksums content type %q", a.ContentType)
	}
	b, _ := json.Marshal(out.Assets)
	if string(b) != `["app_linux_amd64.tar.gz","app_linux_arm64.tar.gz","checksums.txt","INSTALL.md","VERIFY.md"]` {
		t.Errorf("assets output %s", b)
	}
	if s, _ := ghaction.FormatOutput(out.Assets); s != string(b) {
		t.Errorf("assets output is written as %q, want one JSON list", s)
	}
	const sumLine = "sha256sum --ignore-missing --check checksums.txt"
	if !strings.Contains(out.Verify, sumLine) || strings.Contains(out.Verify, "cosign") || strings.Contains(out.Verify, "## The image") {
		t.Errorf("VERIFY.md of a checksums file, want %q and no cosign or image:\n%s", sumLine, out.Verify)
	}
	if !strings.Contains(rel.Body, "## Verify\n\n```sh\n"+sumLine+"\n```") || strings.Contains(rel.Body, "## Image") {
		t.Errorf("notes lack the Verify section with %q:\n%s", sumLine, rel.Body)
	}
	if s := ghrelease.Summary(out); !strings.Contains(s, "68.4 KiB") || !strings.Contains(s, "INSTALL.md") {
		t.Errorf("summary lacks the assets with sizes:\n%s", s)
	}
}

// Everything wrong with the files is reported at once, before any request
// reaches GitHub: nothing is created for a broken build.
func TestBadFilesFailBeforeGitHub(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env, in *ghrelease.Inputs)
		want  []string
	}{
		{
			name: "globs and paths that match nothing, and a directory",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "dist/sub/x.txt", []byte("x"))
				in.Assets = []string{"dist/*.tar.gz", "dist/*.zip", "dist/missing.txt", "dist/sub", "out/**/*.deb"}
			},
			want: []string{`pattern "dist/*.zip" matches no file`, `"dist/missing.txt" does not exist`, `dist/sub (from "dist/sub") is a directory: name its files instead, e.g. dist/sub/*`, `pattern "out/**/*.deb" matches no file`},
		},
		{
			name: "two files with one name",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "other/app_linux_amd64.tar.gz", []byte("x"))
				in.Assets = []string{"dist/*", "other/*"}
			},
			want: []string{`dist/app_linux_amd64.tar.gz and other/app_linux_amd64.tar.gz would both be the asset "app_linux_amd64.tar.gz"`},
		},
		{
			name: "a checksums file that does not match",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "dist/SHA256SUMS", []byte(strings.Repeat("0", 64)+"  app_linux_amd64.tar.gz\n"+strings.Repeat("1", 64)+" *dist/app_linux_arm64.tar.gz\n"))
				in.Assets = []string{"dist/*"}
			},
			want: []string{"SHA256SUMS says app_linux_amd64.tar.gz has sha256 0000", `SHA256SUMS lists "dist/app_linux_arm64.tar.gz" with a directory`},
		},
		{
			name: "a bundle without its file",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "dist/app_darwin_arm64.tar.gz.sigstore.json", []byte("{}"))
				in.Assets = []string{"dist/*"}
				in.VerifyCertificateIdentityRegexp = identity
				in.ReleaseFile = e.record(t, nil)
			},
			want: []string{`the Sigstore bundle app_darwin_arm64.tar.gz.sigstore.json signs app_darwin_arm64.tar.gz, which is not among the assets`},
		},
		{
			name: "a keyless bundle without the identity to verify",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "dist/app_linux_amd64.tar.gz.sigstore.json", keylessBundle)
				in.Assets = []string{"dist/*"}
			},
			want: []string{`input "verify-certificate-identity-regexp" is empty, but the assets include the Sigstore bundle app_linux_amd64.tar.gz.sigstore.json`, `^https://github\.com/acme/prompt-builder/\.github/workflows/release\.yml@refs/tags/v.*$`},
		},
		{
			name: "a bundle that does not say how it was signed, without inputs",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "dist/app_linux_amd64.tar.gz.sigstore.json", []byte("{}"))
				in.Assets = []string{"dist/*"}
			},
			want: []string{`input "verify-certificate-identity-regexp" is empty, but the assets include the Sigstore bundle app_linux_amd64.tar.gz.sigstore.json`, "or set verify-key"},
		},
		{
			name: "a key bundle without the key",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "dist/app_linux_amd64.tar.gz.sigstore.json", keyBundle)
				in.Assets = []string{"dist/*"}
			},
			want: []string{`input "verify-key" is empty, but the assets include the Sigstore bundle app_linux_amd64.tar.gz.sigstore.json, made with a key`},
		},
		{
			name: "a key bundle with keyless inputs",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "dist/app_linux_amd64.tar.gz.sigstore.json", keyBundle)
				in.Assets = []string{"dist/*"}
				in.VerifyCertificateIdentityRegexp = identity
			},
			want: []string{`the Sigstore bundle app_linux_amd64.tar.gz.sigstore.json was made with a key but the inputs are for keyless verification: set verify-key`},
		},
		{
			name: "a keyless bundle with a key",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "dist/app_linux_amd64.tar.gz.sigstore.json", keylessBundle)
				in.Assets = []string{"dist/*"}
				in.VerifyKey = "cosign.pub"
			},
			want: []string{`the Sigstore bundle app_linux_amd64.tar.gz.sigstore.json was made keyless but the inputs are for key verification: set verify-certificate-identity-regexp`},
		},
		{
			name: "a bundle that is not JSON",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				e.write(t, "dist/app_linux_amd64.tar.gz.sigstore.json", []byte("-----BEGIN SIGNATURE-----\n"))
				in.Assets = []string{"dist/*"}
				in.VerifyCertificateIdentityRegexp = identity
			},
			want: []string{`input "assets": app_linux_amd64.tar.gz.sigstore.json: not a Sigstore bundle`},
		},
		{
			name:  "a missing release record",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) { in.ReleaseFile = "gantry-release.json" },
			want:  []string{`input "release-file": gantry-release.json does not exist`},
		},
		{
			name: "a keyless signature without the identity to verify",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				in.ReleaseFile = e.record(t, keylessSign())
			},
			want: []string{`input "verify-certificate-identity-regexp" is empty, but the image was signed keyless`},
		},
		{
			name: "a key signature without the key",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				in.ReleaseFile = e.record(t, keySign())
			},
			want: []string{`input "verify-key" is empty, but the image was signed with a key`},
		},
		{
			name: "a key signature with keyless inputs",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				in.ReleaseFile = e.record(t, keySign())
				in.VerifyCertificateIdentityRegexp = identity
			},
			want: []string{"the image was signed with a key", "set verify-key"},
		},
		{
			name:  "an explicit changelog that is missing",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) { in.Changelog = "docs/CHANGES.md" },
			want:  []string{`input "changelog": docs/CHANGES.md does not exist`},
		},
		{
			name: "bad inputs, all of them",
			setup: func(t *testing.T, e *env, in *ghrelease.Inputs) {
				in.Tag, in.Git.Ref = "", "refs/heads/main"
				in.Repository = "acme"
				in.GenerateNotes, in.Prerelease, in.MakeLatest = "sometimes", "maybe", "yes please"
				in.VerifyKey, in.VerifyCertificateIdentityRegexp = "cosign.pub", "(unclosed"
				in.VerifySourceRepository = "https://github.com/acme"
				in.APIURL = "ftp://example.com"
			},
			want: []string{
				`input "tag" is empty and this run is for refs/heads/main, not a tag`,
				`input "repository": "acme" is not owner/name`,
				`input "generate-notes": "sometimes" is not auto, true or false`,
				`input "prerelease": "maybe"`, `input "make-latest": "yes please"`,
				`inputs "verify-key" and "verify-certificate-identity-regexp" are both set`,
				`input "verify-certificate-identity-regexp": "(unclosed" is not a regular expression`,
				`input "api-url": "ftp://example.com" is not an http(s) URL`,
				`inputs "verify-source-repository" and "verify-key" are both set`,
				`input "verify-source-repository": "https://github.com/acme" is not a repository`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in := e.inputs()
			tt.setup(t, e, &in)
			_, err := e.run(t, in)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if calls := e.srv.Calls(); len(calls) != 0 {
				t.Errorf("GitHub was called before the inputs were checked: %v", calls)
			}
		})
	}
}

// A re-run updates the one release of the tag: new notes, and each asset
// replaced by the new file of the same name; other assets stay.
func TestRerunUpdatesInPlace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.inputs()
	in.Assets = []string{"dist/*.tar.gz"}
	first, err := e.run(t, in)
	if err != nil {
		t.Fatal(err)
	}

	// The next run: a fixed changelog entry and a rebuilt arm64 file.
	cl, _ := os.ReadFile(filepath.Join(e.dir, "CHANGELOG.md"))
	e.write(t, "CHANGELOG.md", bytes.Replace(cl, []byte("- Base image rebuilt for CVE-2026-41873."), []byte("- Base image rebuilt for CVE-2026-41873 and CVE-2026-41874."), 1))
	rebuilt := e.write(t, "dist/app_linux_arm64.tar.gz", payload(66000, 9))
	in.Assets = []string{"dist/app_linux_arm64.tar.gz"}
	second, err := e.run(t, in)
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, e.log)
	}
	rel := e.one(t, "v1.2.3")
	if second.ReleaseID != first.ReleaseID || second.Created || rel.Draft {
		t.Errorf("re-run: id %d (first %d), created %v, draft %v: want the same published release updated", second.ReleaseID, first.ReleaseID, second.Created, rel.Draft)
	}
	if !strings.Contains(rel.Body, "CVE-2026-41874") {
		t.Errorf("notes not updated:\n%s", rel.Body)
	}
	if got := rel.AssetNames(); !slices.Equal(got, []string{"app_linux_amd64.tar.gz", "app_linux_arm64.tar.gz"}) {
		t.Errorf("assets %v, want each name once", got)
	}
	a, _ := rel.Asset("app_linux_arm64.tar.gz")
	want, _ := os.ReadFile(rebuilt)
	if !bytes.Equal(a.Data, want) {
		t.Errorf("arm64 asset holds %d bytes, want the rebuilt file's %d", len(a.Data), len(want))
	}
	if !strings.Contains(e.log.String(), "replacing asset app_linux_arm64.tar.gz") {
		t.Errorf("the log does not say the asset was replaced:\n%s", e.log)
	}
	// Updating a published release never turns it into a draft on the way.
	for _, c := range e.srv.Writes() {
		if c.Route == ghreleasetest.RouteUpdateRelease && strings.Contains(c.Body, `"draft":true`) {
			t.Errorf("the published release was made a draft: %s", c.Body)
		}
	}
}

// An upload that keeps failing leaves a draft nobody sees, and the error
// names the asset. A re-run finds that draft (GitHub's by-tag lookup does
// not return drafts), finishes it and publishes it.
func TestUploadFailureLeavesDraft(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.FailUpload("app_linux_arm64.tar.gz", -1)
	in := e.inputs()
	in.Assets = []string{"dist/*.tar.gz"}
	out, err := e.run(t, in)
	if err == nil {
		t.Fatal("Run succeeded although an upload failed")
	}
	for _, w := range []string{"asset app_linux_arm64.tar.gz", "500 Internal Server Error", "gave up after 4 attempts", "left a draft", "re-run the job"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	rel := e.one(t, "v1.2.3")
	if !rel.Draft {
		t.Errorf("the release was published with an asset missing")
	}
	if got := e.sleeps.got(); !slices.Equal(got, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}) {
		t.Errorf("waits between upload attempts %v, want 1s 2s 4s", got)
	}
	if out.ReleaseID != rel.ID || !out.Draft || !strings.Contains(ghrelease.Summary(out), "**draft**") {
		t.Errorf("outputs after the failure %+v", out)
	}

	e.srv.FailUpload("app_linux_arm64.tar.gz", 0)
	again, err := e.run(t, in)
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, e.log)
	}
	rel = e.one(t, "v1.2.3")
	if rel.Draft || again.ReleaseID != out.ReleaseID || again.Created {
		t.Errorf("re-run: draft=%v id=%d (draft was %d) created=%v: want the draft finished and published", rel.Draft, again.ReleaseID, out.ReleaseID, again.Created)
	}
	if got := rel.AssetNames(); !slices.Equal(got, []string{"app_linux_amd64.tar.gz", "app_linux_arm64.tar.gz"}) {
		t.Errorf("assets %v", got)
	}
}

// GitHub created the draft but the answer was lost: the retry finds it
// instead of creating a second one.
func TestCreateThatLandedIsNotRepeated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.FailNext(ghreleasetest.RouteCreateRelease, ghreleasetest.Fault{Status: http.StatusBadGateway, Landed: true})
	if _, err := e.run(t, e.inputs()); err != nil {
		t.Fatalf("Run: %v\n%s", err, e.log)
	}
	if rel := e.one(t, "v1.2.3"); rel.Draft {
		t.Error("the release was not published")
	}
}

// A draft older than a page of releases is still found.
func TestDraftFoundOnALaterPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	draft := e.srv.AddRelease(ghreleasetest.Release{Repo: repo, TagName: "v1.2.3", Name: "v1.2.3", Draft: true})
	for i := range 150 {
		e.srv.AddRelease(ghreleasetest.Release{Repo: repo, TagName: "v0.0." + string(rune('0'+i%10)) + "-" + strings.Repeat("x", i/10+1)})
	}
	out, err := e.run(t, e.inputs())
	if err != nil {
		t.Fatal(err)
	}
	if out.ReleaseID != draft.ID || out.Created {
		t.Errorf("release id %d created %v, want the draft %d reused", out.ReleaseID, out.Created, draft.ID)
	}
	e.one(t, "v1.2.3")
}

func TestRetries(t *testing.T) {
	t.Parallel()
	t.Run("5xx and rate limits are retried as GitHub asks", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.srv.FailNext(ghreleasetest.RouteGetByTag, ghreleasetest.Fault{Status: http.StatusBadGateway})
		e.srv.FailNext(ghreleasetest.RouteCreateRelease, ghreleasetest.Fault{Status: http.StatusForbidden, RetryAfter: "7", SecondaryRateLimit: true})
		e.srv.FailNext(ghreleasetest.RouteUpdateRelease, ghreleasetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3"}, ghreleasetest.Fault{Status: http.StatusServiceUnavailable})
		if _, err := e.run(t, e.inputs()); err != nil {
			t.Fatalf("Run: %v\n%s", err, e.log)
		}
		if got, want := e.sleeps.got(), []time.Duration{time.Second, 7 * time.Second, 3 * time.Second, 2 * time.Second}; !slices.Equal(got, want) {
			t.Errorf("waits %v, want %v", got, want)
		}
		if rel := e.one(t, "v1.2.3"); rel.Draft {
			t.Error("not published")
		}
	})
	t.Run("a wait longer than the limit fails at once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.srv.FailNext(ghreleasetest.RouteGetByTag, ghreleasetest.Fault{Status: http.StatusForbidden, RetryAfter: "3600", SecondaryRateLimit: true})
		_, err := e.run(t, e.inputs())
		if err == nil || !strings.Contains(err.Error(), "GitHub asks to wait 1h0m0s") || !strings.Contains(err.Error(), "secondary rate limit") {
			t.Fatalf("Run = %v, want the rate limit and the wait it asked for", err)
		}
		if len(e.sleeps.got()) != 0 || len(e.srv.Writes()) != 0 {
			t.Errorf("waited %v, wrote %v", e.sleeps.got(), e.srv.Writes())
		}
	})
	t.Run("a client error is not retried", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.srv.FailNext(ghreleasetest.RouteCreateRelease, ghreleasetest.Fault{Status: http.StatusForbidden})
		_, err := e.run(t, e.inputs())
		if err == nil || !strings.Contains(err.Error(), `"permissions: contents: write"`) {
			t.Fatalf("Run = %v, want the permission the token lacks", err)
		}
		if len(e.sleeps.got()) != 0 {
			t.Errorf("retried a 403: waits %v", e.sleeps.got())
		}
	})
}

// A published release is updated in place; an immutable one (whose
// assets GitHub refuses to change) is reported before anything changes.
func TestExistingPublishedRelease(t *testing.T) {
	t.Parallel()
	t.Run("updated", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		old := e.srv.AddRelease(ghreleasetest.Release{Repo: repo, TagName: "v1.2.3", Name: "old title", Body: "old notes",
			Assets: []ghreleasetest.Asset{{Name: "app_linux_amd64.tar.gz", ContentType: "application/gzip", Data: []byte("old")}, {Name: "manual.pdf", ContentType: "application/pdf", Data: []byte("pdf")}}})
		in := e.inputs()
		in.Name = "Prompt Builder 1.2.3"
		in.Assets = []string{"dist/app_linux_amd64.tar.gz"}
		out, err := e.run(t, in)
		if err != nil {
			t.Fatal(err)
		}
		rel := e.one(t, "v1.2.3")
		if out.ReleaseID != old.ID || rel.Draft || rel.Name != "Prompt Builder 1.2.3" || !strings.Contains(rel.Body, "### Fixed") {
			t.Errorf("release %+v", rel)
		}
		if a, _ := rel.Asset("app_linux_amd64.tar.gz"); string(a.Data) == "old" {
			t.Error("asset not replaced")
		}
		if _, ok := rel.Asset("manual.pdf"); !ok {
			t.Error("an asset this run does not upload was deleted")
		}
		var patches []string
		for _, c := range e.srv.Writes() {
			if c.Route == ghreleasetest.RouteUpdateRelease {
				patches = append(patches, c.Body)
			}
		}
		if len(patches) != 1 || !strings.Contains(patches[0], `"draft":false`) || !strings.Contains(patches[0], `"make_latest":"legacy"`) {
			t.Errorf("updates %q, want one PATCH keeping it published", patches)
		}
	})
	t.Run("immutable", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.srv.AddRelease(ghreleasetest.Release{Repo: repo, TagName: "v1.2.3", Immutable: true})
		in := e.inputs()
		in.Assets = []string{"dist/*.tar.gz"}
		_, err := e.run(t, in)
		if err == nil || !strings.Contains(err.Error(), "immutable") || !strings.Contains(err.Error(), "release a new tag") {
			t.Fatalf("Run = %v, want the immutable release explained", err)
		}
		if w := e.srv.Writes(); len(w) != 0 {
			t.Errorf("changed an immutable release: %v", w)
		}
	})
	t.Run("draft input", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		in := e.inputs()
		in.Draft = true
		out, err := e.run(t, in)
		if err != nil {
			t.Fatal(err)
		}
		if rel := e.one(t, "v1.2.3"); !rel.Draft || rel.MakeLatest != "" || !out.Draft {
			t.Errorf("draft: true published the release: %+v", rel)
		}
	})
}

// The token is never printed: not when GitHub refuses it, and not when a
// server echoes it back in an error.
func TestTokenNeverPrinted(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		in := e.inputs()
		const wrong = "ghs_notTheRightToken000000000000000000"
		in.Token = wrong
		_, err := e.run(t, in)
		if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: Bad credentials") || !strings.Contains(err.Error(), `input "token"`) {
			t.Fatalf("Run = %v, want 401 naming input token", err)
		}
		if strings.Contains(err.Error()+e.log.String(), wrong) {
			t.Errorf("the token is printed: %v\n%s", err, e.log)
		}
	})
	t.Run("echoed by a proxy", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"message": "proxy refused request with Authorization: " + r.Header.Get("Authorization")})
		}))
		t.Cleanup(proxy.Close)
		in := e.inputs()
		in.APIURL = proxy.URL
		_, err := e.run(t, in)
		if err == nil || !strings.Contains(err.Error(), "Authorization: Bearer ***") {
			t.Fatalf("Run = %v, want the proxy's message with the token scrubbed", err)
		}
	})
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
