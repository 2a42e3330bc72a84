package gitops

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/crypto/ssh/knownhosts"
	"io"
	"net"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/gantry-ci/gantry/internal/retry"
)

// session is one in-memory clone of the config repository's branch.
type session struct {
	repo   Repo
	rem    remote
	auth   transport.AuthMethod
	scrub  scrubber
	r      *git.Repository
	branch string
	log    Logger
}

func (s *session) infof(format string, args ...any) {
	if s.log != nil {
		s.log.Infof("%s", s.scrub.text(fmt.Sprintf(format, args...)))
	}
}

// display names the remote in messages (never with credentials).
func (r remote) display() string { return redactURL(r.url) }

// open validates repo and clones its branch with full history.
func open(ctx context.Context, repo Repo, log Logger) (*session, error) {
	rem, err := parseRemote(repo.URL)
	if err != nil {
		return nil, err
	}
	auth, err := rem.auth(repo)
	if err != nil {
		return nil, err
	}
	repo.Branch = strings.TrimSpace(repo.Branch)
	if repo.Branch != "" && plumbing.NewBranchReferenceName(repo.Branch).Validate() != nil {
		return nil, fmt.Errorf(`input "gitops-branch" %q is not a branch name`, repo.Branch)
	}
	s := &session{repo: repo, rem: rem, auth: auth, scrub: scrubber{repo.Token}, log: log}
	co := &git.CloneOptions{
		URL:          rem.url,
		Auth:         auth,
		SingleBranch: true,
		NoCheckout:   true,
		Tags:         git.NoTags,
	}
	if repo.Branch != "" {
		co.ReferenceName = plumbing.NewBranchReferenceName(repo.Branch)
	}
	p := retry.Policy{Attempts: 3, Initial: time.Second, MaxBackoff: 4 * time.Second, Log: logAdapter{log, s.scrub}}
	err = p.Do(ctx, func(ctx context.Context) error {
		var err error
		s.r, err = git.CloneContext(ctx, memory.NewStorage(), nil, co)
		if err != nil && isMissingRef(err) {
			return permanent(fmt.Errorf(`input "gitops-branch": branch %q does not exist in %s; create it or name an existing one`, repo.Branch, rem.display()))
		}
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return permanent(fmt.Errorf(`input "gitops-repository": %s is empty; commit the environment's files first`, rem.display()))
		}
		return err
	}, classify)
	if err != nil {
		return nil, s.final(err, "cloning "+rem.display())
	}
	head, err := s.r.Head()
	if err != nil {
		return nil, s.scrub.err(fmt.Errorf("cloning %s: no branch checked out: %w", rem.display(), err))
	}
	s.branch = head.Name().Short()
	// The branch's remote-tracking ref is what tip reads and fetch moves.
	if err := s.r.Storer.SetReference(plumbing.NewHashReference(plumbing.NewRemoteReferenceName("origin", s.branch), head.Hash())); err != nil {
		return nil, err
	}
	s.infof("cloned %s (branch %s at %s)", rem.display(), s.branch, short(head.Hash().String()))
	return s, nil
}

func isMissingRef(err error) bool {
	var nm git.NoMatchingRefSpecError
	return errors.As(err, &nm) || strings.Contains(err.Error(), "couldn't find remote ref") || errors.Is(err, plumbing.ErrReferenceNotFound)
}

// tip is the remote branch's commit as last fetched.
func (s *session) tip(branch string) (*object.Commit, error) {
	ref, err := s.r.Reference(plumbing.NewRemoteReferenceName("origin", branch), true)
	if err != nil {
		return nil, fmt.Errorf("branch %s of %s: %w", branch, s.rem.display(), err)
	}
	return s.r.CommitObject(ref.Hash())
}

// fetch brings the remote branch up to date.
func (s *session) fetch(ctx context.Context, branch string) error {
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/origin/%s", branch, branch))
	err := s.r.FetchContext(ctx, &git.FetchOptions{RefSpecs: []config.RefSpec{spec}, Auth: s.auth, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetching %s: %w", branch, err)
	}
	return nil
}

// resolveFile finds the target's file in a commit's tree.
func resolveFile(c *object.Commit, t Target) (string, *object.File, error) {
	tree, err := c.Tree()
	if err != nil {
		return "", nil, err
	}
	if f, err := tree.File(t.Path); err == nil {
		return t.Path, f, nil
	}
	dir, err := tree.Tree(t.Path)
	if err != nil {
		return "", nil, fmt.Errorf(`input "gitops-path": %s does not exist at %s; set it to the environment's directory or file`, t.Path, short(c.Hash.String()))
	}
	names := []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}
	if t.ValuesKey != "" {
		names = []string{"values.yaml", "values.yml"}
	}
	for _, n := range names {
		if f, err := dir.File(n); err == nil {
			return path.Join(t.Path, n), f, nil
		}
	}
	if t.ValuesKey != "" {
		return "", nil, fmt.Errorf(`input "gitops-path": %s has no values.yaml; point "gitops-path" at the Helm values file itself`, t.Path)
	}
	return "", nil, fmt.Errorf(`input "gitops-path": %s has no kustomization.yaml and no values file; set "image-path" for a Helm values file (and point "gitops-path" at it), or add a kustomization`, t.Path)
}

