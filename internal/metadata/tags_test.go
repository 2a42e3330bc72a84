package metadata_test

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/metadata"
	"github.com/gantry-ci/gantry/internal/runctx"
)

// fixedTime is the Now of every fixture run: 03:00:07 UTC, as a nightly
// schedule would fire.
var fixedTime = time.Date(2026, 11, 21, 3, 0, 7, 0, time.UTC)

// runnerEnv is what a GitHub-hosted runner sets next to each event payload in
// testdata/events (see the table in its README.md).
type runnerEnv struct {
	event, ref, refName, refType, sha, headRef, baseRef, actor string
}

var fixtures = map[string]runnerEnv{
	"push-branch.json":         {"push", "refs/heads/main", "main", "branch", "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c", "", "", "mara-okafor"},
	"push-branch-slash.json":   {"push", "refs/heads/feature/Login-Form#2", "feature/Login-Form#2", "branch", "70e12e2e99f7f55e39874011e1871782b7a2e9e3", "", "", "tbergstrom"},
	"push-tag.json":            {"push", "refs/tags/v1.2.3", "v1.2.3", "tag", "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5", "", "", "mara-okafor"},
	"push-tag-prerelease.json": {"push", "refs/tags/v2.0.0-rc.1", "v2.0.0-rc.1", "tag", "a80683bc75b32fb0dd573085ecb2bf65cd5bd9a2", "", "", "tbergstrom"},
	"push-tag-nonsemver.json":  {"push", "refs/tags/release-2026-11", "release-2026-11", "tag", "695720db1371a9a9e8e6cb2ce73c66aa608cb4b7", "", "", "mara-okafor"},
	"pull_request.json":        {"pull_request", "refs/pull/42/merge", "42/merge", "branch", "e1e2e3e4e5e6e7e8e9e0e1e2e3e4e5e6e7e8e9e0", "feature/search", "main", "tbergstrom"},
	"workflow_dispatch.json":   {"workflow_dispatch", "refs/heads/main", "main", "branch", "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c", "", "", "mara-okafor"},
	"schedule.json":            {"schedule", "refs/heads/main", "main", "branch", "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c", "", "", "mara-okafor"},
	"schedule-legacy.json":     {"schedule", "refs/heads/main", "main", "branch", "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c", "", "", "mara-okafor"},
}

// contextFor builds the metadata context of a fixture the way the build
// stage does: the runner's environment through runctx.FromEnv (what
// ghaction.Env.Run reads), then FromRun.
func contextFor(t *testing.T, file string) metadata.Context {
	t.Helper()
	r, ok := fixtures[file]
	if !ok {
		t.Fatalf("no runner environment for fixture %s", file)
	}
	env := map[string]string{
		"GITHUB_REPOSITORY":       "acme/Prompt-Builder",
		"GITHUB_REPOSITORY_OWNER": "acme",
		"GITHUB_SERVER_URL":       "https://github.com",
		"GITHUB_API_URL":          "https://api.github.com",
		"GITHUB_EVENT_NAME":       r.event,
		"GITHUB_EVENT_PATH":       filepath.Join("..", "..", "testdata", "events", file),
		"GITHUB_REF":              r.ref,
		"GITHUB_REF_NAME":         r.refName,
		"GITHUB_REF_TYPE":         r.refType,
		"GITHUB_SHA":              r.sha,
		"GITHUB_HEAD_REF":         r.headRef,
		"GITHUB_BASE_REF":         r.baseRef,
		"GITHUB_ACTOR":            r.actor,
		"GITHUB_RUN_ID":           "7301234567",
	}
	if _, err := os.Stat(env["GITHUB_EVENT_PATH"]); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	run, err := runctx.FromEnv(func(k string) string { return env[k] }, fixedTime)
	if err != nil {
		t.Fatalf("FromEnv for %s: %v", file, err)
	}
	return metadata.FromRun(run)
}

