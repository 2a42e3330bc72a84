package gitops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v84/github"

	"github.com/gantry-ci/gantry/internal/githubapi"
	"github.com/gantry-ci/gantry/internal/retry"
)

// PullRequest is the pull request a promotion opened or updated.
type PullRequest struct {
	Number  int
	URL     string // web page
	HeadSHA string // the promotion commit on the head branch
	// Created is false when an open pull request from the head branch was
	// updated instead.
	Created bool
	// Merged is true when Gantry merged it directly (GitHub said it was
	// already mergeable, or auto-merge is not allowed).
	Merged      bool
	MergeCommit string
	// AutoMerge is true when GitHub auto-merge was enabled on it.
	AutoMerge bool
	nodeID    string
}

// ghClient is go-github for the config repository, with the project's
// retry policy.
type ghClient struct {
	gh          *github.Client
	http        *http.Client
	graphqlURL  string
	owner, name string
	token       string
	head        string
	method      string
	opts        PullRequestOptions
}

func newGHClient(repo Repo, o *PullRequestOptions, env string) (*ghClient, error) {
	rem, err := parseRemote(repo.URL)
	if err != nil {
		return nil, err
	}
	owner, name := rem.owner, rem.name
	if o.Repository != "" {
		if owner, name, err = githubapi.ParseRepository(o.Repository); err != nil {
			return nil, fmt.Errorf("pull-request repository: %w", err)
		}
	}
	if owner == "" {
		return nil, fmt.Errorf(`pull-request mode needs the config repository's GitHub owner/name, and input "gitops-repository" %q does not end in owner/name`, rem.display())
	}
	apiURL := o.APIURL
	if apiURL == "" {
		if rem.host != "github.com" {
			return nil, fmt.Errorf(`pull-request mode on %s needs input "github-api-url" (GitHub Enterprise Server: https://%s/api/v3)`, rem.host, rem.host)
		}
		apiURL = "https://api.github.com/"
	}
	token := strings.TrimSpace(repo.Token)
	if token == "" {
		return nil, errors.New(`pull-request mode needs input "gitops-token" (a token with contents: write and pull-requests: write on the config repository)`)
	}
	switch o.MergeMethod {
	case "":
		o.MergeMethod = "squash"
	case "merge", "squash", "rebase":
	default:
		return nil, fmt.Errorf(`merge method %q is not merge, squash or rebase`, o.MergeMethod)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf(`input "github-api-url" %q is not an http(s) URL (e.g. https://api.github.com or https://ghe.example.com/api/v3)`, apiURL)
	}
	gh := github.NewClient(hc).WithAuthToken(token)
	if u.Host != "api.github.com" {
		if gh, err = gh.WithEnterpriseURLs(apiURL, apiURL); err != nil {
			return nil, fmt.Errorf(`input "github-api-url" %q: %w`, apiURL, err)
		}
	}
	gh.DisableRateLimitCheck = true
	gh.UserAgent = "gantry " + gh.UserAgent
	// GraphQL lives at /graphql on api.github.com and at /api/graphql on
	// GitHub Enterprise Server (whose REST root is /api/v3/).
	base := gh.BaseURL.String()
	gql := strings.TrimSuffix(base, "/") + "/graphql"
	if strings.HasSuffix(base, "/api/v3/") {
		gql = strings.TrimSuffix(base, "v3/") + "graphql"
	}
	head := o.HeadBranch
	if head == "" {
		head = "gantry/promote-" + env
	}
	if plumbingBranchInvalid(head) {
		return nil, fmt.Errorf("pull-request head branch %q is not a branch name", head)
	}
	return &ghClient{gh: gh, http: hc, graphqlURL: gql, owner: owner, name: name, token: token, head: head, method: o.MergeMethod, opts: *o}, nil
}

// call runs one API call under the project's GitHub retry policy.
func (c *ghClient) call(ctx context.Context, op string, f func(context.Context) (*github.Response, error)) error {
	p := githubapi.RetryPolicy(4, time.Minute)
	var resp *github.Response
	err := p.Do(ctx, func(ctx context.Context) error {
		var err error
		resp, err = f(ctx)
		return err
	}, func(err error) retry.Verdict { return githubapi.Classify(resp, err, time.Now()) })
	if err == nil {
		return nil
	}
	inner := err
	var re *retry.Error
	if errors.As(err, &re) {
		inner = re.Err
	}
	msg := op + ": " + githubapi.ErrorDetail(inner)
	if resp != nil && resp.Response != nil {
		msg = fmt.Sprintf("%s: %d %s: %s", op, resp.StatusCode, http.StatusText(resp.StatusCode), githubapi.ErrorDetail(inner))
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			msg += ` (check input "gitops-token")`
		case http.StatusForbidden, http.StatusNotFound:
			msg += fmt.Sprintf(` (the token needs contents: write and pull-requests: write on %s/%s)`, c.owner, c.name)
		}
	}
	if re != nil && re.Reason != "" {
		msg += " (" + re.Reason + ")"
	}
	return &wrapped{msg: strings.ReplaceAll(msg, c.token, "***"), err: err}
}

