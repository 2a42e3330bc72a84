package rollout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/argocd"
	"github.com/gantry-ci/gantry/internal/gitops"
)

// Deploy targets.
const (
	TargetKubernetes = "kubernetes"
	TargetArgoCD     = "argocd"
)

// StatusPending: promote pull-request without auto-merge opened (or
// updated) the pull request; the deploy happens when someone merges it.
const StatusPending = "pending"

// validateGitOps checks target argocd's inputs: what the Kubernetes
// target's inputs would do here is refused, not ignored.
func (in *Inputs) validateGitOps() error {
	var errs []error
	switch in.Action {
	case "deploy", "plan":
		if in.Image == "" {
			errs = append(errs, fmt.Errorf(`input "image" is required for action %s: the image by digest (repo@sha256:…), e.g. the build stage's image output`, in.Action))
		}
	case "rollback":
		if _, err := ParseRollbackTarget(in.RollbackTo); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf(`input "action" is %q: target argocd does deploy (promote and wait), rollback (a revert in Git, then wait) or plan (the change it would commit)`, in.Action))
	}
	if in.ArgoCDApplication == "" {
		errs = append(errs, errors.New(`input "argocd-application" is required for target argocd: the name of the Argo CD Application that deploys the environment`))
	}
	if in.Strategy != "rolling" {
		errs = append(errs, fmt.Errorf(`input "strategy" is %q: with target argocd the rollout is Argo CD's (an Argo Rollouts Rollout in the config repository does blue-green or canary); leave "strategy" unset`, in.Strategy))
	}
	for _, f := range []struct{ name, v string }{{"manifests", in.Manifests}, {"chart", in.Chart}, {"deployment", in.Deployment}} {
		if f.v != "" {
			errs = append(errs, fmt.Errorf(`input %q is set, but target argocd deploys what the config repository holds: put the manifests there ("gitops-repository", "gitops-path") and leave %q unset`, f.name, f.name))
		}
	}
	switch in.Promote {
	case "push":
		if in.AutoMerge {
			errs = append(errs, errors.New(`input "auto-merge" applies to promote: pull-request; with promote: push the commit lands on the branch directly`))
		}
	case "pull-request":
		switch in.MergeMethod {
		case "merge", "squash", "rebase":
		default:
			errs = append(errs, fmt.Errorf(`input "merge-method" is %q: use merge, squash or rebase`, in.MergeMethod))
		}
	default:
		errs = append(errs, fmt.Errorf(`input "promote" is %q: use push (commit to the branch) or pull-request (open or update a pull request)`, in.Promote))
	}
	if in.ImageRepositoryPath != "" && in.ImagePath == "" {
		errs = append(errs, errors.New(`input "image-repository-path" needs "image-path" (the Helm values key that receives the digest)`))
	}
	if in.ImagePath != "" && in.KustomizeImage != "" {
		errs = append(errs, errors.New(`inputs "image-path" (a Helm values key) and "kustomize-image" (a Kustomize images entry) exclude each other: the config repository's environment is one or the other`))
	}
	if in.ArgoCDToken != "" && in.ArgoCDURL == "" {
		errs = append(errs, errors.New(`input "argocd-token" is set without "argocd-url": give the Argo CD server's URL, or leave both empty to use the Application resource through "kubeconfig"`))
	}
	if in.GitOpsSSHKey != "" && in.GitOpsToken != "" {
		errs = append(errs, errors.New(`inputs "gitops-ssh-key" and "gitops-token" are both set: use the deploy key for an ssh:// or git@ repository URL, the token for https://`))
	}
	errs = append(errs, in.validateCommon()...)
	return errors.Join(errs...)
}

// gitopsRun is one run of target argocd.
type gitopsRun struct {
	*deployer
	app    argocd.Client
	repo   gitops.Repo
	target gitops.Target
	// source is where the Application reads from, as the summary says.
	source string
	live   *argocd.Application
	result gitops.Result
	// commit is the commit Argo CD must run (the promotion, or the merge
	// commit of its pull request).
	commit   string
	reverted *gitops.Result
	// unhealthy is what was not healthy when a wait failed.
	unhealthy []string
}

