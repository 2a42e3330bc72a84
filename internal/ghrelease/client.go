package ghrelease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/go-github/v84/github"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/githubapi"
	"github.com/gantry-ci/gantry/internal/retry"
)

// Retry bounds: GitHub answers 5xx and secondary rate limits often enough
// on busy runners that every call gets a few attempts, but a limit that
// asks for a longer wait than maxWait fails the step rather than sleeping
// through the job's budget.
const (
	maxAttempts = 4
	maxWait     = 2 * time.Minute
	// maxListPages bounds the search for a draft (100 releases a page).
	maxListPages = 10
)

// client is go-github's releases API with retries and errors that say
// which input to fix.
type client struct {
	gh          *github.Client
	owner, repo string
	token       string
	sleep       func(ctx context.Context, d time.Duration) error
	now         func() time.Time
	log         ghaction.Logger
}

func newClient(in *Inputs, s settings) *client {
	hc := in.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// No overall timeout (an upload of a large file takes as long as it
		// takes), but a server that stops answering fails the attempt.
		tr.ResponseHeaderTimeout = 2 * time.Minute
		hc = &http.Client{Transport: tr}
	}
	token := strings.TrimSpace(in.Token)
	gh := github.NewClient(hc).WithAuthToken(token)
	base := *s.apiURL
	gh.BaseURL = &base
	// Uploads go to the upload_url each release names; this base only has
	// to be a valid one.
	upload := base
	gh.UploadURL = &upload
	// go-github would refuse requests locally while it believes a rate
	// limit is in force; the retry loop below already waits as GitHub asks.
	gh.DisableRateLimitCheck = true
	gh.UserAgent = "gantry-release " + gh.UserAgent
	c := &client{gh: gh, owner: s.owner, repo: s.repo, token: token, sleep: in.Sleep, now: in.Now, log: in.Log}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// apiError is a failed call (githubapi.APIError: "<op>: <status>:
// <GitHub's message> (<hint>; <why it stopped>)").
type apiError = githubapi.APIError

// statusOf returns the HTTP status of a failed call, 0 when GitHub never
// answered.
func statusOf(err error) int {
	var e *apiError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// call runs fn under githubapi.RetryPolicy until it succeeds, fails in a
// way retrying cannot change, or maxAttempts is reached. Before a retry,
// recheck (when set) may find that the failed attempt did take effect,
// which ends the loop; an error of its own is returned as it is.
func (c *client) call(ctx context.Context, op string, fn func(ctx context.Context) (*github.Response, error), recheck func(ctx context.Context) (bool, error)) error {
	p := githubapi.RetryPolicy(maxAttempts, maxWait)
	p.Sleep, p.Log = c.sleep, c.log
	var resp *github.Response
	attempt := 0
	err := p.Do(ctx, func(ctx context.Context) error {
		if attempt++; attempt > 1 && recheck != nil {
			done, err := recheck(ctx)
			if err != nil {
				return &recheckError{err}
			}
			if done {
				return nil
			}
		}
		var err error
		if resp, err = fn(ctx); err != nil {
			return c.newError(op, resp, err)
		}
		return nil
	}, func(err error) retry.Verdict {
		if _, ok := err.(*recheckError); ok {
			return retry.Permanent("")
		}
		return c.classify(resp, err)
	})
	var re *retry.Error
	if errors.As(err, &re) {
		if r, ok := re.Err.(*recheckError); ok {
			return r.err
		}
	}
	return githubapi.FromRetry(err)
}

// recheckError carries a recheck's failure through the retry policy, which
// ends the retries on it.
type recheckError struct{ err error }

func (e *recheckError) Error() string { return e.err.Error() }
func (e *recheckError) Unwrap() error { return e.err }

// classify says whether a failure is worth another attempt
// (githubapi.Classify: GitHub's rate-limit guidance, backoff on server
// errors), refusing a host that does not exist outright.
func (c *client) classify(resp *github.Response, err error) retry.Verdict {
	if resp == nil || resp.Response == nil {
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return retry.Permanent(`check input "api-url"`)
		}
	}
	return githubapi.Classify(resp, err, c.now())
}

