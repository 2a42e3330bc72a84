// Package githubapi records a Gantry deploy as a GitHub Deployment, so the
// environment, its history and a link back to the workflow run appear on the
// repository page and on pull requests, the place reviewers already look.
//
// Client speaks to the REST API through go-github and returns errors; Tracker
// is what the deploy stage uses, and it turns every error into a warning,
// because a deploy must never fail or roll back over bookkeeping.
//
// GitHub's API answers 5xx and rate limits often enough on busy runners that
// every call is retried a few times with backoff, honouring Retry-After.
// Nothing else is retried: a 4xx is a fact about the request or the token.
package githubapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v84/github"
)

// The deployment status states GitHub accepts
// (https://docs.github.com/en/rest/deployments/statuses).
const (
	StateQueued     = "queued"
	StateInProgress = "in_progress"
	StatePending    = "pending"
	StateSuccess    = "success"
	StateFailure    = "failure"
	StateError      = "error"
	StateInactive   = "inactive"
)

var states = []string{StateQueued, StateInProgress, StatePending, StateSuccess, StateFailure, StateError, StateInactive}

// maxDescription is GitHub's documented limit for a status description; a
// longer one is rejected with 422, which would lose the whole status.
const maxDescription = 140

// Client creates deployments and deployment statuses. It is safe for
// concurrent use.
type Client struct {
	gh    *github.Client
	token string // kept only to scrub it from error text

	sleep       func(ctx context.Context, d time.Duration) error
	now         func() time.Time
	maxAttempts int
	maxWait     time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithSleep replaces the wait between retries. Tests pass a recorder so a
// Retry-After of a minute costs nothing; sleep must return ctx.Err() when ctx
// ends first.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) { c.sleep = sleep }
}

// WithClock replaces the clock used to turn an x-ratelimit-reset time into a
// wait.
func WithClock(now func() time.Time) Option {
	return func(c *Client) { c.now = now }
}

// New returns a Client that authenticates with token. apiURL is the REST API
// root as GitHub Actions passes it in GITHUB_API_URL: empty means
// https://api.github.com/, and a GitHub Enterprise Server URL works with or
// without its /api/v3 suffix. A nil httpClient gets one with a 30 s timeout,
// so a hung connection costs one retry instead of the stage's whole budget.
func New(token, apiURL string, httpClient *http.Client, opts ...Option) (*Client, error) {
	// Secrets pasted into files often end in a newline, which Go refuses to
	// put in a header.
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, errors.New(`input "github-token" is empty: set it to ${{ github.token }} and give the job "permissions: deployments: write"`)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	gh := github.NewClient(httpClient).WithAuthToken(token)
	if apiURL != "" {
		u, err := url.Parse(apiURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("GitHub API URL %q is not an http(s) URL (expected e.g. https://api.github.com or https://ghe.example.com/api/v3)", apiURL)
		}
		// WithEnterpriseURLs leaves api.github.com and /api/v3 URLs alone and
		// adds /api/v3/ to a bare GHES host, which is what people paste.
		if gh, err = gh.WithEnterpriseURLs(apiURL, apiURL); err != nil {
			return nil, fmt.Errorf("GitHub API URL %q: %w", apiURL, err)
		}
	}
	// go-github refuses requests locally, by wall-clock time, while it
	// believes a rate limit is in force. Our retry loop already waits as long
	// as GitHub asks, so that check would only turn a retry into a failure
	// (and makes an injected clock useless).
	gh.DisableRateLimitCheck = true
	gh.UserAgent = "gantry " + gh.UserAgent

	c := &Client{
		gh:          gh,
		token:       token,
		sleep:       sleepContext,
		now:         time.Now,
		maxAttempts: 4,
		maxWait:     time.Minute,
	}
	for _, opt := range opts {
		opt(c)
	}
	return c, nil
}

// Deployment identifies a deployment GitHub created.
type Deployment struct {
	Owner, Repo string
	ID          int64
	URL         string // the API URL of the deployment
}

// Request describes the deployment to create.
type Request struct {
	Owner, Repo string // from GITHUB_REPOSITORY; see ParseRepository
	Ref         string // the commit SHA deployed
	Environment string // e.g. staging or production
	Description string // e.g. "gantry: ghcr.io/acme/app@sha256:…"
	Payload     map[string]any

	// Both flags are always sent as given. GitHub would otherwise guess
	// production_environment from the name "production", and a deploy stage
	// knows better than a guess.
	ProductionEnvironment, TransientEnvironment bool
}

