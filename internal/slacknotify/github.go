package slacknotify

import (
	"fmt"
	"strings"

	"github.com/gantry-ci/gantry/internal/metadata"
	"github.com/gantry-ci/gantry/internal/runctx"
)

// RunContext is the workflow run a message is about: the commit and ref
// that metadata.Context already reads, plus what a notification shows
// (workflow, job, actor, the commit's message and author). Build it with
// RunContextFromRun from the run's context, or fill it directly in tests.
type RunContext struct {
	metadata.Context

	Workflow   string // the workflow's name (GITHUB_WORKFLOW)
	Job        string // the job's id (GITHUB_JOB): the stage name when none is given
	Actor      string // who started the run
	RunNumber  int64
	RunAttempt int64

	// CommitMessage is the head commit's message for pushes, the PR title
	// for pull requests. Anyone who can push writes it: it is escaped like
	// every other value from the event.
	CommitMessage string
	// CommitAuthor is the head commit's author (name, else login), or the
	// PR's author.
	CommitAuthor string
	// PRURL links to the pull request, for pull request runs.
	PRURL string
}

// RunContextFromRun reads the run's context: what metadata.FromRun reads,
// the workflow, job and actor, and from the event payload the head
// commit's message and author, or the pull request's title, author and
// page.
func RunContextFromRun(r *runctx.Run) RunContext {
	rc := RunContext{
		Context:       metadata.FromRun(r),
		Workflow:      r.Workflow,
		Job:           r.Job,
		Actor:         r.Actor,
		RunNumber:     r.RunNumber,
		RunAttempt:    r.RunAttempt,
		CommitMessage: r.EventString("head_commit", "message"),
		CommitAuthor:  r.EventString("head_commit", "author", "name"),
		PRURL:         r.EventString("pull_request", "html_url"),
	}
	if rc.CommitAuthor == "" {
		rc.CommitAuthor = r.EventString("head_commit", "author", "username")
	}
	if rc.CommitMessage == "" {
		rc.CommitMessage = r.EventString("pull_request", "title")
	}
	if rc.CommitAuthor == "" {
		rc.CommitAuthor = r.EventString("pull_request", "user", "login")
	}
	if rc.CommitAuthor == "" {
		rc.CommitAuthor = rc.Actor
	}
	return rc
}

// CommitURL links to the commit the run is about.
func (rc RunContext) CommitURL() string {
	if rc.SourceURL() == "" || rc.CommitSHA() == "" {
		return ""
	}
	return rc.SourceURL() + "/commit/" + rc.CommitSHA()
}

// DeploymentsURL links to the repository's deployments page, where every
// environment's history is.
func (rc RunContext) DeploymentsURL() string {
	if rc.SourceURL() == "" {
		return ""
	}
	return rc.SourceURL() + "/deployments"
}

// refLabel names what was built: the tag, the branch, or the pull request.
func (rc RunContext) refLabel() string {
	switch {
	case rc.IsPR() && rc.PRNumber > 0:
		return fmt.Sprintf("#%d", rc.PRNumber)
	case rc.Tag() != "":
		return rc.Tag()
	case rc.Branch() != "":
		return rc.Branch()
	}
	return strings.TrimPrefix(rc.Ref, "refs/")
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
