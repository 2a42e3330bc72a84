package detect

import (
	"github.com/gantry-ci/gantry/internal/runctx"
	"time"
)

// FromCI reads the run from whichever CI getenv describes: GitHub Actions
// when GITHUB_ACTIONS=true (runctx.FromEnv), GitLab CI when GITLAB_CI=true, else
// the git checkout at dir (Local), for a laptop or a CI Gantry does not
// know. As with runctx.FromEnv, the runctx.Run is never nil.
func FromCI(getenv func(string) string, dir string, now time.Time) (*runctx.Run, error) {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		return runctx.FromEnv(getenv, now)
	case getenv("GITLAB_CI") == "true":
		return fromGitLab(getenv, now)
	default:
		return Local(dir, now)
	}
}

// fromGitLab reads a GitLab CI job's predefined variables. A tag pipeline
// has ref refs/tags/<tag>; any other (branch, merge request, schedule) has
// refs/heads/<CI_COMMIT_REF_NAME>, the branch the commit is on. GitLab has
// no event payload: what GitHub's carries that stages use (the default
// branch) comes from its own variables.
func fromGitLab(getenv func(string) string, now time.Time) (*runctx.Run, error) {
	r := &runctx.Run{
		CI:                runctx.GitLabCI,
		ServerURL:         getenv("CI_SERVER_URL"),
		Repository:        getenv("CI_PROJECT_PATH"),
		RepositoryID:      getenv("CI_PROJECT_ID"),
		RepositoryOwnerID: getenv("CI_PROJECT_NAMESPACE_ID"),
		DefaultBranch:     getenv("CI_DEFAULT_BRANCH"),
		SHA:               getenv("CI_COMMIT_SHA"),
		RefName:           getenv("CI_COMMIT_REF_NAME"),
		Workflow:          getenv("CI_PIPELINE_NAME"),
		Job:               getenv("CI_JOB_NAME"),
		EventName:         getenv("CI_PIPELINE_SOURCE"),
		Actor:             getenv("GITLAB_USER_LOGIN"),
		PipelineURL:       getenv("CI_PIPELINE_URL"),
		StartedOn:         now,
	}
	switch tag := getenv("CI_COMMIT_TAG"); {
	case tag != "":
		r.Ref, r.RefName, r.RefType = "refs/tags/"+tag, tag, "tag"
	case r.RefName != "":
		r.Ref, r.RefType = "refs/heads/"+r.RefName, "branch"
	}
	err := runctx.ParseInts(getenv, map[string]*int64{
		"CI_PIPELINE_ID":  &r.RunID,
		"CI_PIPELINE_IID": &r.RunNumber,
	})
	return r, err
}
