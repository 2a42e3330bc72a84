// Package gitops is the Git half of Gantry's `target: argocd` deploy: it
// writes an image digest into a config repository (a kustomization's
// `images:` entry or a Helm values key) at an environment's path, commits
// and pushes it — or opens a pull request for it — so Argo CD can sync.
// It also reads the history of those promotions back for rollbacks.
//
// Everything happens in memory: the config repository's one branch is
// cloned with its history into go-git's memory storage (config
// repositories are small), new objects are written next to it, and only a
// push touches the remote. A failed promotion leaves nothing behind.
//
// Errors name the input at fault and say what to change. Tokens and URL
// credentials never appear in errors or log lines.
package gitops

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/internal/retry"
)

// Repo is where the desired state lives.
type Repo struct {
	// URL is input "gitops-repository": https://host/owner/name(.git),
	// http://… (tests), ssh://git@host/owner/name.git,
	// git@host:owner/name.git, or owner/name for
	// https://github.com/owner/name.git.
	URL string
	// Branch is input "gitops-branch"; "" means the remote's default
	// branch (its HEAD).
	Branch string
	// Token is input "gitops-token": the HTTPS basic-auth password, sent
	// with user "x-access-token" (GitHub's convention) unless Username is
	// set. Pull-request mode uses it for GitHub's API too.
	Token string
	// Username replaces "x-access-token" for hosts that want another.
	Username string
	// SSHKey is input "gitops-ssh-key": a PEM/OpenSSH private key (a deploy
	// key) for ssh URLs.
	SSHKey string
	// KnownHosts is input "gitops-known-hosts": known_hosts lines for the
	// ssh host; required with SSHKey (host keys are never accepted
	// unchecked).
	KnownHosts string
	// AuthorName and AuthorEmail sign the commits; defaults "gantry" and
	// "gantry@users.noreply.github.com".
	AuthorName, AuthorEmail string
}

// Target says where in the repository the digest is written.
type Target struct {
	// Path is input "gitops-path": the environment's directory (holding
	// kustomization.yaml, kustomization.yml or Kustomization; or, with
	// ValuesKey, values.yaml) or a file (a kustomization or a Helm values
	// file), relative to the repository root.
	Path string
	// KustomizeImage is input "kustomize-image", for kustomize mode
	// (ValuesKey empty): the `images:` entry whose name it is — or whose
	// newName is the image repository — gets newName=<repository> and
	// digest=<sha256:…>, and loses any newTag; the entry (and the
	// `images:` list) is added when missing. Default: the image repository.
	KustomizeImage string
	// ValuesKey is input "image-path" and selects Helm mode: the dotted key
	// (e.g. image.digest) that gets the digest "sha256:…". Missing
	// intermediate maps are created; an existing key holding a map or list
	// is an error.
	ValuesKey string
	// RepositoryKey is input "image-repository-path" (optional, Helm mode):
	// the dotted key (e.g. image.repository) that gets the repository.
	RepositoryKey string
}

// Change is what one promotion writes.
type Change struct {
	// Image is input "image": repository@sha256:<64 hex> (a tag before the
	// digest is dropped). A tag alone is an error.
	Image string
	// Environment names the environment in the subject, trailers and the
	// default pull-request branch.
	Environment string
	// SourceCommit, SourceRepository and RunURL are cited in the message.
	SourceCommit, SourceRepository, RunURL string
	// Subject overrides the first line; default
	// "promote <env>: <repo>@sha256:<12 hex>" ("roll back …" with RevertOf).
	Subject string
	// RevertOf is, for a rollback, the promotion commit it reverts.
	RevertOf string
}

