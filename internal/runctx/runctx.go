// Package runctx describes the CI run a stage works for: the repository,
// the commit and ref, the workflow and the run. It is built once, from the
// environment (FromEnv under GitHub Actions, FromCI anywhere), and handed
// to every stage, so no stage reads GITHUB_* or the event payload itself
// and `gantry run` can give all its stages the same run.
package runctx

import (
	"strconv"
	"strings"
	"time"
)

// What Run.CI names.
const (
	GitHubActions = "github-actions" // GitHub Actions, or a runner that speaks its protocol (act, Gitea, Forgejo)
	GitLabCI      = "gitlab-ci"
	LocalCI       = "local" // a laptop, or a CI Gantry does not know: the run is read from the checkout
)

// Run is one CI run, as the stages see it. The string fields hold what the
// CI says, "" when it says nothing (no default is filled in: a stage that
// needs github.com for an empty ServerURL says so where it uses it).
//
// A Run is read-only once built: gantry run hands the same one to every
// stage.
type Run struct {
	// CI is GitHubActions, GitLabCI, LocalCI, or "" when GITHUB_*
	// variables were read outside a runner (set by hand, or a test).
	CI string
	// Local is true for a run outside any CI that Gantry knows: what it
	// knows comes from the git checkout.
	Local bool

	ServerURL string // the forge's web address: https://github.com (GITHUB_SERVER_URL, CI_SERVER_URL)
	APIURL    string // GitHub's REST API: https://api.github.com (GITHUB_API_URL); "" off GitHub

	Repository        string // owner/name (GITHUB_REPOSITORY); GitLab's project path
	RepositoryID      string // GITHUB_REPOSITORY_ID, CI_PROJECT_ID
	RepositoryOwnerID string // GITHUB_REPOSITORY_OWNER_ID, CI_PROJECT_NAMESPACE_ID
	DefaultBranch     string // the repository's default branch, when the CI says which

	Ref     string // refs/heads/main, refs/tags/v1.2.3, refs/pull/42/merge; "" on a detached HEAD
	RefName string // main, v1.2.3, 42/merge
	RefType string // branch or tag
	SHA     string // the commit the run checked out (for a pull request, GitHub's merge commit)
	BaseRef string // a pull request's base branch (GITHUB_BASE_REF)
	HeadRef string // a pull request's head branch (GITHUB_HEAD_REF)

	Workflow    string // the workflow's name (GITHUB_WORKFLOW)
	WorkflowRef string // owner/name/.github/workflows/x.yml@refs/heads/main (GITHUB_WORKFLOW_REF)
	Job         string // the job's id (GITHUB_JOB, CI_JOB_NAME)
	EventName   string // push, pull_request, schedule ... (GITHUB_EVENT_NAME); CI_PIPELINE_SOURCE on GitLab; "local"
	// Event is the decoded event payload (the file GITHUB_EVENT_PATH
	// names); nil off GitHub. Read it with EventValue and EventString.
	Event map[string]any

	RunID             int64  // GITHUB_RUN_ID, CI_PIPELINE_ID
	RunNumber         int64  // GITHUB_RUN_NUMBER, CI_PIPELINE_IID
	RunAttempt        int64  // GITHUB_RUN_ATTEMPT; 0 when the CI has no attempts
	Actor             string // who started the run (GITHUB_ACTOR, GITLAB_USER_LOGIN)
	RunnerEnvironment string // github-hosted or self-hosted (RUNNER_ENVIRONMENT)
	// PipelineURL is the run's page when the CI names it (GitLab's
	// CI_PIPELINE_URL); RunURL builds GitHub's from the other fields.
	PipelineURL string

	// StartedOn is when the run, as Gantry sees it, started: the time it
	// was read, which is the stage's start in a stage binary and the
	// pipeline's in gantry run.
	StartedOn time.Time
}

// EventValue returns the value at path in the event payload, e.g.
// EventValue("pull_request", "head", "sha"); nil when a step of the path is
// missing or not an object.
func (r *Run) EventValue(path ...string) any {
	var v any = r.Event
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// EventString is EventValue for a string: "" when the value is missing or
// is not a string.
func (r *Run) EventString(path ...string) string {
	s, _ := r.EventValue(path...).(string)
	return s
}

// PRNumber is the pull request the run is for: the payload's number, else
// the one in a refs/pull/<n>/... ref; 0 for other runs.
func (r *Run) PRNumber() int {
	if n, ok := r.EventValue("pull_request", "number").(float64); ok && int(n) != 0 {
		return int(n)
	}
	if rest, ok := strings.CutPrefix(r.Ref, "refs/pull/"); ok {
		n, _ := strconv.Atoi(strings.Split(rest, "/")[0])
		return n
	}
	return 0
}

// IsPR reports whether the run is for a pull request.
func (r *Run) IsPR() bool {
	return r.PRNumber() > 0 || strings.HasPrefix(r.EventName, "pull_request")
}

// CommitSHA is the commit the run is about: for a pull request its head
// commit (what people see in the PR, not the merge commit GitHub checks
// out), else SHA.
func (r *Run) CommitSHA() string {
	if r.IsPR() {
		if sha := r.EventString("pull_request", "head", "sha"); sha != "" {
			return sha
		}
	}
	return r.SHA
}

// SourceURL is the repository's web address, "" when the repository is
// unknown. An empty ServerURL is github.com.
func (r *Run) SourceURL() string {
	if r.Repository == "" {
		return ""
	}
	server := r.ServerURL
	if server == "" {
		server = "https://github.com"
	}
	return strings.TrimSuffix(server, "/") + "/" + r.Repository
}

// RunURL links to the run: PipelineURL when the CI gave one, else the
// GitHub Actions run page (without the attempt); "" when neither the
// repository nor the run is known, as in a local run.
func (r *Run) RunURL() string {
	if r.PipelineURL != "" {
		return r.PipelineURL
	}
	if r.Repository == "" || r.RunID == 0 {
		return ""
	}
	return r.SourceURL() + "/actions/runs/" + strconv.FormatInt(r.RunID, 10)
}
