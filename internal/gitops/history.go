package gitops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Entry is one commit that changed the digest in the target file.
type Entry struct {
	Commit string
	// Digest is the digest the file has at Commit; Image is
	// repository@digest when the file (or the commit's Gantry-Image
	// trailer) names the repository, else the digest alone.
	Digest, Image string
	Time          time.Time // committer time
	Subject       string
	// Environment and RevertOf come from the Gantry-Environment and
	// Gantry-Revert-Of trailers ("" for commits not made by Gantry).
	Environment, RevertOf string
}

// History walks the branch's first-parent history, newest first, and
// returns the commits that changed the digest in the target file, at most
// limit of them (limit ≤ 0: all). Commits where the file is missing or
// unreadable end the walk's view of it without failing.
func History(ctx context.Context, repo Repo, target Target, limit int) ([]Entry, error) {
	target, err := validTarget(target)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, repo, nil)
	if err != nil {
		return nil, err
	}
	c, err := s.tip(s.branch)
	if err != nil {
		return nil, s.scrub.err(err)
	}
	if _, _, err := readFile(c, target); err != nil {
		return nil, err
	}
	cache := map[plumbing.Hash]state{}
	stateAt := func(c *object.Commit) (state, error) {
		_, f, err := resolveFile(c, target)
		if err != nil {
			return state{}, nil // the file did not exist yet
		}
		if st, ok := cache[f.Hash]; ok {
			return st, nil
		}
		content, err := f.Contents()
		if err != nil {
			return state{}, err
		}
		st, err := readState([]byte(content), f.Name, target)
		if err != nil {
			return state{}, err
		}
		cache[f.Hash] = st
		return st, nil
	}
	var out []Entry
	cur, err := stateAt(c)
	if err != nil {
		return nil, err
	}
	for c != nil && (limit <= 0 || len(out) < limit) {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		var parent *object.Commit
		var prev state
		if len(c.ParentHashes) > 0 {
			if parent, err = s.r.CommitObject(c.ParentHashes[0]); err != nil {
				return out, s.scrub.err(err)
			}
			if prev, err = stateAt(parent); err != nil {
				// An unreadable older version ends the history there.
				prev = state{}
				parent = nil
			}
		}
		if cur.digest != "" && cur != prev {
			tr := trailers(c.Message)
			e := Entry{
				Commit: c.Hash.String(), Digest: cur.digest, Image: cur.image(),
				Time: c.Committer.When, Subject: strings.SplitN(c.Message, "\n", 2)[0],
				Environment: tr["Gantry-Environment"], RevertOf: tr["Gantry-Revert-Of"],
			}
			if cur.repository == "" {
				if img, err := parseImage(tr["Gantry-Image"]); err == nil && img.digest == cur.digest {
					e.Image = img.String()
				}
			}
			out = append(out, e)
		}
		c, cur = parent, prev
	}
	return out, nil
}

// DigestAt returns the image in the target file at revision (a commit SHA,
// full or abbreviated, as Argo CD's application history records it):
// repository@sha256:… when the file names the repository, else the digest
// alone. The revision must be on the branch.
func DigestAt(ctx context.Context, repo Repo, target Target, revision string) (string, error) {
	target, err := validTarget(target)
	if err != nil {
		return "", err
	}
	s, err := open(ctx, repo, nil)
	if err != nil {
		return "", err
	}
	h, err := s.r.ResolveRevision(plumbing.Revision(strings.TrimSpace(revision)))
	if err != nil {
		return "", fmt.Errorf("revision %q is not a commit on branch %s of %s: %v", revision, s.branch, s.rem.display(), err)
	}
	c, err := s.r.CommitObject(*h)
	if err != nil {
		return "", fmt.Errorf("revision %q: %v", revision, err)
	}
	file, content, err := readFile(c, target)
	if err != nil {
		return "", fmt.Errorf("at %s: %w", short(c.Hash.String()), err)
	}
	st, err := readState(content, file, target)
	if err != nil {
		return "", err
	}
	if st.digest == "" {
		return "", fmt.Errorf("%s at %s has no image digest", file, short(c.Hash.String()))
	}
	if st.repository == "" {
		if img, err := parseImage(trailers(c.Message)["Gantry-Image"]); err == nil && img.digest == st.digest {
			return img.String(), nil
		}
	}
	return st.image(), nil
}
