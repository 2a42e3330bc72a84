package runctx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"
)

// FromEnv reads the run GitHub Actions describes in getenv: the GITHUB_*
// variables, RUNNER_ENVIRONMENT, and the event payload GITHUB_EVENT_PATH
// names; now is StartedOn. Variables that are not set leave their fields
// empty, so outside Actions the Run is empty but for StartedOn.
//
// The Run is never nil. The error says what could not be read (a run
// number that is not a number, an event file that cannot be read or is
// not JSON); the Run then holds everything else, for a caller that can do
// with less. A GITHUB_EVENT_PATH naming no file is no error: the Run just
// has no payload, as go-githubactions has it.
func FromEnv(getenv func(string) string, now time.Time) (*Run, error) {
	r := &Run{
		ServerURL:         getenv("GITHUB_SERVER_URL"),
		APIURL:            getenv("GITHUB_API_URL"),
		Repository:        getenv("GITHUB_REPOSITORY"),
		RepositoryID:      getenv("GITHUB_REPOSITORY_ID"),
		RepositoryOwnerID: getenv("GITHUB_REPOSITORY_OWNER_ID"),
		Ref:               getenv("GITHUB_REF"),
		RefName:           getenv("GITHUB_REF_NAME"),
		RefType:           getenv("GITHUB_REF_TYPE"),
		SHA:               getenv("GITHUB_SHA"),
		BaseRef:           getenv("GITHUB_BASE_REF"),
		HeadRef:           getenv("GITHUB_HEAD_REF"),
		Workflow:          getenv("GITHUB_WORKFLOW"),
		WorkflowRef:       getenv("GITHUB_WORKFLOW_REF"),
		Job:               getenv("GITHUB_JOB"),
		EventName:         getenv("GITHUB_EVENT_NAME"),
		Actor:             getenv("GITHUB_ACTOR"),
		RunnerEnvironment: getenv("RUNNER_ENVIRONMENT"),
		StartedOn:         now,
	}
	if getenv("GITHUB_ACTIONS") == "true" {
		r.CI = GitHubActions
	}
	errs := ParseInts(getenv, map[string]*int64{
		"GITHUB_RUN_ID":      &r.RunID,
		"GITHUB_RUN_NUMBER":  &r.RunNumber,
		"GITHUB_RUN_ATTEMPT": &r.RunAttempt,
	})
	if path := getenv("GITHUB_EVENT_PATH"); path != "" {
		ev, err := readEvent(path)
		errs = errors.Join(errs, err)
		r.Event = ev
	}
	r.DefaultBranch = r.EventString("repository", "default_branch")
	return r, errs
}

// ParseInts reads CI variables that hold numbers into fields (name →
// field); an unset one is left alone, a malformed one is an error naming it.
func ParseInts(getenv func(string) string, fields map[string]*int64) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		v := getenv(name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not a number: the runner sets it; unset it outside a CI run", name, v))
			continue
		}
		*fields[name] = n
	}
	return errors.Join(errs...)
}

// readEvent decodes the event payload at path; nil without error when
// there is no such file.
func readEvent(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the event payload (GITHUB_EVENT_PATH): %w", err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("the event payload %s (GITHUB_EVENT_PATH) is not a JSON object: %w", path, err)
	}
	return ev, nil
}
