package gitops

import (
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/gittest"
)

// TestPromoteOverSSH: a deploy key (gitops-ssh-key) and the host's
// known_hosts line (gitops-known-hosts) promote over SSH into the served
// repository, as with a Git host's deploy key; a host key that is not the
// one in known_hosts and a key the server does not know are refused, with
// the key never in the error.
func TestPromoteOverSSH(t *testing.T) {
	srv := gittest.Start(t, token)
	repo := newConfigRepo(t, srv)
	sshd := srv.StartSSH(t)
	r := Repo{URL: sshd.URL("config"), SSHKey: sshd.ClientKey, KnownHosts: sshd.KnownHosts}
	res, err := Promote(t.Context(), r, Target{Path: "envs/staging"}, Change{Image: "ghcr.io/acme/app@" + digA, Environment: "staging"}, Options{})
	if err != nil {
		t.Fatalf("promote over ssh: %v", err)
	}
	if !res.Changed || res.Commit != repo.Head("main") || !strings.Contains(repo.Show("main", "envs/staging/kustomization.yaml"), "digest: "+digA) {
		t.Fatalf("result %+v; head %s; file:\n%s", res, repo.Head("main"), repo.Show("main", "envs/staging/kustomization.yaml"))
	}
	if sshd.Logins() == 0 {
		t.Fatal("the SSH server saw no login")
	}

	// Another host's key in known_hosts: refused before any login.
	other := gittest.Start(t, "").StartSSH(t)
	logins := sshd.Logins()
	bad := r
	bad.KnownHosts = strings.Replace(other.KnownHosts, other.Addr, sshd.Addr, 1)
	_, err = Promote(t.Context(), bad, Target{Path: "envs/staging"}, Change{Image: "ghcr.io/acme/app@" + digB, Environment: "staging"}, Options{})
	if err == nil {
		t.Fatal("promoted to a host whose key is not the known one")
	}
	if !strings.Contains(err.Error(), `"gitops-known-hosts"`) {
		t.Errorf("the error does not name the input to fix: %v", err)
	}
	if sshd.Logins() != logins {
		t.Error("a login happened with an unknown host key")
	}

	// A deploy key the server does not know.
	wrong := r
	wrong.SSHKey = other.ClientKey
	_, err = Promote(t.Context(), wrong, Target{Path: "envs/staging"}, Change{Image: "ghcr.io/acme/app@" + digB, Environment: "staging"}, Options{})
	if err == nil {
		t.Fatal("promoted with a key the server does not know")
	}
	if !strings.Contains(err.Error(), `"gitops-ssh-key"`) {
		t.Errorf("the error does not name the input to fix: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("the key is in the error: %v", err)
	}
}