func (s *session) promotePR(ctx context.Context, gh *ghClient, target Target, ch Change, img image, opts Options) (Result, error) {
	res := Result{Branch: s.branch}
	subject, msg := message(ch, img)
	tip, err := s.tip(s.branch)
	if err != nil {
		return res, s.scrub.err(err)
	}
	ed, file, err := s.edit(tip, target, img)
	if err != nil {
		return res, s.scrub.err(err)
	}
	res.File, res.PreviousDigest, res.PreviousImage = file, ed.previous, ed.previousImage
	if !ed.changed {
		res.Commit = tip.Hash.String()
		res.CommitURL = s.rem.commitURL(res.Commit)
		s.infof("%s on %s already has %s; no pull request needed", file, s.branch, img.digest)
		return res, nil
	}
	res.Changed = true
	res.Diff = unifiedDiff(file, string(ed.before), string(ed.after))
	if opts.DryRun {
		return res, nil
	}
	h, err := s.commit(tip, file, ed.after, msg, s.repo)
	if err != nil {
		return res, s.scrub.err(err)
	}
	// Know the head branch's objects so the force push sends only ours.
	if err := s.fetch(ctx, gh.head); err != nil && !isMissingRef(err) {
		return res, s.scrub.err(err)
	}
	res.Attempts = 1
	if err := s.push(ctx, h, gh.head, true); err != nil {
		msg := fmt.Sprintf("pushing %s to %s", gh.head, s.rem.display())
		if hint := hintFor(err, s.rem.display()); hint != "" {
			err = fmt.Errorf("%w (%s)", err, hint)
		}
		return res, s.scrub.err(fmt.Errorf("%s: %w", msg, err))
	}
	res.Commit, res.Branch = h.String(), gh.head
	res.CommitURL = s.rem.commitURL(res.Commit)
	s.infof("pushed %s to %s", short(res.Commit), gh.head)

	body := prBody(ch, img, file, s.branch)
	pr, err := gh.upsert(ctx, s.branch, subject, body)
	if err != nil {
		return res, s.scrub.err(err)
	}
	pr.HeadSHA = res.Commit
	res.PullRequest = pr
	verb := "updated"
	if pr.Created {
		verb = "opened"
	}
	s.infof("%s pull request #%d: %s", verb, pr.Number, pr.URL)
	if len(gh.opts.Labels) > 0 {
		err := gh.call(ctx, "labelling pull request", func(ctx context.Context) (*github.Response, error) {
			_, resp, err := gh.gh.Issues.AddLabelsToIssue(ctx, gh.owner, gh.name, pr.Number, gh.opts.Labels)
			return resp, err
		})
		if err != nil && s.log != nil {
			s.log.Warningf("%s", s.scrub.text(err.Error()))
		}
	}
	if gh.opts.AutoMerge {
		if err := gh.autoMerge(ctx, pr, s); err != nil {
			return res, s.scrub.err(err)
		}
	}
	return res, nil
}

func plumbingBranchInvalid(b string) bool {
	return b == "" || strings.ContainsAny(b, " ~^:?*[\\") || strings.Contains(b, "..") || strings.HasPrefix(b, "-") || strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".lock")
}

func prBody(ch Change, img image, file, base string) string {
	var b strings.Builder
	if ch.RevertOf != "" {
		fmt.Fprintf(&b, "Rolls **%s** back to `%s` (reverts %s).\n\n", ch.Environment, img, ch.RevertOf)
	} else {
		fmt.Fprintf(&b, "Promotes **%s** to `%s`.\n\n", ch.Environment, img)
	}
	fmt.Fprintf(&b, "| | |\n|---|---|\n| File | `%s` on `%s` |\n| Digest | `%s` |\n", file, base, img.digest)
	if ch.SourceCommit != "" {
		src := ch.SourceCommit
		if ch.SourceRepository != "" {
			src = ch.SourceRepository + "@" + ch.SourceCommit
		}
		fmt.Fprintf(&b, "| Source commit | `%s` |\n", src)
	}
	if ch.RunURL != "" {
		fmt.Fprintf(&b, "| Run | [%s](%s) |\n", ch.RunURL, ch.RunURL)
	}
	b.WriteString("\n_Opened by Gantry; the branch is Gantry's own and is force-pushed on every promotion._\n")
	return b.String()
}

// upsert updates the open pull request from the head branch, or opens one.
func (c *ghClient) upsert(ctx context.Context, base, title, body string) (*PullRequest, error) {
	var open []*github.PullRequest
	err := c.call(ctx, "listing pull requests", func(ctx context.Context) (*github.Response, error) {
		var resp *github.Response
		var err error
		open, resp, err = c.gh.PullRequests.List(ctx, c.owner, c.name, &github.PullRequestListOptions{State: "open", Head: c.owner + ":" + c.head, Base: base})
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	var got *github.PullRequest
	created := false
	if len(open) > 0 {
		n := open[0].GetNumber()
		err = c.call(ctx, fmt.Sprintf("updating pull request #%d", n), func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			got, resp, err = c.gh.PullRequests.Edit(ctx, c.owner, c.name, n, &github.PullRequest{Title: github.Ptr(title), Body: github.Ptr(body)})
			return resp, err
		})
	} else {
		created = true
		err = c.call(ctx, "opening pull request", func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			got, resp, err = c.gh.PullRequests.Create(ctx, c.owner, c.name, &github.NewPullRequest{Title: github.Ptr(title), Head: github.Ptr(c.head), Base: github.Ptr(base), Body: github.Ptr(body)})
			return resp, err
		})
	}
	if err != nil {
		return nil, err
	}
	return &PullRequest{Number: got.GetNumber(), URL: got.GetHTMLURL(), Created: created, nodeID: got.GetNodeID()}, nil
}