// ParseRepository splits GITHUB_REPOSITORY ("owner/repo").
func ParseRepository(s string) (owner, repo string, err error) {
	owner, repo, ok := strings.Cut(s, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return "", "", fmt.Errorf("repository %q is not owner/name (GITHUB_REPOSITORY)", s)
	}
	return owner, repo, nil
}

func (r Request) validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"owner", r.Owner}, {"repo", r.Repo}, {"ref", r.Ref}, {"environment", r.Environment},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("deployment request is missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Create creates a deployment of r.Ref to r.Environment. It never asks
// GitHub to merge the default branch in (auto_merge false: the deployed
// commit is exactly the one built) and requires no commit status contexts
// (required_contexts []), because the image is already built, signed and
// scanned: a pending third-party check must not block recording the deploy.
func (c *Client) Create(ctx context.Context, r Request) (Deployment, error) {
	op := fmt.Sprintf("creating deployment for environment %s", r.Environment)
	if err := r.validate(); err != nil {
		return Deployment{}, fmt.Errorf("%s: %w", op, err)
	}
	body := &github.DeploymentRequest{
		Ref:                   github.Ptr(r.Ref),
		Task:                  github.Ptr("deploy"),
		AutoMerge:             github.Ptr(false),
		RequiredContexts:      &[]string{}, // a pointer, so the empty list is sent rather than omitted
		Environment:           github.Ptr(r.Environment),
		ProductionEnvironment: github.Ptr(r.ProductionEnvironment),
		TransientEnvironment:  github.Ptr(r.TransientEnvironment),
	}
	if r.Description != "" {
		body.Description = github.Ptr(r.Description)
	}
	if len(r.Payload) > 0 {
		body.Payload = r.Payload
	}
	var d *github.Deployment
	// A retry after a 5xx can, rarely, create a second deployment if the
	// first request did land; an extra entry in the environment's history
	// is a smaller harm than an unrecorded deploy.
	err := c.do(ctx, op, r, func(ctx context.Context) (resp *github.Response, err error) {
		d, resp, err = c.gh.Repositories.CreateDeployment(ctx, r.Owner, r.Repo, body)
		return resp, err
	})
	if err != nil {
		return Deployment{}, err
	}
	if d.GetID() == 0 {
		return Deployment{}, fmt.Errorf("%s: GitHub answered without a deployment id", op)
	}
	return Deployment{Owner: r.Owner, Repo: r.Repo, ID: d.GetID(), URL: d.GetURL()}, nil
}

// Status is one entry in a deployment's timeline.
type Status struct {
	State          string // one of the State* constants
	LogURL         string // the workflow run, shown as "View logs"
	EnvironmentURL string // the deployed app, shown as "View deployment"
	Description    string // cut to GitHub's 140-character limit

	// AutoInactive marks earlier successful deployments to the same
	// environment inactive. It is always sent, because GitHub defaults it to
	// true, and a failed deploy must not deactivate the version still
	// serving traffic.
	AutoInactive bool
}

// SetStatus adds s to deployment d.
func (c *Client) SetStatus(ctx context.Context, d Deployment, s Status) error {
	op := fmt.Sprintf("setting deployment %d status to %s", d.ID, s.State)
	if !validState(s.State) {
		return fmt.Errorf("%s: state %q is not one of %s", op, s.State, strings.Join(states, ", "))
	}
	if d.ID == 0 || d.Owner == "" || d.Repo == "" {
		return fmt.Errorf("%s: no deployment (owner, repo and id are required)", op)
	}
	body := &github.DeploymentStatusRequest{
		State:        github.Ptr(s.State),
		AutoInactive: github.Ptr(s.AutoInactive),
	}
	if s.LogURL != "" {
		body.LogURL = github.Ptr(s.LogURL)
	}
	if s.EnvironmentURL != "" {
		body.EnvironmentURL = github.Ptr(s.EnvironmentURL)
	}
	if s.Description != "" {
		body.Description = github.Ptr(truncate(s.Description, maxDescription))
	}
	return c.do(ctx, op, Request{Owner: d.Owner, Repo: d.Repo}, func(ctx context.Context) (*github.Response, error) {
		_, resp, err := c.gh.Repositories.CreateDeploymentStatus(ctx, d.Owner, d.Repo, d.ID, body)
		return resp, err
	})
}

func validState(s string) bool {
	for _, v := range states {
		if s == v {
			return true
		}
	}
	return false
}

// truncate cuts s to at most n characters, ending in "…" when it cut, and
// never splits a character (GitHub rejects invalid UTF-8).
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
