package slacknotify

import (
	"fmt"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/gantry-ci/gantry/internal/metadata"
)

// RunContext is the workflow run a message is about: the commit and ref
// that metadata.Context already reads, plus what a notification shows
// (workflow, job, actor, the commit's message and author). Build it with
// RunContextFrom in a runner, or fill it directly in tests and local runs.
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

// RunContextFrom reads the runner's context and event payload.
func RunContextFrom(gc *githubactions.GitHubContext, now time.Time) RunContext {
	rc := RunContext{
		Context:    metadata.FromGitHub(gc, now),
		Workflow:   gc.Workflow,
		Job:        gc.Job,
		Actor:      gc.Actor,
		RunNumber:  gc.RunNumber,
		RunAttempt: gc.RunAttempt,
	}
	ev := gc.Event
	if hc, ok := ev["head_commit"].(map[string]any); ok {
		rc.CommitMessage, _ = hc["message"].(string)
		if a, ok := hc["author"].(map[string]any); ok {
			rc.CommitAuthor, _ = a["name"].(string)
			if rc.CommitAuthor == "" {
				rc.CommitAuthor, _ = a["username"].(string)
			}
		}
	}
	if pr, ok := ev["pull_request"].(map[string]any); ok {
		if rc.CommitMessage == "" {
			rc.CommitMessage, _ = pr["title"].(string)
		}
		rc.PRURL, _ = pr["html_url"].(string)
		if u, ok := pr["user"].(map[string]any); ok && rc.CommitAuthor == "" {
			rc.CommitAuthor, _ = u["login"].(string)
		}
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