func (c *client) newError(op string, resp *github.Response, err error) *apiError {
	e := &apiError{Op: op, Err: err, Detail: c.redact(githubapi.ErrorDetail(err))}
	if resp != nil && resp.Response != nil {
		e.Status = resp.StatusCode
	}
	switch e.Status {
	case http.StatusUnauthorized:
		e.Hint = `GitHub refused input "token": pass ${{ secrets.GITHUB_TOKEN }} or a token that can write this repository's contents`
	case http.StatusForbidden:
		if resp.Header.Get(github.HeaderRateRemaining) != "0" && resp.Header.Get("Retry-After") == "" {
			e.Hint = `input "token" may not write releases: give the job "permissions: contents: write"`
		}
	case http.StatusNotFound:
		e.Hint = fmt.Sprintf(`input "repository": %s/%s does not exist or input "token" cannot see it`, c.owner, c.repo)
	}
	return e
}

// redact removes the token from text that came from the network: a proxy
// may echo request headers in its error page.
func (c *client) redact(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "***")
}

// escapeTag escapes a tag for a URL path, keeping the slashes of a
// monorepo tag (app/v1.2.3) as GitHub expects them.
func escapeTag(tag string) string {
	parts := strings.Split(tag, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// find returns the release of tag, a draft included, or nil. GitHub's
// release-by-tag endpoint does not return drafts, so a draft left by a
// failed run is found by listing the repository's releases.
func (c *client) find(ctx context.Context, tag string) (*github.RepositoryRelease, error) {
	var rel *github.RepositoryRelease
	err := c.call(ctx, "looking up the release of tag "+tag, func(ctx context.Context) (*github.Response, error) {
		r, resp, err := c.gh.Repositories.GetReleaseByTag(ctx, c.owner, c.repo, escapeTag(tag))
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return resp, nil
		}
		rel = r
		return resp, err
	}, nil)
	if err != nil {
		return nil, err
	}
	if rel != nil && rel.ID != nil {
		return rel, nil
	}
	opts := &github.ListOptions{PerPage: 100}
	for page := 1; page <= maxListPages; page++ {
		var list []*github.RepositoryRelease
		var next int
		err := c.call(ctx, "listing releases to find a draft of "+tag, func(ctx context.Context) (*github.Response, error) {
			l, resp, err := c.gh.Repositories.ListReleases(ctx, c.owner, c.repo, opts)
			list = l
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		}, nil)
		if err != nil {
			return nil, err
		}
		for _, r := range list {
			if r.GetDraft() && r.GetTagName() == tag {
				return r, nil
			}
		}
		if next == 0 {
			break
		}
		opts.Page = next
	}
	return nil, nil
}

// create creates a release. After a failed attempt it looks for the
// release before trying again, since GitHub may have created it before the
// connection broke, and a second draft is exactly what must not happen.
func (c *client) create(ctx context.Context, r *github.RepositoryRelease) (*github.RepositoryRelease, error) {
	var out *github.RepositoryRelease
	err := c.call(ctx, "creating the release of tag "+r.GetTagName(), func(ctx context.Context) (*github.Response, error) {
		rel, resp, err := c.gh.Repositories.CreateRelease(ctx, c.owner, c.repo, r)
		out = rel
		return resp, err
	}, func(ctx context.Context) (bool, error) {
		rel, err := c.find(ctx, r.GetTagName())
		if err != nil {
			return false, err
		}
		out = rel
		return rel != nil, nil
	})
	if err != nil && statusOf(err) == http.StatusUnprocessableEntity && strings.Contains(err.Error(), "tag_name") {
		if strings.Contains(err.Error(), "already exists") {
			err = fmt.Errorf("%w (another job released %s meanwhile: re-run this one to update that release; give each tag one release step)", err, r.GetTagName())
		} else {
			err = fmt.Errorf(`%w (input "tag": GitHub refused %q; give the tag as pushed, e.g. v1.2.3)`, err, r.GetTagName())
		}
	}
	return out, err
}

// edit updates a release; PATCH is idempotent, so it is simply retried.
func (c *client) edit(ctx context.Context, id int64, r *github.RepositoryRelease, op string) (*github.RepositoryRelease, error) {
	var out *github.RepositoryRelease
	err := c.call(ctx, op, func(ctx context.Context) (*github.Response, error) {
		rel, resp, err := c.gh.Repositories.EditRelease(ctx, c.owner, c.repo, id, r)
		out = rel
		return resp, err
	}, nil)
	return out, err
}

// generateNotes asks GitHub for the notes it would write for tag (merged
// pull requests and new contributors since the previous release, shaped by
// .github/release.yml).
func (c *client) generateNotes(ctx context.Context, tag, commitish string) (string, error) {
	var notes *github.RepositoryReleaseNotes
	opts := &github.GenerateNotesOptions{TagName: tag}
	if commitish != "" {
		opts.TargetCommitish = github.Ptr(commitish)
	}
	err := c.call(ctx, "generating release notes for "+tag, func(ctx context.Context) (*github.Response, error) {
		n, resp, err := c.gh.Repositories.GenerateReleaseNotes(ctx, c.owner, c.repo, opts)
		notes = n
		return resp, err
	}, nil)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(notes.Body), nil
}

// assets lists a release's assets.
func (c *client) assets(ctx context.Context, id int64) ([]*github.ReleaseAsset, error) {
	var all []*github.ReleaseAsset
	opts := &github.ListOptions{PerPage: 100}
	for {
		var list []*github.ReleaseAsset
		var next int
		err := c.call(ctx, "listing the release's assets", func(ctx context.Context) (*github.Response, error) {
			l, resp, err := c.gh.Repositories.ListReleaseAssets(ctx, c.owner, c.repo, id, opts)
			list = l
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		}, nil)
		if err != nil {
			return nil, err
		}
		all = append(all, list...)
		if next == 0 {
			return all, nil
		}
		opts.Page = next
	}
}

// deleteAsset deletes an asset; one already gone counts as deleted.
func (c *client) deleteAsset(ctx context.Context, a *github.ReleaseAsset) error {
	return c.call(ctx, "deleting the old asset "+a.GetName(), func(ctx context.Context) (*github.Response, error) {
		resp, err := c.gh.Repositories.DeleteReleaseAsset(ctx, c.owner, c.repo, a.GetID())
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return resp, nil
		}
		return resp, err
	}, nil)
}