func readFile(c *object.Commit, t Target) (string, []byte, error) {
	file, f, err := resolveFile(c, t)
	if err != nil {
		return "", nil, err
	}
	content, err := f.Contents()
	if err != nil {
		return "", nil, err
	}
	return file, []byte(content), nil
}

// edit applies the change to the target file at commit c.
func (s *session) edit(c *object.Commit, t Target, img image) (fileEdit, string, error) {
	file, content, err := readFile(c, t)
	if err != nil {
		return fileEdit{}, "", err
	}
	ed, err := applyEdit(content, file, t, img)
	if err == nil {
		// The image as the file named it before (repository and digest),
		// what a revert puts back.
		if st, serr := readState(content, file, t); serr == nil {
			ed.previousImage = st.image()
		}
	}
	return ed, file, err
}

// commit writes a commit on parent with file's content replaced.
func (s *session) commit(parent *object.Commit, file string, content []byte, msg string, repo Repo) (plumbing.Hash, error) {
	st := s.r.Storer
	blob := st.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	w, err := blob.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	blobHash, err := st.SetEncodedObject(blob)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	treeHash, err := s.replaceInTree(parent.TreeHash, strings.Split(file, "/"), blobHash)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing %s: %w", file, err)
	}
	sig := object.Signature{Name: repo.AuthorName, Email: repo.AuthorEmail, When: time.Now()}
	if sig.Name == "" {
		sig.Name = defaultAuthorName
	}
	if sig.Email == "" {
		sig.Email = defaultAuthorEmail
	}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: treeHash, ParentHashes: []plumbing.Hash{parent.Hash}}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

// replaceInTree writes new trees from treeHash down to the blob at parts.
func (s *session) replaceInTree(treeHash plumbing.Hash, parts []string, blob plumbing.Hash) (plumbing.Hash, error) {
	tree, err := object.GetTree(s.r.Storer, treeHash)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	entries := append([]object.TreeEntry(nil), tree.Entries...)
	found := false
	for i, e := range entries {
		if e.Name != parts[0] {
			continue
		}
		found = true
		if len(parts) == 1 {
			if e.Mode != filemode.Regular && e.Mode != filemode.Executable {
				return plumbing.ZeroHash, fmt.Errorf("%s is not a regular file", e.Name)
			}
			entries[i].Hash = blob
		} else {
			h, err := s.replaceInTree(e.Hash, parts[1:], blob)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries[i].Hash = h
		}
	}
	if !found {
		return plumbing.ZeroHash, fmt.Errorf("%s not found", parts[0])
	}
	nt := &object.Tree{Entries: entries}
	obj := s.r.Storer.NewEncodedObject()
	if err := nt.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.r.Storer.SetEncodedObject(obj)
}

// push sends commit h to the remote branch dst (force: replace it).
func (s *session) push(ctx context.Context, h plumbing.Hash, dst string, force bool) error {
	local := plumbing.NewBranchReferenceName("gantry-promote")
	if err := s.r.Storer.SetReference(plumbing.NewHashReference(local, h)); err != nil {
		return err
	}
	spec := fmt.Sprintf("%s:refs/heads/%s", local, dst)
	if force {
		spec = "+" + spec
	}
	err := s.r.PushContext(ctx, &git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{config.RefSpec(spec)}, Auth: s.auth})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}

// isRejected says the push failed because the remote branch moved.
func isRejected(err error) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref", "stale info", "rejected"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func isAuthError(err error) bool {
	return errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) || errors.Is(err, transport.ErrInvalidAuthMethod) ||
		sshHostKeyError(err) || sshAuthError(err)
}

// sshHostKeyError: the SSH host's key is not the one gitops-known-hosts
// holds (or the host is not in it).
func sshHostKeyError(err error) bool {
	var ke *knownhosts.KeyError
	return errors.As(err, &ke) || strings.Contains(err.Error(), "knownhosts: key")
}

// sshAuthError: the SSH host refused the deploy key.
func sshAuthError(err error) bool {
	return strings.Contains(err.Error(), "ssh: unable to authenticate")
}

// hintFor says what the user can change about a transport error.
func hintFor(err error, where string) string {
	var ne net.Error
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return `check input "gitops-token" (or "gitops-ssh-key"): the config repository refused the credentials`
	case sshHostKeyError(err):
		return `input "gitops-known-hosts" does not hold this host's key: take it from ssh-keyscan and check it against the host's published fingerprints (a changed key may also mean someone is in between)`
	case sshAuthError(err):
		return `input "gitops-ssh-key": the host refused the key; add its public half to the config repository as a deploy key with write access`
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return `the credentials may not write to ` + where + `: give "gitops-token" contents: write (or the deploy key write access)`
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return `input "gitops-repository": ` + where + ` does not exist or the credentials cannot see it`
	case errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF):
		return "the network failed; re-run the job if it persists"
	}
	return ""
}