func TestFromRun(t *testing.T) {
	t.Parallel()
	const main3f = "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c"
	type want struct {
		branch, tag, commitSHA, defaultBranch, license string
		isPR, isDefault                                bool
		prNumber                                       int
	}
	tests := []struct {
		file string
		want want
	}{
		{"push-branch.json", want{branch: "main", commitSHA: main3f, defaultBranch: "main", license: "MIT", isDefault: true}},
		{"push-branch-slash.json", want{branch: "feature/Login-Form#2", commitSHA: "70e12e2e99f7f55e39874011e1871782b7a2e9e3", defaultBranch: "main", license: "MIT"}},
		{"push-tag.json", want{tag: "v1.2.3", commitSHA: "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5", defaultBranch: "main", license: "MIT"}},
		{"push-tag-prerelease.json", want{tag: "v2.0.0-rc.1", commitSHA: "a80683bc75b32fb0dd573085ecb2bf65cd5bd9a2", defaultBranch: "main", license: "MIT"}},
		{"push-tag-nonsemver.json", want{tag: "release-2026-11", commitSHA: "695720db1371a9a9e8e6cb2ce73c66aa608cb4b7", defaultBranch: "main", license: "MIT"}},
		// The image of a PR is tagged with the PR's head commit, not the
		// merge commit e1e2e3e... the runner checked out.
		{"pull_request.json", want{branch: "feature/search", commitSHA: "c0ffee0000000000000000000000000000000042", defaultBranch: "main", license: "MIT", isPR: true, prNumber: 42}},
		{"workflow_dispatch.json", want{branch: "main", commitSHA: main3f, defaultBranch: "main", license: "MIT", isDefault: true}},
		{"schedule.json", want{branch: "main", commitSHA: main3f, defaultBranch: "main", license: "MIT", isDefault: true}},
		// No repository object: the repository comes from GITHUB_REPOSITORY,
		// and nothing else is known.
		{"schedule-legacy.json", want{branch: "main", commitSHA: main3f, isDefault: true}}, // schedules run only on the default branch
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			c := contextFor(t, tt.file)
			got := want{
				branch: c.Branch(), tag: c.Tag(), commitSHA: c.CommitSHA(),
				defaultBranch: c.DefaultBranch, license: c.License,
				isPR: c.IsPR(), isDefault: c.IsDefaultBranch(), prNumber: c.PRNumber,
			}
			if got != tt.want {
				t.Errorf("context of %s:\n got %+v\nwant %+v", tt.file, got, tt.want)
			}
			if c.Repository != "acme/Prompt-Builder" {
				t.Errorf("Repository = %q, want acme/Prompt-Builder", c.Repository)
			}
			if c.SHA != fixtures[tt.file].sha {
				t.Errorf("SHA = %q, want GITHUB_SHA %q", c.SHA, fixtures[tt.file].sha)
			}
			if want := "https://github.com/acme/Prompt-Builder/actions/runs/7301234567"; c.RunURL != want {
				t.Errorf("RunURL = %q, want %q", c.RunURL, want)
			}
			if !c.Now.Equal(fixedTime) {
				t.Errorf("Now = %v, want %v", c.Now, fixedTime)
			}
		})
	}
}

func TestTagsDefaultRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []string
	}{
		{"push-branch.json", []string{"main", "sha-3f1c5a7"}},
		{"push-branch-slash.json", []string{"feature-Login-Form-2", "sha-70e12e2"}},
		{"push-tag.json", []string{"1.2.3", "1.2", "1", "sha-9a8b7c6", "latest"}},
		// A release candidate must not move 2, 2.0 or latest.
		{"push-tag-prerelease.json", []string{"2.0.0-rc.1", "sha-a80683b"}},
		// metadata-action: type=ref,event=tag gives latest under latest=auto.
		{"push-tag-nonsemver.json", []string{"release-2026-11", "sha-695720d", "latest"}},
		// PR head commit, not the merge commit e1e2e3e; no branch tag.
		{"pull_request.json", []string{"pr-42", "sha-c0ffee0"}},
		{"workflow_dispatch.json", []string{"main", "sha-3f1c5a7"}},
		// type=ref,event=branch fires for any refs/heads/ run, schedules too.
		{"schedule.json", []string{"nightly", "main", "sha-3f1c5a7"}},
		{"schedule-legacy.json", []string{"nightly", "main", "sha-3f1c5a7"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			c := contextFor(t, tt.file)
			got, err := metadata.Tags(c, nil)
			if err != nil {
				t.Fatalf("Tags(defaults): %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tags(defaults) for %s = %q, want %q", tt.file, got, tt.want)
			}
			// An empty list and the explicit defaults are the same thing.
			explicit, err := metadata.Tags(c, metadata.DefaultRules())
			if err != nil || !slices.Equal(explicit, got) {
				t.Errorf("Tags(DefaultRules()) = %q, %v; want %q", explicit, err, got)
			}
		})
	}
}

func TestTagsCustomRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string
		rules string // one rule per line
		now   time.Time
		want  []string
	}{
		{
			name:  "raw branch and sha on main",
			file:  "push-branch.json",
			rules: "type=raw,value={{branch}}-{{sha}}",
			want:  []string{"main-3f1c5a7"},
		},
		{
			name:  "raw branch and sha on slash branch is sanitized",
			file:  "push-branch-slash.json",
			rules: "type=raw,value={{branch}}-{{sha}}",
			want:  []string{"feature-Login-Form-2-70e12e2"},
		},
		{
			// Gantry's {{branch}} is the PR's head branch (documented on
			// Context.Branch; metadata-action leaves it empty for PRs).
			name:  "raw branch and sha on a PR uses head branch and head sha",
			file:  "pull_request.json",
			rules: "type=raw,value={{branch}}-{{sha}}",
			want:  []string{"feature-search-c0ffee0"},
		},
		{
			name:  "raw tag placeholder",
			file:  "push-tag.json",
			rules: "type=raw,value=release-{{tag}}",
			want:  []string{"release-v1.2.3"},
		},
		{
			name:  "is_default_branch true on main",
			file:  "push-branch.json",
			rules: "type=raw,value=stable,enable={{is_default_branch}}\ntype=ref,event=branch",
			want:  []string{"stable", "main"},
		},
		{
			name:  "is_default_branch false on another branch",
			file:  "push-branch-slash.json",
			rules: "type=raw,value=stable,enable={{is_default_branch}}\ntype=ref,event=branch",
			want:  []string{"feature-Login-Form-2"},
		},
		{
			name:  "is_default_branch false on a PR into main",
			file:  "pull_request.json",
			rules: "type=raw,value=stable,enable={{is_default_branch}}\ntype=ref,event=pr",
			want:  []string{"pr-42"},
		},
		{
			name:  "is_default_branch false on a tag",
			file:  "push-tag.json",
			rules: "type=raw,value=stable,enable={{is_default_branch}}\ntype=semver,pattern={{version}}",
			want:  []string{"1.2.3", "latest"},
		},
		{
			name:  "enable false",
			file:  "push-branch.json",
			rules: "type=ref,event=branch,enable=false\ntype=sha",
			want:  []string{"sha-3f1c5a7"},
		},
		{
			name:  "sha long",
			file:  "push-branch.json",
			rules: "type=sha,format=long",
			want:  []string{"sha-3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c"},
		},
		{
			name:  "sha with empty prefix is just the sha",
			file:  "push-branch.json",
			rules: "type=sha,prefix=",
			want:  []string{"3f1c5a7"},
		},
		{
			name:  "sha with own prefix and suffix",
			file:  "push-branch.json",
			rules: "type=sha,prefix=git-,suffix=-amd64",
			want:  []string{"git-3f1c5a7-amd64"},
		},
		{
			// metadata-action README, "Global expressions": prefix and
			// suffix take {{branch}}, {{sha}} ... like value does.
			name:  "placeholder in a rule prefix is expanded",
			file:  "push-branch.json",
			rules: "type=sha,prefix={{branch}}-",
			want:  []string{"main-3f1c5a7"},
		},
		{
			// metadata-action expands the flavor's prefix and suffix too.
			name:  "placeholder in a flavor suffix is expanded",
			file:  "push-tag.json",
			rules: "type=semver,pattern={{version}}\nsuffix=-{{sha}}",
			want:  []string{"1.2.3-9a8b7c6", "latest"},
		},
		{
			name:  "placeholder in a rule suffix is expanded",
			file:  "schedule.json",
			rules: "type=schedule,suffix=-{{date 'YYYYMMDD'}}",
			want:  []string{"nightly-20261121"},
		},
		{
			name:  "latest=false removes latest from a release",
			file:  "push-tag.json",
			rules: "type=semver,pattern={{version}}\ntype=semver,pattern={{major}}\nlatest=false",
			want:  []string{"1.2.3", "1"},
		},
		{
			// The tags input holds the flavor too, so a flavor line alone
			// must not throw away the default rules (the image would be
			// pushed untagged).
			name:  "a flavor line alone keeps the default rules",
			file:  "push-tag.json",
			rules: "latest=false",
			want:  []string{"1.2.3", "1.2", "1", "sha-9a8b7c6"},
		},
		{
			// metadata-action: a rule's own prefix (sha- and pr- by
			// default) replaces the flavor prefix instead of stacking.
			name:  "flavor prefix yields to the rule's own prefix",
			file:  "push-branch.json",
			rules: "type=ref,event=branch\ntype=sha\ntype=raw,value=x,prefix=\nprefix=app-",
			want:  []string{"app-main", "sha-3f1c5a7", "x"},
		},
		{
			name:  "date pattern with single-letter tokens and literal digits",
			file:  "schedule.json",
			rules: "type=schedule,pattern={{date 'YYYY.M.D-1'}}",
			want:  []string{"2026.11.21-1"},
		},
		{
			name:  "latest=true adds latest to a branch run",
			file:  "push-branch.json",
			rules: "type=ref,event=branch\nlatest=true",
			want:  []string{"main", "latest"},
		},
		{
			name:  "flavor prefix and suffix on every tag but not latest",
			file:  "push-tag.json",
			rules: "type=semver,pattern={{version}}\ntype=semver,pattern={{major}}.{{minor}}\nprefix=app-,suffix=-alpine",
			want:  []string{"app-1.2.3-alpine", "app-1.2-alpine", "latest"},
		},
		{
			name:  "flavor prefix with onlatest",
			file:  "push-tag.json",
			rules: "type=semver,pattern={{version}}\nprefix=app-,onlatest=true",
			want:  []string{"app-1.2.3", "app-latest"},
		},
		{
			name:  "flavor suffix with onlatest",
			file:  "push-tag.json",
			rules: "type=semver,pattern={{version}}\nsuffix=-alpine,onlatest=true",
			want:  []string{"1.2.3-alpine", "latest-alpine"},
		},
		{
			name:  "flavor applies to branch tags",
			file:  "push-branch.json",
			rules: "type=ref,event=branch\nprefix=app-,suffix=-alpine",
			want:  []string{"app-main-alpine"},
		},
		{
			name:  "semver v-major pattern",
			file:  "push-tag.json",
			rules: "type=semver,pattern=v{{major}}",
			want:  []string{"v1", "latest"},
		},
		{
			name:  "semver raw pattern keeps the v",
			file:  "push-tag.json",
			rules: "type=semver,pattern={{raw}}",
			want:  []string{"v1.2.3", "latest"},
		},
		{
			name:  "semver patch pattern",
			file:  "push-tag.json",
			rules: "type=semver,pattern={{major}}.{{minor}}.{{patch}}",
			want:  []string{"1.2.3", "latest"},
		},
		{
			name:  "semver on a prerelease: only full versions",
			file:  "push-tag-prerelease.json",
			rules: "type=semver,pattern={{version}}\ntype=semver,pattern={{major}}.{{minor}}\ntype=semver,pattern={{major}}\ntype=semver,pattern=v{{major}}",
			want:  []string{"2.0.0-rc.1"},
		},
		{
			// metadata-action: semver has the higher priority, so the
			// prerelease decides latest=false and ref,event=tag cannot turn
			// it back on.
			name:  "prerelease with semver and ref,event=tag gets no latest",
			file:  "push-tag-prerelease.json",
			rules: "type=semver,pattern={{version}}\ntype=ref,event=tag",
			want:  []string{"2.0.0-rc.1", "v2.0.0-rc.1"},
		},
		{
			name:  "semver rules do nothing on a non-semver tag",
			file:  "push-tag-nonsemver.json",
			rules: "type=semver,pattern={{version}}\ntype=semver,pattern={{major}}",
			want:  nil,
		},
		{
			name:  "semver rules do nothing on a branch",
			file:  "push-branch.json",
			rules: "type=semver,pattern={{version}}\ntype=semver,pattern={{major}}",
			want:  nil,
		},
		{
			name:  "0.x: {{major}} yields no 0 tag",
			file:  "push-branch.json",
			rules: "type=semver,pattern={{version}},value=v0.4.1\ntype=semver,pattern={{major}}.{{minor}},value=v0.4.1\ntype=semver,pattern={{major}},value=v0.4.1",
			want:  []string{"0.4.1", "0.4", "latest"},
		},
		{
			name:  "semver from value on a branch run",
			file:  "push-branch.json",
			rules: "type=semver,pattern={{major}}.{{minor}},value=3.1.4\nlatest=false",
			want:  []string{"3.1"},
		},
		{
			name:  "schedule default pattern",
			file:  "schedule.json",
			rules: "type=schedule",
			want:  []string{"nightly"},
		},
		{
			name:  "schedule date pattern uses Now",
			file:  "schedule.json",
			rules: "type=schedule,pattern={{date 'YYYYMMDD'}}",
			want:  []string{"20261121"},
		},
		{
			name:  "schedule date and time",
			file:  "schedule.json",
			rules: "type=schedule,pattern=nightly-{{date 'YYYYMMDD-HHmmss'}}",
			want:  []string{"nightly-20261121-030007"},
		},
		{
			// Dates are UTC whatever the zone of Now: 01:00 in Tokyo on the
			// 21st is the 20th in UTC.
			name:  "schedule date is UTC",
			file:  "schedule.json",
			rules: "type=schedule,pattern={{date 'YYYY.MM.DD'}}",
			now:   time.Date(2026, 11, 21, 1, 0, 0, 0, time.FixedZone("JST", 9*3600)),
			want:  []string{"2026.11.20"},
		},
		{
			// The comma inside {{ }} does not split the rule.
			name:  "comma inside a date pattern",
			file:  "schedule.json",
			rules: "type=schedule,pattern={{date 'YYYY,MM'}}",
			want:  []string{"2026-11"},
		},
		{
			name:  "schedule rule does nothing on push",
			file:  "push-branch.json",
			rules: "type=schedule,pattern={{date 'YYYYMMDD'}}",
			want:  nil,
		},
		{
			name:  "edge on the default branch",
			file:  "push-branch.json",
			rules: "type=edge",
			want:  []string{"edge"},
		},
		{
			name:  "edge not on another branch",
			file:  "push-branch-slash.json",
			rules: "type=edge",
			want:  nil,
		},
		{
			name:  "edge with an explicit branch",
			file:  "push-branch-slash.json",
			rules: "type=edge,branch=feature/Login-Form#2",
			want:  []string{"edge"},
		},
		{
			name:  "edge not on a PR",
			file:  "pull_request.json",
			rules: "type=edge,branch=feature/search",
			want:  nil,
		},
		{
			name:  "edge not on a tag",
			file:  "push-tag.json",
			rules: "type=edge\nlatest=false",
			want:  nil,
		},
		{
			name:  "ref,event=pr only on PRs",
			file:  "push-branch.json",
			rules: "type=ref,event=pr",
			want:  nil,
		},
		{
			name:  "ref,event=tag keeps the raw tag",
			file:  "push-tag.json",
			rules: "type=ref,event=tag",
			want:  []string{"v1.2.3", "latest"},
		},
		{
			name:  "two rules with the same tag give it once",
			file:  "push-branch.json",
			rules: "type=ref,event=branch\ntype=raw,value=main\ntype=raw,value={{branch}}",
			want:  []string{"main"},
		},
		{
			name:  "tags equal after sanitizing are deduplicated",
			file:  "push-branch-slash.json",
			rules: "type=ref,event=branch\ntype=raw,value=feature/Login-Form#2",
			want:  []string{"feature-Login-Form-2"},
		},
		{
			name:  "raw latest and latest=true give latest once",
			file:  "push-branch.json",
			rules: "type=raw,value=latest\nlatest=true",
			want:  []string{"latest"},
		},
		{
			name:  "keys are case-insensitive and values trimmed",
			file:  "push-branch.json",
			rules: "Type = raw , Value = beta ",
			want:  []string{"beta"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := contextFor(t, tt.file)
			if !tt.now.IsZero() {
				c.Now = tt.now
			}
			got, err := metadata.Tags(c, strings.Split(tt.rules, "\n"))
			if err != nil {
				t.Fatalf("Tags(%q): %v", tt.rules, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tags(%q) on %s = %q, want %q", tt.rules, tt.file, got, tt.want)
			}
		})
	}
}

func TestTagsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		line string
		want string // also in the message, besides the quoted line
	}{
		{"unknown type", "push-branch.json", "type=branch", `unknown type "branch"`},
		{"unknown attribute", "push-branch.json", "type=sha,pattern={{version}}", `no attribute "pattern"`},
		{"attribute of another type", "push-branch.json", "type=ref,event=branch,value=x", `no attribute "value"`},
		{"bad enable", "push-branch.json", "type=raw,value=x,enable=maybe", `enable="maybe"`},
		{"unknown placeholder in enable", "push-branch.json", "type=raw,value=x,enable={{is_main}}", "unknown placeholder"},
		{"unknown placeholder", "push-branch.json", "type=raw,value={{nope}}", "unknown placeholder"},
		{"unknown placeholder in semver", "push-tag.json", "type=semver,pattern={{mayor}}", "unknown placeholder"},
		{"unknown placeholder in schedule", "schedule.json", "type=schedule,pattern={{time}}", "unknown placeholder"},
		{"unknown placeholder in prefix", "push-branch.json", "type=sha,prefix={{nope}}-", "unknown placeholder"},
		{"no type and not a flavor", "push-branch.json", "value=foo", "has no type="},
		{"not key=value", "push-branch.json", "type=raw,foo", `"foo" is not key=value`},
		{"bad latest flavor", "push-branch.json", "latest=sometimes", `latest="sometimes"`},
		{"bad ref event", "push-branch.json", "type=ref,event=push", `event="push"`},
		{"ref without event", "push-branch.json", "type=ref", `event=""`},
		{"bad sha format", "push-branch.json", "type=sha,format=medium", `format="medium"`},
		{"semver without pattern", "push-tag.json", "type=semver", "needs pattern="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := contextFor(t, tt.file)
			got, err := metadata.Tags(c, []string{"type=ref,event=branch", tt.line})
			if err == nil {
				t.Fatalf("Tags(%q) = %q, want an error", tt.line, got)
			}
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(tt.line)) {
				t.Errorf("error %q does not name the rule %q", msg, tt.line)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
			if got != nil {
				t.Errorf("Tags returned tags %q along with the error", got)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 200)
	tests := []struct {
		name, in, want string
	}{
		{"valid tag unchanged", "v1.2.3_rc-1.ALPHA", "v1.2.3_rc-1.ALPHA"},
		{"slash and hash", "feature/Login-Form#2", "feature-Login-Form-2"},
		{"space", "my tag", "my-tag"},
		{"plus of build metadata", "1.2.3+build.5", "1.2.3-build.5"},
		{"leading dot", ".hidden", "hidden"},
		{"leading dashes", "--x", "x"},
		{"leading dots and dashes mixed", ".-.-x.y", "x.y"},
		{"leading invalid chars become dashes and go", "/#x", "x"},
		{"trailing dot and dash kept", "x.-", "x.-"},
		{"200 chars cut to 128", long, long[:128]},
		{"cut after trimming", "..." + long, long[:128]},
		{"accented letter", "café", "caf-"},
		{"leading non-ASCII dropped", "über", "ber"},
		{"only non-ASCII", "日本", ""},
		{"emoji", "v1🚀", "v1-"},
		{"empty", "", ""},
		{"only dots", "...", ""},
		{"a run of invalid characters is one dash", "a//b  c", "a-b-c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := metadata.Sanitize(tt.in); got != tt.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}

	t.Run("result is always a valid OCI tag", func(t *testing.T) {
		t.Parallel()
		for _, in := range []string{long, "x" + strings.Repeat("é", 200), "-" + strings.Repeat("日", 60) + "z", "a b/c#d:e@f"} {
			got := metadata.Sanitize(in)
			if len(got) > 128 {
				t.Errorf("Sanitize(%.20q...) is %d bytes, want at most 128", in, len(got))
			}
			for i, r := range got {
				ok := r == '_' || r == '.' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
				if !ok || (i == 0 && (r == '.' || r == '-')) {
					t.Errorf("Sanitize(%.20q...) = %q: invalid %q at %d", in, got, r, i)
					break
				}
			}
		}
	})
}

func TestParseSemver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   metadata.Semver
		ok     bool
		String string
	}{
		{"1.2.3", metadata.Semver{Major: 1, Minor: 2, Patch: 3}, true, "1.2.3"},
		{"v1.2.3", metadata.Semver{Major: 1, Minor: 2, Patch: 3}, true, "1.2.3"},
		{"v0.0.0", metadata.Semver{}, true, "0.0.0"},
		{"v10.20.30", metadata.Semver{Major: 10, Minor: 20, Patch: 30}, true, "10.20.30"},
		{"v2.0.0-rc.1", metadata.Semver{Major: 2, Pre: "rc.1"}, true, "2.0.0-rc.1"},
		{"1.2.3-alpha-1.0a", metadata.Semver{Major: 1, Minor: 2, Patch: 3, Pre: "alpha-1.0a"}, true, "1.2.3-alpha-1.0a"},
		{"v1.2.3-rc.1+build.5", metadata.Semver{Major: 1, Minor: 2, Patch: 3, Pre: "rc.1", Build: "build.5"}, true, "1.2.3-rc.1"},
		{"1.2.3+20261121.sha-3f1c5a7", metadata.Semver{Major: 1, Minor: 2, Patch: 3, Build: "20261121.sha-3f1c5a7"}, true, "1.2.3"},
		{"1.2", metadata.Semver{}, false, ""},
		{"1", metadata.Semver{}, false, ""},
		{"1.2.3.4", metadata.Semver{}, false, ""},
		{"01.2.3", metadata.Semver{}, false, ""},
		{"1.02.3", metadata.Semver{}, false, ""},
		{"1.2.3-01", metadata.Semver{}, false, ""},
		{"1.2.3-", metadata.Semver{}, false, ""},
		{"1.2.3+", metadata.Semver{}, false, ""},
		{"1.2.3-rc..1", metadata.Semver{}, false, ""},
		{"vv1.2.3", metadata.Semver{}, false, ""},
		{"V1.2.3", metadata.Semver{}, false, ""},
		{" 1.2.3", metadata.Semver{}, false, ""},
		{"release-2026-11", metadata.Semver{}, false, ""},
		{"", metadata.Semver{}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := metadata.ParseSemver(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("ParseSemver(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok && got.String() != tt.String {
				t.Errorf("ParseSemver(%q).String() = %q, want %q", tt.in, got.String(), tt.String)
			}
		})
	}
}

func TestOCILabels(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 20, 14, 3, 11, 0, time.FixedZone("CET", 3600))
	const desc = "Compose, version and ship LLM prompt templates from the command line."
	tests := []struct {
		name     string
		ctx      func(t *testing.T) metadata.Context
		tags     []string
		repoPath string
		want     map[string]string
	}{
		{
			name: "push-tag",
			ctx:  func(t *testing.T) metadata.Context { return contextFor(t, "push-tag.json") },
			tags: []string{"1.2.3", "1.2", "1", "sha-9a8b7c6", "latest"},
			want: map[string]string{
				"org.opencontainers.image.created":     "2026-11-20T13:03:11Z",
				"org.opencontainers.image.title":       "Prompt-Builder",
				"org.opencontainers.image.source":      "https://github.com/acme/Prompt-Builder",
				"org.opencontainers.image.url":         "https://github.com/acme/Prompt-Builder",
				"org.opencontainers.image.revision":    "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
				"org.opencontainers.image.version":     "1.2.3",
				"org.opencontainers.image.licenses":    "MIT",
				"org.opencontainers.image.description": desc,
			},
		},
		{
			name: "push-branch: version is the first tag",
			ctx:  func(t *testing.T) metadata.Context { return contextFor(t, "push-branch.json") },
			tags: []string{"main", "sha-3f1c5a7"},
			want: map[string]string{
				"org.opencontainers.image.created":     "2026-11-20T13:03:11Z",
				"org.opencontainers.image.title":       "Prompt-Builder",
				"org.opencontainers.image.source":      "https://github.com/acme/Prompt-Builder",
				"org.opencontainers.image.url":         "https://github.com/acme/Prompt-Builder",
				"org.opencontainers.image.revision":    "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c",
				"org.opencontainers.image.version":     "main",
				"org.opencontainers.image.licenses":    "MIT",
				"org.opencontainers.image.description": desc,
			},
		},
		{
			name: "schedule-legacy: no licence or description in the payload",
			ctx:  func(t *testing.T) metadata.Context { return contextFor(t, "schedule-legacy.json") },
			tags: []string{"nightly", "main"},
			want: map[string]string{
				"org.opencontainers.image.created":  "2026-11-20T13:03:11Z",
				"org.opencontainers.image.title":    "Prompt-Builder",
				"org.opencontainers.image.source":   "https://github.com/acme/Prompt-Builder",
				"org.opencontainers.image.url":      "https://github.com/acme/Prompt-Builder",
				"org.opencontainers.image.revision": "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c",
				"org.opencontainers.image.version":  "nightly",
			},
		},
		{
			name:     "local run: title from the image repository, empty values left out",
			ctx:      func(*testing.T) metadata.Context { return metadata.Context{} },
			repoPath: "acme/prompt-builder",
			want: map[string]string{
				"org.opencontainers.image.created": "2026-11-20T13:03:11Z",
				"org.opencontainers.image.title":   "prompt-builder",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := metadata.OCI(tt.ctx(t), created, tt.tags, tt.repoPath)
			if !maps.Equal(got, tt.want) {
				for _, k := range slices.Sorted(maps.Keys(got)) {
					t.Logf("got  %s=%q", k, got[k])
				}
				t.Errorf("OCI labels differ:\n got %v\nwant %v", got, tt.want)
			}
			for k, v := range got {
				if v == "" {
					t.Errorf("label %s is empty, want it left out", k)
				}
			}
		})
	}
}

func TestParseEpoch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"1763643791", time.Unix(1763643791, 0).UTC(), false},
		{" 0\n", time.Unix(0, 0).UTC(), false},
		{"", time.Time{}, true},
		{"-1", time.Time{}, true},
		{"1.5", time.Time{}, true},
		{"2026-11-20", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := metadata.ParseEpoch(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseEpoch(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
					t.Errorf("error %q does not name SOURCE_DATE_EPOCH", err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ParseEpoch(%q) = %v, %v; want %v in UTC", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCommitTime(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(),
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
			"GIT_AUTHOR_DATE=2026-11-20T14:03:11+01:00",
			"GIT_COMMITTER_DATE=2026-11-20T14:03:11+01:00",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "first")

	got, err := metadata.CommitTime(t.Context(), dir)
	if err != nil {
		t.Fatalf("CommitTime: %v", err)
	}
	if want := time.Date(2026, 11, 20, 13, 3, 11, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("CommitTime = %v, want %v", got, want)
	}

	if got, err := metadata.CommitTime(t.Context(), t.TempDir()); err == nil {
		t.Errorf("CommitTime of a directory that is not a checkout = %v, want an error", got)
	}
}
