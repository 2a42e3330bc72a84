// Package metadata turns the context of a run (event name, ref, SHA, event
// payload; see runctx) into image tags and OCI labels, with the semantics
// users know from docker/metadata-action.
package metadata

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/runctx"
)

// Context is what tag and label rules are evaluated against. Build it with
// FromRun from the run's context, or fill it directly in tests.
type Context struct {
	EventName     string // push, pull_request, workflow_dispatch, schedule ...
	Ref           string // refs/heads/main, refs/tags/v1.2.3, refs/pull/42/merge
	SHA           string // the commit the workflow runs on (the merge commit for a PR)
	Repository    string // owner/name
	ServerURL     string // https://github.com
	DefaultBranch string
	Description   string
	License       string // SPDX id from the repository, if GitHub knows it

	PRNumber  int
	PRHeadSHA string // the PR's head commit, which is what people see in the PR
	PRHeadRef string
	PRBaseRef string

	// RunURL links to the workflow run.
	RunURL string

	// Now is the time of the run; only date placeholders use it.
	Now time.Time
}

// FromRun reads the run's context: its ref and commits, and from the
// event payload the repository's default branch, description and licence
// and the pull request's number, head and base.
func FromRun(r *runctx.Run) Context {
	c := Context{
		EventName:     r.EventName,
		Ref:           r.Ref,
		SHA:           r.SHA,
		Repository:    r.Repository,
		ServerURL:     r.ServerURL,
		DefaultBranch: r.DefaultBranch,
		Description:   r.EventString("repository", "description"),
		PRNumber:      r.PRNumber(),
		PRHeadSHA:     r.EventString("pull_request", "head", "sha"),
		PRHeadRef:     r.HeadRef,
		PRBaseRef:     r.BaseRef,
		RunURL:        r.RunURL(),
		Now:           r.StartedOn,
	}
	if id := r.EventString("repository", "license", "spdx_id"); id != "NOASSERTION" {
		c.License = id
	}
	if c.Repository == "" {
		c.Repository = r.EventString("repository", "full_name")
	}
	if c.PRHeadRef == "" {
		c.PRHeadRef = r.EventString("pull_request", "head", "ref")
	}
	if c.PRBaseRef == "" {
		c.PRBaseRef = r.EventString("pull_request", "base", "ref")
	}
	return c
}

// IsPR reports whether the run is for a pull request.
func (c Context) IsPR() bool {
	return c.PRNumber > 0 || strings.HasPrefix(c.EventName, "pull_request")
}

// Branch is the branch name for branch runs ("" otherwise). For pull
// requests it is the PR's head branch.
func (c Context) Branch() string {
	if c.IsPR() {
		return c.PRHeadRef
	}
	if b, ok := strings.CutPrefix(c.Ref, "refs/heads/"); ok {
		return b
	}
	return ""
}

// Tag is the git tag for tag runs ("" otherwise).
func (c Context) Tag() string {
	if t, ok := strings.CutPrefix(c.Ref, "refs/tags/"); ok {
		return t
	}
	return ""
}

// CommitSHA is the commit images are tagged with: the PR head for pull
// requests (not the merge commit GitHub synthesises), else the run's SHA.
func (c Context) CommitSHA() string {
	if c.IsPR() && c.PRHeadSHA != "" {
		return c.PRHeadSHA
	}
	return c.SHA
}

// IsDefaultBranch reports whether the run is on the repository's default branch.
func (c Context) IsDefaultBranch() bool {
	// Scheduled runs always run on the default branch (GitHub runs them
	// nowhere else), even when the payload does not say which it is.
	if c.EventName == "schedule" {
		return true
	}
	b := c.Branch()
	return b != "" && !c.IsPR() && b == c.DefaultBranch
}

// SourceURL is the repository's web address.
func (c Context) SourceURL() string {
	if c.Repository == "" {
		return ""
	}
	server := c.ServerURL
	if server == "" {
		server = "https://github.com"
	}
	return strings.TrimSuffix(server, "/") + "/" + c.Repository
}

// CommitTime returns the committer time of HEAD in dir, the timestamp builds
// use for reproducible file times when SOURCE_DATE_EPOCH is not set.
func CommitTime(ctx context.Context, dir string) (time.Time, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--format=%ct").Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the commit time of %s: %w", dir, err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the commit time of %s: %w", dir, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// ParseEpoch parses SOURCE_DATE_EPOCH.
func ParseEpoch(s string) (time.Time, error) {
	sec, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time in seconds: set it to e.g. $(git log -1 --format=%%ct)", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}