// Result is what a promotion did.
type Result struct {
	// Commit carries the digest: the new promotion commit, or on a no-op
	// the branch head that already has it. "" in a dry run that would
	// commit.
	Commit string
	// Changed is false when the digest was already there: no commit was
	// made and nothing pushed. In a dry run it says a commit would be made.
	Changed bool
	// PreviousDigest is the digest the file had before ("" if none).
	PreviousDigest string
	// PreviousImage is the image the file named before, repository@digest
	// (the digest alone when a values file names no repository; "" if
	// none): what a revert of this promotion writes back.
	PreviousImage string
	// File is the repository path of the file edited.
	File string
	// Branch is the branch pushed to (the pull request's head branch in
	// pull-request mode).
	Branch string
	// Attempts is how many pushes were tried (a push rejected because the
	// remote moved is retried on top of the new tip).
	Attempts int
	// PullRequest is set in pull-request mode when a pull request was
	// opened or updated.
	PullRequest *PullRequest
	// CommitURL is the commit's web page, GitHub-style
	// (https://host/owner/name/commit/<sha>), when the repository URL's
	// path is owner/name; else "".
	CommitURL string
	// Diff is the edit as a unified diff of File, before → after ("" on a
	// no-op), for the job summary.
	Diff string
}

// Logger receives progress lines; ghaction.Logger is one.
type Logger interface {
	Infof(format string, args ...any)
	Warningf(format string, args ...any)
}

// Modes of Options.Mode.
const (
	ModePush        = "push"
	ModePullRequest = "pull-request"
)

// Options tunes Promote.
type Options struct {
	// Mode is ModePush (default: commit on the branch and push) or
	// ModePullRequest (push to a head branch and open a pull request).
	Mode string
	// DryRun computes the edit and its Diff without committing or pushing
	// (for `action: plan`).
	DryRun bool
	// Attempts bounds the pushes tried when the remote moves in between
	// (default 5).
	Attempts int
	// PullRequest configures ModePullRequest.
	PullRequest PullRequestOptions
	// Log, when set, gets progress lines and retry notes.
	Log Logger

	// beforePush runs before each push (tests: another person's push
	// lands in between).
	beforePush func(attempt int)
	// sleep replaces the jittered wait between pushes.
	sleep func(ctx context.Context, d time.Duration) error
}

// PullRequestOptions configures pull-request mode (GitHub only).
type PullRequestOptions struct {
	// APIURL is GitHub's REST API root (like input "github-api-url"):
	// default https://api.github.com/ for github.com; required for other
	// hosts (GitHub Enterprise Server: https://host/api/v3).
	APIURL string
	// Repository is owner/name for the API; default the owner/name of
	// Repo.URL.
	Repository string
	// HeadBranch is Gantry's own branch the commit is force-pushed to;
	// default gantry/promote-<environment>.
	HeadBranch string
	// AutoMerge enables GitHub auto-merge on the pull request, or merges
	// it at once when GitHub says it is already mergeable or auto-merge is
	// not allowed.
	AutoMerge bool
	// MergeMethod is merge, squash (default) or rebase.
	MergeMethod string
	// Labels are added to the pull request.
	Labels []string
	// HTTPClient talks to the API; nil means one with a 30 s timeout.
	HTTPClient *http.Client
	// PollInterval is WaitMerged's wait between looks; default 10 s.
	PollInterval time.Duration
}

const (
	defaultAuthorName  = "gantry"
	defaultAuthorEmail = "gantry@users.noreply.github.com"
)

// validTarget checks and cleans Target.Path.
func validTarget(t Target) (Target, error) {
	p := strings.TrimSpace(t.Path)
	p = strings.TrimPrefix(p, "./")
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return t, errors.New(`input "gitops-path" is empty: set it to the environment's directory in the config repository, e.g. envs/staging`)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return t, fmt.Errorf(`input "gitops-path" %q leaves the repository (".."): give a path from the repository root`, t.Path)
		}
	}
	t.Path = path.Clean(p)
	if t.ValuesKey == "" && t.RepositoryKey != "" {
		return t, errors.New(`input "image-repository-path" is set without "image-path": set "image-path" (e.g. image.digest) for a Helm values file`)
	}
	for _, k := range []struct{ in, v string }{{"image-path", t.ValuesKey}, {"image-repository-path", t.RepositoryKey}} {
		if k.v != "" {
			if _, err := splitKey(k.in, k.v); err != nil {
				return t, err
			}
		}
	}
	return t, nil
}