func runGitOps(ctx context.Context, in Inputs) (Outputs, error) {
	d := &deployer{in: in, log: in.Log, started: time.Now()}
	g := &gitopsRun{deployer: d}
	out := Outputs{DeploymentURL: in.EnvironmentURL}
	var err error
	if g.app, err = g.client(); err != nil {
		return out, err
	}
	// Until the promotion nothing has changed anywhere: a failure here
	// says so in the status and the summary.
	early := func(err error) (Outputs, error) {
		out.Status = StatusFailure
		out.Summary = g.summary(out, fmt.Errorf("%w (nothing was committed)", err))
		return out, err
	}
	end := d.log.Group("Reading " + g.app.String())
	g.live, err = g.app.Get(ctx)
	end()
	if err != nil {
		return early(err)
	}
	if err := g.locate(); err != nil {
		return early(err)
	}
	switch in.Action {
	case "plan":
		out, err = g.plan(ctx, out)
	case "rollback":
		out, err = g.rollback(ctx, out)
	default:
		out, err = g.deploy(ctx, out)
	}
	if out.Summary == "" {
		out.Summary = g.summary(out, err)
	}
	return out, err
}

// client is the Argo CD API when argocd-url is set, else the Application
// resource through the kubeconfig.
func (g *gitopsRun) client() (argocd.Client, error) {
	in := g.in
	if in.ArgoCDURL != "" {
		ns := in.ArgoCDNamespace
		if ns == "argocd" {
			// The server's own namespace: not sent, so a server that
			// does not serve apps in other namespaces accepts the call.
			ns = ""
		}
		return argocd.NewAPI(in.ArgoCDURL, ns, in.ArgoCDApplication, argocd.APIOptions{Token: in.ArgoCDToken, CA: in.ArgoCDCA, Insecure: in.ArgoCDInsecure})
	}
	cfg := in.RESTConfig
	if cfg == nil {
		var err error
		if cfg, err = RESTConfigFrom(in.Kubeconfig); err != nil {
			return nil, fmt.Errorf(`target argocd reaches Argo CD through "argocd-url" (and "argocd-token") or the Application resource through a kubeconfig: %w`, err)
		}
	}
	return argocd.NewKube(cfg, in.ArgoCDNamespace, in.ArgoCDApplication)
}

// locate fills the repository, branch and path from the Application's
// source where the inputs leave them empty, and checks that the inputs
// name what the Application deploys.
func (g *gitopsRun) locate() error {
	in := g.in
	src, ok := g.live.PrimarySource()
	if !ok {
		return fmt.Errorf("%s has no source", g.app)
	}
	if src.Chart != "" && in.GitOpsRepository == "" {
		return fmt.Errorf(`%s deploys chart %s from a Helm repository, which Gantry cannot promote in: set "gitops-repository" and "gitops-path" to the Git repository and values file that pin its image`, g.app, src.Chart)
	}
	repoURL := or(in.GitOpsRepository, src.RepoURL)
	branch := in.GitOpsBranch
	if branch == "" && src.TargetRevision != "" && src.TargetRevision != "HEAD" && !isCommitHash(src.TargetRevision) {
		branch = src.TargetRevision
	}
	path := or(in.GitOpsPath, src.Path)
	if path == "" {
		return fmt.Errorf(`input "gitops-path" is empty and %s names no path: set it to the environment's directory or values file in the config repository`, g.app)
	}
	if isCommitHash(src.TargetRevision) {
		return fmt.Errorf("%s is pinned to commit %s (targetRevision): a promotion on a branch would never reach it; point it at a branch", g.app, src.TargetRevision)
	}
	g.repo = gitops.Repo{
		URL: repoURL, Branch: branch, Token: in.GitOpsToken, Username: in.GitOpsUsername,
		SSHKey: in.GitOpsSSHKey, KnownHosts: in.GitOpsKnownHosts,
	}
	g.target = gitops.Target{Path: path, KustomizeImage: in.KustomizeImage, ValuesKey: in.ImagePath, RepositoryKey: in.ImageRepositoryPath}
	g.source = fmt.Sprintf("%s %s:%s", redactURL(repoURL), or(branch, "(default branch)"), path)
	if in.GitOpsRepository != "" && !sameRepoURL(in.GitOpsRepository, src.RepoURL) {
		g.log.Warningf(`input "gitops-repository" is %s but %s reads %s: the promotion may never reach the cluster`, redactURL(in.GitOpsRepository), g.app, redactURL(src.RepoURL))
	}
	if !g.live.AutoSync() && !in.Sync && in.Action != "plan" {
		return fmt.Errorf(`%s syncs manually (no syncPolicy.automated): set input "sync" to true to have Gantry sync it after the promotion (the guide's production), or enable auto-sync`, g.app)
	}
	return nil
}

