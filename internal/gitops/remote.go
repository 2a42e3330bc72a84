package gitops

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// remote is a parsed Repo.URL.
type remote struct {
	url         string // what go-git is given (no credentials)
	ssh         bool
	scheme      string // https, http or ssh
	host        string // host[:port]
	owner, name string // owner and name when the path is owner/name, else ""
}

var (
	shortForm = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	scpLike   = regexp.MustCompile(`^([A-Za-z0-9_.-]+)@([A-Za-z0-9_.-]+):([^/].*)$`)
)

// parseRemote reads input "gitops-repository".
func parseRemote(s string) (remote, error) {
	s = strings.TrimSpace(s)
	const in = `input "gitops-repository"`
	if s == "" {
		return remote{}, fmt.Errorf(`%s is empty: set it to the config repository, e.g. acme/deploy-config or https://github.com/acme/deploy-config.git`, in)
	}
	if shortForm.MatchString(s) && !strings.Contains(s, ":") {
		owner, name, _ := strings.Cut(s, "/")
		name = strings.TrimSuffix(name, ".git")
		return remote{url: "https://github.com/" + owner + "/" + name + ".git", scheme: "https", host: "github.com", owner: owner, name: name}, nil
	}
	if m := scpLike.FindStringSubmatch(s); m != nil && !strings.Contains(s, "://") {
		r := remote{url: s, ssh: true, scheme: "ssh", host: m[2]}
		r.owner, r.name = ownerName(m[3])
		return r, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return remote{}, fmt.Errorf("%s %q is not a repository URL: use owner/name, https://host/owner/name.git or git@host:owner/name.git", in, redactURL(s))
	}
	switch u.Scheme {
	case "https", "http":
		if u.User != nil {
			return remote{}, fmt.Errorf(`%s %q carries credentials in the URL: remove them and set input "gitops-token" instead`, in, redactURL(s))
		}
	case "ssh":
		if _, hasPass := u.User.Password(); hasPass {
			return remote{}, fmt.Errorf(`%s %q carries a password in the URL: use input "gitops-ssh-key" instead`, in, redactURL(s))
		}
	default:
		return remote{}, fmt.Errorf("%s %q: scheme %q is not supported; use https://, ssh:// or git@host:owner/name.git", in, redactURL(s), u.Scheme)
	}
	r := remote{url: s, ssh: u.Scheme == "ssh", scheme: u.Scheme, host: u.Host}
	r.owner, r.name = ownerName(u.Path)
	return r, nil
}

func ownerName(p string) (string, string) {
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	owner, name, ok := strings.Cut(p, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", ""
	}
	return owner, name
}

// commitURL is the web page of a commit, GitHub-style, when the remote
// path is owner/name; "" otherwise.
func (r remote) commitURL(sha string) string {
	if r.owner == "" || sha == "" {
		return ""
	}
	scheme := r.scheme
	host := r.host
	if r.ssh {
		scheme = "https"
		host = strings.Split(host, ":")[0]
	}
	return fmt.Sprintf("%s://%s/%s/%s/commit/%s", scheme, host, r.owner, r.name, sha)
}

// auth builds the transport credentials for the remote from the Repo.
func (r remote) auth(repo Repo) (transport.AuthMethod, error) {
	if !r.ssh {
		if repo.SSHKey != "" {
			return nil, fmt.Errorf(`input "gitops-ssh-key" is set but input "gitops-repository" is not an ssh URL: use git@host:owner/name.git or ssh://git@host/owner/name.git, or drop the key and use "gitops-token"`)
		}
		token := strings.TrimSpace(repo.Token)
		if token == "" {
			return nil, nil
		}
		user := repo.Username
		if user == "" {
			user = "x-access-token"
		}
		return &githttp.BasicAuth{Username: user, Password: token}, nil
	}
	if strings.TrimSpace(repo.SSHKey) == "" {
		return nil, fmt.Errorf(`input "gitops-repository" is an ssh URL, which needs input "gitops-ssh-key" (a deploy key with write access, PEM); or use an https URL with "gitops-token"`)
	}
	if strings.TrimSpace(repo.KnownHosts) == "" {
		return nil, fmt.Errorf(`input "gitops-ssh-key" needs "gitops-known-hosts": the host's known_hosts lines (e.g. from ssh-keyscan %s, checked against the host's published fingerprints); host keys are never accepted unchecked`, strings.Split(r.host, ":")[0])
	}
	user := "git"
	if u, err := url.Parse(r.url); err == nil && u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	} else if m := scpLike.FindStringSubmatch(r.url); m != nil {
		user = m[1]
	}
	keys, err := gitssh.NewPublicKeys(user, []byte(strings.TrimSpace(repo.SSHKey)+"\n"), "")
	if err != nil {
		// ssh's parse errors do not quote the key.
		return nil, fmt.Errorf(`input "gitops-ssh-key" is not a usable private key (PEM/OpenSSH, without a passphrase): %v`, err)
	}
	cb, err := knownHostsCallback(repo.KnownHosts)
	if err != nil {
		return nil, err
	}
	keys.HostKeyCallback = cb
	return keys, nil
}

// knownHostsCallback checks host keys against the given known_hosts lines.
// x/crypto's knownhosts reads files only, so the lines pass through a
// temporary file that is removed at once.
func knownHostsCallback(lines string) (ssh.HostKeyCallback, error) {
	rest := []byte(lines)
	for len(rest) > 0 {
		var err error
		_, _, _, _, rest, err = ssh.ParseKnownHosts(rest)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf(`input "gitops-known-hosts" is not in known_hosts format ("host key-type base64-key" per line): %v`, err)
		}
	}
	f, err := os.CreateTemp("", "gantry-known-hosts-*")
	if err != nil {
		return nil, fmt.Errorf("writing known hosts: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(strings.TrimSpace(lines) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing known hosts: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing known hosts: %w", err)
	}
	cb, err := knownhosts.New(f.Name())
	if err != nil {
		return nil, fmt.Errorf(`input "gitops-known-hosts": %v`, err)
	}
	return cb, nil
}

var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@`)

// redactURL hides a URL's user information.
func redactURL(s string) string { return userinfo.ReplaceAllString(s, "${1}***@") }

// scrubber removes secrets from text that may have come from go-git or a
// server: the token, and any user information in URLs.
type scrubber []string

func (s scrubber) text(msg string) string {
	for _, secret := range s {
		if secret = strings.TrimSpace(secret); len(secret) >= 4 {
			msg = strings.ReplaceAll(msg, secret, "***")
		}
	}
	return redactURL(msg)
}

// err wraps err so its text is scrubbed; errors.Is/As still see the cause.
func (s scrubber) err(err error) error {
	if err == nil {
		return nil
	}
	var done *scrubbed
	if errors.As(err, &done) && done.msg == s.text(err.Error()) {
		return err
	}
	return &scrubbed{msg: s.text(err.Error()), err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
