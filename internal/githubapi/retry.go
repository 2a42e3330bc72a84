package githubapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v84/github"

	"github.com/gantry-ci/gantry/internal/retry"
)

// do runs call under RetryPolicy until it succeeds, GitHub says something
// retrying cannot change, or maxAttempts is reached. r supplies owner/repo
// for hints.
func (c *Client) do(ctx context.Context, op string, r Request, call func(context.Context) (*github.Response, error)) error {
	p := RetryPolicy(c.maxAttempts, c.maxWait)
	p.Sleep = c.sleep
	var resp *github.Response
	err := p.Do(ctx, func(ctx context.Context) error {
		var err error
		if resp, err = call(ctx); err != nil {
			return c.newAPIError(op, r, resp, err)
		}
		return nil
	}, func(err error) retry.Verdict {
		return Classify(resp, err, c.now())
	})
	return FromRetry(err)
}

// RetryPolicy is how GitHub API calls are retried: attempts in all, server
// errors backing off 1 s, 2 s, 4 s … (one client per job, so no jitter is
// needed to spread a herd), and no wait longer than maxWait. Callers set
// Sleep and Log.
func RetryPolicy(attempts int, maxWait time.Duration) retry.Policy {
	return retry.Policy{
		Attempts: attempts,
		Initial:  time.Second,
		MaxWait:  maxWait,
		// Asking again early only earns another refusal, and GitHub may
		// block integrations that keep trying while limited.
		TooLong: func(wait, maxWait time.Duration) string {
			return fmt.Sprintf("GitHub asks to wait %s, longer than the %s this stage waits; re-run the job later", wait.Round(time.Second), maxWait)
		},
	}
}

// FromRetry turns what RetryPolicy's Do returned for a call whose attempts
// fail with an *APIError into that APIError, noting why the retries ended.
// Other errors are returned as they are.
func FromRetry(err error) error {
	var re *retry.Error
	if !errors.As(err, &re) {
		return err
	}
	e, ok := re.Err.(*APIError)
	if !ok {
		return err
	}
	e.Note, e.Stop = re.Reason, re.Stop
	return e
}

// Classify says whether a failed GitHub API call is worth another attempt
// and whether GitHub asked for a wait. GitHub's guidance for rate limits
// (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#handle-rate-limit-errors-appropriately):
// honour Retry-After; else, with x-ratelimit-remaining 0, wait until
// x-ratelimit-reset (measured against now); else wait at least a minute.
// Server errors and calls GitHub never answered back off; anything else is
// final.
func Classify(resp *github.Response, err error, now time.Time) retry.Verdict {
	if resp == nil || resp.Response == nil {
		// No answer at all: a reset connection or the http.Client's own
		// timeout, as transient as a 502. (The caller's context ending
		// stops the retries before they get here.)
		return retry.Backoff()
	}
	h, code := resp.Header, resp.StatusCode
	retryAfter, hasRetryAfter := parseRetryAfter(h.Get("Retry-After"), now)
	var abuse *github.AbuseRateLimitError
	switch {
	case code == http.StatusTooManyRequests ||
		code == http.StatusForbidden && (hasRetryAfter || h.Get(github.HeaderRateRemaining) == "0" || errors.As(err, &abuse)):
		// Every GitHub answer carries x-ratelimit-reset, so only a zero
		// remaining count makes it the reason for a 403.
		switch reset, ok := parseReset(h); {
		case hasRetryAfter:
			return retry.After(retryAfter)
		case h.Get(github.HeaderRateRemaining) == "0" && ok:
			return retry.After(reset.Sub(now) + time.Second) // a second for clock skew between runner and GitHub
		default:
			return retry.After(time.Minute)
		}
	case code >= 500 && code != http.StatusNotImplemented:
		if hasRetryAfter {
			return retry.After(retryAfter)
		}
		return retry.Backoff()
	}
	return retry.Permanent("")
}

// parseRetryAfter reads Retry-After as seconds (what GitHub sends) or as an
// HTTP date (what RFC 9110 also allows).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now), true
	}
	return 0, false
}

func parseReset(h http.Header) (time.Time, bool) {
	s, err := strconv.ParseInt(h.Get(github.HeaderRateReset), 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}, false
	}
	return time.Unix(s, 0), true
}

// APIError reports a failed GitHub API call as "<op>: <status> <text>:
// <GitHub's message> (<hint>; <why it stopped>)", with the token scrubbed.
type APIError struct {
	Op     string
	Status int    // 0 when GitHub never answered
	Detail string // GitHub's message, or the transport error
	Hint   string // what the user can change
	Note   string // why the retries stopped
	Err    error  // the go-github error, for errors.As
	Stop   error  // the context's error when it ended the retries, for errors.Is(err, context.Canceled)
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
		if e.Detail != "" {
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Detail)
	var notes []string
	for _, n := range []string{e.Hint, e.Note} {
		if n != "" {
			notes = append(notes, n)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, "; "))
	}
	return b.String()
}

func (e *APIError) Unwrap() []error {
	if e.Stop != nil {
		return []error{e.Err, e.Stop}
	}
	return []error{e.Err}
}

func (c *Client) newAPIError(op string, r Request, resp *github.Response, err error) *APIError {
	e := &APIError{Op: op, Err: err, Detail: c.redact(ErrorDetail(err))}
	if resp != nil && resp.Response != nil {
		e.Status = resp.StatusCode
	}
	switch e.Status {
	case http.StatusUnauthorized:
		e.Hint = `check input "github-token"`
	case http.StatusForbidden:
		if resp.Header.Get(github.HeaderRateRemaining) != "0" && resp.Header.Get("Retry-After") == "" {
			e.Hint = `the token needs "permissions: deployments: write" on the job`
		}
	case http.StatusNotFound:
		e.Hint = fmt.Sprintf("repository %s/%s does not exist or the token cannot see it", r.Owner, r.Repo)
	}
	return e
}

// ErrorDetail extracts GitHub's own words from a go-github error, whose
// Error() repeats the method and URL that the caller's message already names.
func ErrorDetail(err error) string {
	var (
		resp     *github.ErrorResponse
		rate     *github.RateLimitError
		abuse    *github.AbuseRateLimitError
		accepted *github.AcceptedError
		uerr     *url.Error
	)
	switch {
	case errors.As(err, &resp):
		var parts []string
		if resp.Message != "" {
			parts = append(parts, resp.Message)
		}
		for _, e := range resp.Errors {
			if e.Message != "" {
				parts = append(parts, e.Message)
			} else {
				parts = append(parts, fmt.Sprintf("%s %s: %s", e.Resource, e.Field, strings.ReplaceAll(e.Code, "_", " ")))
			}
		}
		return strings.Join(parts, "; ")
	case errors.As(err, &rate):
		return rate.Message
	case errors.As(err, &abuse):
		return abuse.Message
	case errors.As(err, &accepted):
		// 202 is how GitHub reports it merged the default branch instead of
		// deploying (auto_merge); the body says what it did.
		var m struct{ Message string }
		_ = json.Unmarshal(accepted.Raw, &m)
		return m.Message
	case errors.As(err, &uerr):
		// The transport's reason; the URL is the caller's to name.
		return uerr.Err.Error()
	default:
		return err.Error()
	}
}

// redact removes the token from text that came from the network: a server
// (or a proxy in front of GHES) may echo request headers in its error body.
func (c *Client) redact(s string) string {
	return strings.ReplaceAll(s, c.token, "***")
}