// image is the reference written to Git: the repository as the input
// spells it (the name the manifests use), at the digest.
func (g *gitopsRun) image() string {
	return imageRepository(g.in.Image, g.digest) + "@" + g.digest.DigestStr()
}

func imageRepository(input string, dg name.Digest) string {
	if repo := repositoryOf(input); repo != "" {
		return repo
	}
	return dg.Context().Name()
}

// repositoryOf is an image reference without its digest and tag; "" for a
// bare digest (sha256:…) or nothing.
func repositoryOf(ref string) string {
	if strings.HasPrefix(ref, "sha256:") {
		return ""
	}
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

func (g *gitopsRun) change(image, revertOf, subject string) gitops.Change {
	return gitops.Change{
		Image: image, Environment: g.in.Environment,
		SourceCommit: g.in.Git.CommitSHA(), SourceRepository: g.in.Git.Repository, RunURL: g.in.Git.RunURL,
		Subject: subject, RevertOf: revertOf,
	}
}

func (g *gitopsRun) options(dryRun bool) gitops.Options {
	o := gitops.Options{Mode: g.in.Promote, DryRun: dryRun, Log: g.log}
	if g.in.Promote == "pull-request" {
		// The merge is polled for at 5 × the stage's poll (5 s).
		o.PullRequest = gitops.PullRequestOptions{APIURL: g.in.GitHubAPIURL, AutoMerge: g.in.AutoMerge, MergeMethod: g.in.MergeMethod, PollInterval: 5 * g.in.Poll}
	}
	return o
}

func (g *gitopsRun) plan(ctx context.Context, out Outputs) (Outputs, error) {
	out.Status = StatusPlanned
	if err := g.admit(ctx, &out, true, true); err != nil {
		return out, err
	}
	res, err := gitops.Promote(ctx, g.repo, g.target, g.change(g.image(), "", ""), g.options(true))
	if err != nil {
		return out, err
	}
	g.result = res
	out.PreviousDigest = res.PreviousDigest
	if !res.Changed {
		g.log.Infof("%s already has %s: a deploy would commit nothing and wait for %s", g.source, g.digest.DigestStr(), g.app)
	} else {
		g.log.Infof("a deploy would commit to %s:\n%s", g.source, res.Diff)
	}
	return out, nil
}

func (g *gitopsRun) deploy(ctx context.Context, out Outputs) (Outputs, error) {
	if err := g.admit(ctx, &out, true, true); err != nil {
		return out, err
	}
	finish := g.track(ctx)
	fail := func(err error) (Outputs, error) {
		out.Status = StatusFailure
		finish("failure", err.Error())
		return out, err
	}
	end := g.log.Group(fmt.Sprintf("Promoting %s in %s", g.image(), g.source))
	res, err := gitops.Promote(ctx, g.repo, g.target, g.change(g.image(), "", ""), g.options(false))
	end()
	if err != nil {
		return fail(err)
	}
	g.promoted(&out, res)
	if res.PullRequest != nil && res.Changed {
		if !g.in.AutoMerge {
			out.Status = StatusPending
			g.log.Infof("pull request %s is open; the environment changes when it is merged (set auto-merge to have Gantry merge it and wait)", res.PullRequest.URL)
			finish("queued", "pull request "+res.PullRequest.URL)
			return out, nil
		}
		// Merged already (GitHub merged it at once) or later: the merge
		// commit is what Argo CD runs.
		end = g.log.Group("Waiting for pull request " + res.PullRequest.URL + " to be merged")
		merge, err := gitops.WaitMerged(ctx, g.repo, g.options(false), res.PullRequest)
		end()
		if err != nil {
			return fail(err)
		}
		g.commit = merge
		g.log.Infof("merged as %s", merge)
	}
	if err := g.converge(ctx, g.commit, g.image()); err != nil {
		if !g.in.AutoRollback || !res.Changed || res.PreviousDigest == "" {
			if res.Changed && res.PreviousDigest == "" && g.in.AutoRollback {
				g.log.Warningf("not rolled back: %s had no image digest before this promotion", g.source)
			}
			return fail(err)
		}
		g.log.Warningf("%v", err)
		prev := res.PreviousImage
		if !strings.Contains(prev, "@") {
			// A values file that names no repository: the digest goes back
			// under the repository the chart already has.
			prev = imageRepository(g.in.Image, g.digest) + "@" + res.PreviousDigest
		}
		if rerr := g.revert(ctx, prev, g.commit, err); rerr != nil {
			return fail(fmt.Errorf("%w; the automatic rollback failed too: %w", err, rerr))
		}
		out.Status = StatusRolledBack
		out.Digest = res.PreviousDigest
		finish("failure", "rolled back: "+err.Error())
		return out, err
	}
	out.Status = StatusSuccess
	out.Revision = g.historyID()
	finish("success", fmt.Sprintf("%s synced %s", g.in.ArgoCDApplication, short(g.commit)))
	return out, nil
}

// promoted records a promotion's result in the outputs.
func (g *gitopsRun) promoted(out *Outputs, res gitops.Result) {
	g.result, g.commit = res, res.Commit
	out.PreviousDigest = res.PreviousDigest
	out.GitOpsCommit, out.GitOpsCommitURL = res.Commit, res.CommitURL
	if res.PullRequest != nil {
		out.PullRequestURL = res.PullRequest.URL
		out.GitOpsCommit = res.PullRequest.HeadSHA
	}
	switch {
	case !res.Changed:
		g.log.Infof("%s already has %s: nothing committed; waiting for %s to run it", g.source, g.digest.DigestStr(), g.app)
	case res.PullRequest != nil:
		g.log.Infof("pull request %s: %s", res.PullRequest.URL, res.Commit)
	default:
		g.log.Infof("committed %s to %s (%d push attempt(s))%s", res.Commit, g.source, res.Attempts, suffix(" ", res.CommitURL))
	}
}

// converge makes Argo CD look at Git now, syncs when asked, and waits until
// the Application runs commit.
func (g *gitopsRun) converge(ctx context.Context, commit, image string) error {
	end := g.log.Group(fmt.Sprintf("Waiting for %s to run %s", g.app, short(commit)))
	defer end()
	if err := g.app.Refresh(ctx, true); err != nil {
		return err
	}
	if g.in.Sync {
		// The refresh must see the commit before a sync to the target
		// revision picks it up; a sync to the commit itself is refused
		// by auto-sync apps, so sync to the commit only on manual ones.
		rev := ""
		if !g.live.AutoSync() {
			rev = commit
		}
		if err := g.app.Sync(ctx, rev, true); err != nil {
			return err
		}
		g.log.Infof("sync of %s requested", short(commit))
	}
	a, err := argocd.Wait(ctx, g.app, argocd.WaitOptions{Commit: commit, Image: image, Poll: g.in.Poll, Log: g.log})
	if a != nil {
		g.live = a
		if err != nil {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			g.unhealthy = g.app.Unhealthy(uctx, a)
			cancel()
		}
	}
	return err
}

// revert puts prev back by a revert commit of promotion and waits for it.
func (g *gitopsRun) revert(ctx context.Context, prev, promotion string, why error) error {
	// The deploy's own deadline may be what failed it: the rollback gets
	// a fresh one of the same length.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(g.in.Timeout, time.Minute))
	defer cancel()
	subject := fmt.Sprintf("Revert promote %s: %s", g.in.Environment, shortImage(g.image()))
	end := g.log.Group(fmt.Sprintf("Rolling back: reverting %s (%s)", short(promotion), prev))
	ch := g.change(prev, promotion, subject)
	o := g.options(false)
	// A rollback goes straight to the branch: a pull request would leave
	// production on the failed digest until someone merged it.
	o.Mode, o.PullRequest = gitops.ModePush, gitops.PullRequestOptions{}
	res, err := gitops.Promote(rctx, g.repo, g.target, ch, o)
	end()
	if err != nil {
		return err
	}
	g.reverted = &res
	g.log.Infof("reverted by %s%s", res.Commit, suffix(" ", res.CommitURL))
	return g.converge(rctx, res.Commit, prev)
}

func (g *gitopsRun) rollback(ctx context.Context, out Outputs) (Outputs, error) {
	to, _ := ParseRollbackTarget(g.in.RollbackTo)
	hist, err := gitops.History(ctx, g.repo, g.target, 50)
	if err != nil {
		return out, err
	}
	if len(hist) == 0 {
		return out, fmt.Errorf("%s has no image digest in its history: nothing to roll back to", g.source)
	}
	current := hist[0]
	var image, why string
	switch to.Kind {
	case "previous":
		// A promotion that a later commit reverted (an automatic or a
		// manual rollback) never counts as a version to go back to.
		reverted := map[string]bool{}
		for _, h := range hist {
			if h.RevertOf != "" {
				reverted[h.RevertOf] = true
			}
		}
		for _, h := range hist[1:] {
			if h.Digest != current.Digest && !reverted[h.Commit] {
				image, why = h.Image, fmt.Sprintf("the digest before %s (commit %s)", short(current.Commit), short(h.Commit))
				break
			}
		}
		if image == "" {
			return out, fmt.Errorf("%s has had only %s in its last %d changes: no previous digest to roll back to", g.source, current.Digest, len(hist))
		}
	case "revision":
		id, _ := strconv.ParseInt(to.Value, 10, 64)
		h, ok := g.live.Entry(id)
		if !ok {
			return out, fmt.Errorf(`input "rollback-to": %s has no history entry %d; it has %s`, g.app, id, historyIDs(g.live))
		}
		if image, err = gitops.DigestAt(ctx, g.repo, g.target, h.Revision); err != nil {
			return out, fmt.Errorf("history entry %d of %s (commit %s): %w", id, g.app, short(h.Revision), err)
		}
		why = fmt.Sprintf("what history entry %d ran (commit %s, deployed %s)", id, short(h.Revision), h.DeployedAt)
	case "digest":
		image, why = to.Value, "the digest asked for"
	}
	if !strings.Contains(image, "@") {
		// A values file with the digest alone (no image-repository-path):
		// the repository is the current image's, or the image input's.
		repo := repositoryOf(current.Image)
		if repo == "" {
			repo = repositoryOf(g.in.Image)
		}
		if repo == "" {
			return out, fmt.Errorf(`rolling back to %s: %s names no image repository; set input "image" to the repository (e.g. ghcr.io/acme/app)`, image, g.source)
		}
		image = repo + "@" + image
	}
	dg, err := name.NewDigest(image)
	if err != nil {
		return out, fmt.Errorf("rollback target %q: %w", image, err)
	}
	g.digest = dg
	out.Digest = dg.DigestStr()
	g.log.Infof("rolling %s back from %s to %s: %s", g.in.Environment, current.Digest, dg.DigestStr(), why)
	// The image going back must still pass the policy a deploy of it would.
	if err := g.admit(ctx, &out, false, true); err != nil {
		return out, err
	}
	finish := g.track(ctx)
	subject := fmt.Sprintf("Revert %s to %s", g.in.Environment, shortImage(image))
	o := g.options(false)
	o.Mode, o.PullRequest = gitops.ModePush, gitops.PullRequestOptions{}
	res, err := gitops.Promote(ctx, g.repo, g.target, g.change(image, current.Commit, subject), o)
	if err != nil {
		out.Status = StatusFailure
		finish("failure", err.Error())
		return out, err
	}
	g.promoted(&out, res)
	if err := g.converge(ctx, g.commit, image); err != nil {
		out.Status = StatusFailure
		finish("failure", err.Error())
		return out, err
	}
	out.Status = StatusRolledBack
	out.Revision = g.historyID()
	finish("success", "rolled back to "+dg.DigestStr())
	return out, nil
}

// historyID is the Argo CD history entry of what runs now, as text.
func (g *gitopsRun) historyID() string {
	h := g.live.Status.History
	if len(h) == 0 {
		return ""
	}
	return strconv.FormatInt(h[len(h)-1].ID, 10)
}

func historyIDs(a *argocd.Application) string {
	if len(a.Status.History) == 0 {
		return "none"
	}
	var ids []string
	for _, h := range a.Status.History {
		ids = append(ids, fmt.Sprintf("%d (%s)", h.ID, short(h.Revision)))
	}
	return strings.Join(ids, ", ")
}

func (g *gitopsRun) summary(out Outputs, failure error) string {
	var b strings.Builder
	icon := map[string]string{StatusSuccess: "✅", StatusRolledBack: "↩️", StatusFailure: "❌", StatusPlanned: "📝", StatusPending: "⏳"}[out.Status]
	fmt.Fprintf(&b, "### gantry-deploy: %s %s to %s (Argo CD)\n\n| | |\n|---|---|\n", icon, or(out.Status, "failure"), g.in.Environment)
	fmt.Fprintf(&b, "| application | %s |\n", cellText(g.app.String()))
	if g.source != "" {
		fmt.Fprintf(&b, "| config | %s |\n", cellText(g.source))
	}
	if g.digest.String() != "" {
		fmt.Fprintf(&b, "| image | `%s` |\n", g.digest)
	}
	fmt.Fprintf(&b, "| digest | `%s` → `%s` |\n", or(out.PreviousDigest, "(none)"), or(g.digest.DigestStr(), "(none)"))
	switch {
	case out.PullRequestURL != "":
		fmt.Fprintf(&b, "| pull request | %s |\n", out.PullRequestURL)
	case g.result.Commit != "" && !g.result.Changed:
		fmt.Fprintf(&b, "| commit | none: `%s` already had the digest |\n", short(g.result.Commit))
	case out.GitOpsCommit != "":
		fmt.Fprintf(&b, "| commit | %s |\n", linkOr(out.GitOpsCommitURL, out.GitOpsCommit))
	}
	if g.reverted != nil {
		fmt.Fprintf(&b, "| reverted by | %s |\n", linkOr(g.reverted.CommitURL, g.reverted.Commit))
	}
	if g.live != nil {
		fmt.Fprintf(&b, "| Argo CD | %s |\n", cellText(g.live.Describe()))
	}
	if out.Revision != "" {
		fmt.Fprintf(&b, "| history | entry %s |\n", out.Revision)
	}
	fmt.Fprintf(&b, "| took | %s |\n", time.Since(g.started).Round(100*time.Millisecond))
	if g.in.Git.RunURL != "" {
		fmt.Fprintf(&b, "| run | %s |\n", g.in.Git.RunURL)
	}
	if failure != nil {
		fmt.Fprintf(&b, "\n**Failure:** %s\n", cellText(failure.Error()))
	}
	if out.Status != StatusSuccess {
		if bad := g.unhealthy; len(bad) > 0 {
			b.WriteString("\nNot healthy:\n\n")
			for _, r := range bad {
				fmt.Fprintf(&b, "- %s\n", r)
			}
		}
	}
	if d := g.result.Diff; d != "" {
		fmt.Fprintf(&b, "\n<details><summary>change to %s</summary>\n\n```diff\n%s\n```\n</details>\n", g.result.File, strings.TrimRight(d, "\n"))
	}
	b.WriteString(g.verifiedSummary())
	if out.Status == StatusSuccess && out.Revision != "" {
		fmt.Fprintf(&b, "\nTo return here later: action `rollback`, target `argocd`, rollback-to `revision:%s` (or `digest:%s`): Gantry reverts in Git, so auto-sync keeps the rollback.\n", out.Revision, g.digest.DigestStr())
	}
	return b.String()
}

func linkOr(url, text string) string {
	if url == "" {
		return "`" + text + "`"
	}
	return fmt.Sprintf("[`%s`](%s)", short(text), url)
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func shortImage(image string) string {
	if i := strings.Index(image, "@sha256:"); i >= 0 && len(image) > i+20 {
		return image[:i+20]
	}
	return image
}

func isCommitHash(s string) bool {
	return len(s) == 40 && strings.Trim(s, "0123456789abcdef") == ""
}

// redactURL drops credentials from a repository URL.
func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "@"); j >= 0 && !strings.Contains(u[i+3:i+3+j], "/") {
			return u[:i+3] + u[i+3+j+1:]
		}
	}
	return u
}

// sameRepoURL compares repository URLs loosely (scheme, credentials, .git
// and a trailing slash aside).
func sameRepoURL(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(redactURL(strings.TrimSpace(s)))
		if i := strings.Index(s, "://"); i >= 0 {
			s = s[i+3:]
		}
		if strings.HasPrefix(s, "git@") {
			s = strings.Replace(strings.TrimPrefix(s, "git@"), ":", "/", 1)
		} else if strings.Count(s, "/") == 1 && !strings.Contains(s, ".") {
			s = "github.com/" + s // owner/name
		}
		return strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git")
	}
	return norm(a) == norm(b)
}