// upload uploads one file to the release's upload_url. A failed upload
// can leave a half-uploaded asset of that name behind on GitHub, which
// would make the retry fail as a duplicate, so one is deleted before each
// retry.
func (c *client) upload(ctx context.Context, rel *github.RepositoryRelease, a localAsset) (*github.ReleaseAsset, error) {
	f, err := os.Open(a.Path)
	if err != nil {
		return nil, fmt.Errorf(`input "assets": %w`, err)
	}
	defer f.Close()
	var out *github.ReleaseAsset
	op := "uploading asset " + a.Name
	err = c.call(ctx, op, func(ctx context.Context) (*github.Response, error) {
		// A section reader is not a Closer, so the transport cannot close
		// the file between attempts.
		r := io.NewSectionReader(f, 0, a.Size)
		ra, resp, err := c.gh.Repositories.UploadReleaseAssetFromRelease(ctx, rel, &github.UploadOptions{Name: a.Name, MediaType: a.ContentType}, r, a.Size)
		out = ra
		return resp, err
	}, func(ctx context.Context) (bool, error) {
		list, err := c.assets(ctx, rel.GetID())
		if err != nil {
			return false, err
		}
		for _, x := range list {
			if x.GetName() == a.Name {
				if err := c.deleteAsset(ctx, x); err != nil {
					return false, err
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if got := int64(out.GetSize()); got != a.Size {
		return out, fmt.Errorf("%s: GitHub stored %d bytes of %d", op, got, a.Size)
	}
	if d := out.GetDigest(); d != "" && d != a.Digest {
		return out, fmt.Errorf("%s: GitHub stored bytes with digest %s, the file has %s", op, d, a.Digest)
	}
	return out, nil
}