// message builds the commit message: subject, body, trailers.
func message(ch Change, img image) (subject, full string) {
	subject = strings.TrimSpace(ch.Subject)
	if subject == "" {
		verb := "promote"
		if ch.RevertOf != "" {
			verb = "roll back"
		}
		subject = fmt.Sprintf("%s %s: %s", verb, ch.Environment, img.short())
	}
	var b strings.Builder
	b.WriteString(subject + "\n\n")
	fmt.Fprintf(&b, "Set %s to %s.\n", ch.Environment, img)
	if ch.SourceCommit != "" {
		if ch.SourceRepository != "" {
			fmt.Fprintf(&b, "Built from %s at commit %s.\n", ch.SourceRepository, ch.SourceCommit)
		} else {
			fmt.Fprintf(&b, "Built from commit %s.\n", ch.SourceCommit)
		}
	}
	if ch.RunURL != "" {
		fmt.Fprintf(&b, "Run: %s\n", ch.RunURL)
	}
	if ch.RevertOf != "" {
		fmt.Fprintf(&b, "\nThis reverts commit %s.\n", ch.RevertOf)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Gantry-Environment: %s\n", ch.Environment)
	fmt.Fprintf(&b, "Gantry-Image: %s\n", img)
	if ch.SourceCommit != "" {
		fmt.Fprintf(&b, "Gantry-Source-Commit: %s\n", ch.SourceCommit)
	}
	if ch.SourceRepository != "" {
		fmt.Fprintf(&b, "Gantry-Source-Repository: %s\n", ch.SourceRepository)
	}
	if ch.RunURL != "" {
		fmt.Fprintf(&b, "Gantry-Run: %s\n", ch.RunURL)
	}
	if ch.RevertOf != "" {
		fmt.Fprintf(&b, "Gantry-Revert-Of: %s\n", ch.RevertOf)
	}
	return subject, b.String()
}

// trailers reads the "Key: value" lines of a message's last paragraph.
func trailers(msg string) map[string]string {
	paras := strings.Split(strings.TrimSpace(msg), "\n\n")
	out := map[string]string{}
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok && !strings.Contains(k, " ") {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// Promote writes ch.Image into target in repo and pushes it (or opens a
// pull request, per opts.Mode). When the file already has the digest it
// makes no commit and pushes nothing (Changed false). A push rejected
// because the remote moved is retried on the new tip, up to opts.Attempts.
// In pull-request mode a Result with the pull request may come with an
// error from the auto-merge step.
func Promote(ctx context.Context, repo Repo, target Target, ch Change, opts Options) (Result, error) {
	img, err := parseImage(ch.Image)
	if err != nil {
		return Result{}, err
	}
	ch.Environment = strings.TrimSpace(ch.Environment)
	if ch.Environment == "" || strings.ContainsAny(ch.Environment, " \n\t") {
		return Result{}, fmt.Errorf("environment %q is not a name: give the environment to promote to, e.g. staging", ch.Environment)
	}
	if target, err = validTarget(target); err != nil {
		return Result{}, err
	}
	switch opts.Mode {
	case "", ModePush:
		opts.Mode = ModePush
	case ModePullRequest:
	default:
		return Result{}, fmt.Errorf("mode %q is not %q or %q", opts.Mode, ModePush, ModePullRequest)
	}
	var gh *ghClient
	if opts.Mode == ModePullRequest && !opts.DryRun {
		// Check the API settings before any network call.
		if gh, err = newGHClient(repo, &opts.PullRequest, ch.Environment); err != nil {
			return Result{}, err
		}
	}
	s, err := open(ctx, repo, opts.Log)
	if err != nil {
		return Result{}, err
	}
	if opts.Mode == ModePullRequest {
		return s.promotePR(ctx, gh, target, ch, img, opts)
	}
	return s.promotePush(ctx, target, ch, img, opts)
}

func (s *session) promotePush(ctx context.Context, target Target, ch Change, img image, opts Options) (Result, error) {
	res := Result{Branch: s.branch}
	_, msg := message(ch, img)
	var pushed string // the last commit we pushed, in case its push did land
	attempt := func(ctx context.Context) error {
		if res.Attempts > 0 {
			if err := s.fetch(ctx, s.branch); err != nil {
				return err
			}
		}
		tip, err := s.tip(s.branch)
		if err != nil {
			return permanent(err)
		}
		ed, file, err := s.edit(tip, target, img)
		if err != nil {
			return permanent(err)
		}
		res.File, res.PreviousDigest, res.PreviousImage = file, ed.previous, ed.previousImage
		if !ed.changed {
			res.Commit, res.Changed, res.Diff = tip.Hash.String(), tip.Hash.String() == pushed, ""
			if !res.Changed {
				s.infof("%s already has %s at %s; nothing to push", file, img.digest, short(tip.Hash.String()))
			}
			return nil
		}
		res.Diff = unifiedDiff(file, string(ed.before), string(ed.after))
		res.Changed = true
		if opts.DryRun {
			return nil
		}
		h, err := s.commit(tip, file, ed.after, msg, s.repo)
		if err != nil {
			return permanent(err)
		}
		res.Attempts++
		if opts.beforePush != nil {
			opts.beforePush(res.Attempts)
		}
		if err := s.push(ctx, h, s.branch, false); err != nil {
			if isRejected(err) {
				return &rejected{err}
			}
			// The push may have landed before the connection failed: if
			// the next fetch shows this very commit, it did.
			pushed = h.String()
			return err
		}
		res.Commit = h.String()
		s.infof("pushed %s to %s (%s)", short(res.Commit), s.branch, file)
		return nil
	}
	p := retry.Policy{
		Attempts:   cmp(opts.Attempts, 5),
		Initial:    250 * time.Millisecond,
		MaxBackoff: 2 * time.Second,
		Sleep:      jittered(opts.sleep),
		Log:        logAdapter{s.log, s.scrub},
	}
	err := p.Do(ctx, attempt, classify)
	if err != nil {
		return res, s.final(err, "pushing to "+s.rem.display())
	}
	res.CommitURL = s.rem.commitURL(res.Commit)
	return res, nil
}

// rejected marks a push the remote refused because its branch moved.
type rejected struct{ err error }

func (e *rejected) Error() string {
	return "push rejected: the branch moved on the remote since it was read (" + e.err.Error() + ")"
}
func (e *rejected) Unwrap() error { return e.err }

// permanentError is a failure retrying cannot change.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

func classify(err error) retry.Verdict {
	var p *permanentError
	var r *rejected
	switch {
	case errors.As(err, &r):
		return retry.Backoff()
	case errors.As(err, &p):
		return retry.Permanent("")
	case isAuthError(err):
		return retry.Permanent("")
	}
	return retry.Backoff()
}

// final turns the retry loop's error into the one Promote returns.
func (s *session) final(err error, op string) error {
	var re *retry.Error
	if errors.As(err, &re) {
		inner := re.Err
		var p *permanentError
		if errors.As(inner, &p) {
			inner = p.err
			if re.Reason == "" {
				return s.scrub.err(inner)
			}
		}
		msg := fmt.Sprintf("%s: %v", op, inner)
		if hint := hintFor(inner, s.rem.display()); hint != "" {
			msg += " (" + hint + ")"
		}
		if re.Reason != "" {
			msg += " (" + re.Reason + ")"
		}
		return s.scrub.err(&wrapped{msg: msg, err: err})
	}
	return s.scrub.err(err)
}

type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

func cmp(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// jittered spreads the waits between pushes (several jobs promoting to
// one repository at once would otherwise retry in step): each wait is
// between half and one and a half of the policy's.
func jittered(sleep func(context.Context, time.Duration) error) func(context.Context, time.Duration) error {
	if sleep == nil {
		sleep = retry.Sleep
	}
	return func(ctx context.Context, d time.Duration) error {
		return sleep(ctx, time.Duration(float64(d)*(0.5+rand.Float64())))
	}
}

// logAdapter gives retry.Policy scrubbed lines.
type logAdapter struct {
	l     Logger
	scrub scrubber
}

func (a logAdapter) Infof(format string, args ...any) {
	if a.l != nil {
		a.l.Infof("%s", a.scrub.text(fmt.Sprintf(format, args...)))
	}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
