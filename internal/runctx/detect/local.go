package detect

import (
	"errors"
	"fmt"
	"github.com/gantry-ci/gantry/internal/runctx"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// Local reads a run outside any CI from the git repository at dir (or the
// one dir is inside):
//
//   - SHA is HEAD's commit;
//   - Ref is refs/tags/<tag> when a tag points at HEAD's commit (a release
//     is built from a tagged commit, checked out or not), else
//     refs/heads/<branch> of the checked-out branch, else "" (a detached
//     HEAD);
//   - Repository and ServerURL come from the origin remote when its URL is
//     GitHub-like, https or ssh, with exactly owner/name as its path;
//   - DefaultBranch is the branch origin's HEAD names, when it was fetched.
//
// EventName is "local". A dir that is no git repository gives a runctx.Run with
// none of these, and no error: a local run may build any directory.
func Local(dir string, now time.Time) (*runctx.Run, error) {
	r := &runctx.Run{CI: runctx.LocalCI, Local: true, EventName: "local", StartedOn: now}
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("opening the git repository at %s: %w", dir, err)
	}
	if err := readHead(repo, r); err != nil {
		return r, fmt.Errorf("reading HEAD of the git repository at %s: %w", dir, err)
	}
	if remote, err := repo.Remote("origin"); err == nil && len(remote.Config().URLs) > 0 {
		r.ServerURL, r.Repository = parseRemote(remote.Config().URLs[0])
		if r.ServerURL == "https://github.com" {
			r.APIURL = "https://api.github.com"
		}
	}
	if head, err := repo.Reference("refs/remotes/origin/HEAD", false); err == nil && head.Type() == plumbing.SymbolicReference {
		r.DefaultBranch = strings.TrimPrefix(head.Target().String(), "refs/remotes/origin/")
	}
	return r, nil
}

// readHead sets r's SHA and ref from HEAD. A repository without a commit
// yet has no SHA, only the branch HEAD names.
func readHead(repo *git.Repository, r *runctx.Run) error {
	head, err := repo.Reference(plumbing.HEAD, false)
	if err != nil {
		return err
	}
	if head.Type() == plumbing.SymbolicReference && head.Target().IsBranch() {
		r.Ref, r.RefName, r.RefType = head.Target().String(), head.Target().Short(), "branch"
	}
	resolved, err := repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil // an unborn branch
	}
	if err != nil {
		return err
	}
	r.SHA = resolved.Hash().String()
	tag, err := tagAt(repo, resolved.Hash())
	if err != nil {
		return err
	}
	if tag != "" {
		r.Ref, r.RefName, r.RefType = "refs/tags/"+tag, tag, "tag"
	}
	return nil
}

// tagAt returns the tag that points at commit, annotated or lightweight;
// "" when none does. Of several, the highest semantic version wins (a
// release's final tag over the release candidate tagged on the same
// commit), then the first name.
func tagAt(repo *git.Repository, commit plumbing.Hash) (string, error) {
	iter, err := repo.Tags()
	if err != nil {
		return "", err
	}
	var tags []string
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		h := ref.Hash()
		if t, err := repo.TagObject(h); err == nil {
			c, err := t.Commit()
			if err != nil {
				return nil // a tag of a tree or a blob
			}
			h = c.Hash
		}
		if h == commit {
			tags = append(tags, ref.Name().Short())
		}
		return nil
	})
	if err != nil || len(tags) == 0 {
		return "", err
	}
	return slices.MaxFunc(tags, compareTags), nil
}

// compareTags orders tags by semantic version, the ones that are none
// below, ties by name with the first name highest.
func compareTags(a, b string) int {
	va, aerr := semver.StrictNewVersion(strings.TrimPrefix(a, "v"))
	vb, berr := semver.StrictNewVersion(strings.TrimPrefix(b, "v"))
	switch {
	case aerr == nil && berr == nil:
		if c := va.Compare(vb); c != 0 {
			return c
		}
	case aerr == nil:
		return 1
	case berr == nil:
		return -1
	}
	return strings.Compare(b, a)
}

// parseRemote returns the forge's web address and owner/name of a remote
// URL: https://github.com/acme/app(.git), git@github.com:acme/app.git or
// ssh://git@github.com/acme/app.git all give https://github.com and
// acme/app. Anything else (a local path, a path deeper than owner/name)
// gives "", "". Credentials in the URL are never kept.
func parseRemote(remote string) (server, repository string) {
	var host, path string
	if strings.Contains(remote, "://") {
		u, err := url.Parse(remote)
		if err != nil || u.Host == "" {
			return "", ""
		}
		switch u.Scheme {
		case "https", "http":
			host = u.Scheme + "://" + u.Host
		case "ssh", "git+ssh":
			// The web server is not on the SSH port.
			host = "https://" + u.Hostname()
		default:
			return "", ""
		}
		path = u.Path
	} else {
		// scp-like: [user@]host:owner/name. A colon after a slash, or a
		// single letter before it (C:\), is a local path.
		addr, p, ok := strings.Cut(remote, ":")
		if !ok || strings.Contains(addr, "/") || strings.Contains(addr, `\`) {
			return "", ""
		}
		if i := strings.LastIndex(addr, "@"); i >= 0 {
			addr = addr[i+1:]
		}
		if len(addr) < 2 {
			return "", ""
		}
		host, path = "https://"+addr, p
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	owner, name, ok := strings.Cut(path, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", ""
	}
	return host, owner + "/" + name
}