// autoMerge enables GitHub auto-merge, or merges at once when GitHub says
// the pull request is already mergeable ("clean status") or auto-merge is
// not allowed on the repository.
func (c *ghClient) autoMerge(ctx context.Context, pr *PullRequest, s *session) error {
	q := `mutation($id: ID!, $method: PullRequestMergeMethod!) { enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method}) { pullRequest { number } } }`
	reqBody, err := json.Marshal(map[string]any{"query": q, "variables": map[string]any{"id": pr.nodeID, "method": strings.ToUpper(c.method)}})
	if err != nil {
		return err
	}
	var out struct {
		Errors []struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	err = c.call(ctx, fmt.Sprintf("enabling auto-merge on pull request #%d", pr.Number), func(ctx context.Context) (*github.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.graphqlURL, bytes.NewReader(reqBody))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		ghResp := &github.Response{Response: resp}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return ghResp, err
		}
		if resp.StatusCode != http.StatusOK {
			return ghResp, &github.ErrorResponse{Response: resp, Message: strings.TrimSpace(string(data))}
		}
		out.Errors = nil
		return ghResp, json.Unmarshal(data, &out)
	})
	if err != nil {
		return err
	}
	if len(out.Errors) == 0 {
		pr.AutoMerge = true
		s.infof("enabled auto-merge (%s) on pull request #%d", c.method, pr.Number)
		return nil
	}
	var msgs []string
	direct := false
	for _, e := range out.Errors {
		msgs = append(msgs, e.Message)
		m := strings.ToLower(e.Message)
		if strings.Contains(m, "clean status") || strings.Contains(m, "not allowed") {
			direct = true
		}
	}
	if !direct {
		return fmt.Errorf("enabling auto-merge on pull request #%d: %s", pr.Number, strings.Join(msgs, "; "))
	}
	s.infof("GitHub will not auto-merge pull request #%d (%s); merging it now", pr.Number, strings.Join(msgs, "; "))
	var mr *github.PullRequestMergeResult
	err = c.call(ctx, fmt.Sprintf("merging pull request #%d", pr.Number), func(ctx context.Context) (*github.Response, error) {
		var resp *github.Response
		var err error
		mr, resp, err = c.gh.PullRequests.Merge(ctx, c.owner, c.name, pr.Number, "", &github.PullRequestOptions{MergeMethod: c.method, SHA: pr.HeadSHA})
		return resp, err
	})
	if err != nil {
		return err
	}
	pr.Merged, pr.MergeCommit = mr.GetMerged(), mr.GetSHA()
	if !pr.Merged {
		return fmt.Errorf("merging pull request #%d: GitHub did not merge it: %s", pr.Number, mr.GetMessage())
	}
	s.infof("merged pull request #%d as %s", pr.Number, short(pr.MergeCommit))
	return nil
}

// WaitMerged polls the pull request until it is merged and returns the
// merge commit; a pull request closed without merging is an error. It
// waits as long as ctx allows (the caller's timeout), looking every
// opts.PullRequest.PollInterval (default 10 s).
func WaitMerged(ctx context.Context, repo Repo, opts Options, pr *PullRequest) (string, error) {
	if pr == nil || pr.Number == 0 {
		return "", errors.New("WaitMerged: no pull request")
	}
	if pr.Merged && pr.MergeCommit != "" {
		return pr.MergeCommit, nil
	}
	c, err := newGHClient(repo, &opts.PullRequest, "wait")
	if err != nil {
		return "", err
	}
	interval := opts.PullRequest.PollInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	for {
		var got *github.PullRequest
		err := c.call(ctx, fmt.Sprintf("reading pull request #%d", pr.Number), func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			got, resp, err = c.gh.PullRequests.Get(ctx, c.owner, c.name, pr.Number)
			return resp, err
		})
		if err != nil {
			return "", err
		}
		if got.GetMerged() {
			return got.GetMergeCommitSHA(), nil
		}
		if got.GetState() == "closed" {
			return "", fmt.Errorf("pull request #%d (%s) was closed without merging", pr.Number, got.GetHTMLURL())
		}
		if opts.Log != nil {
			opts.Log.Infof("pull request #%d is not merged yet; looking again in %s", pr.Number, interval)
		}
		if err := retry.Sleep(ctx, interval); err != nil {
			return "", fmt.Errorf("waiting for pull request #%d (%s) to merge: %w", pr.Number, got.GetHTMLURL(), err)
		}
	}
}
