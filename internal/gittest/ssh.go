package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSH serves the server's repositories over SSH, as a Git host does for
// deploy keys: an SSH server (golang.org/x/crypto/ssh: the real protocol,
// host key, public-key authentication) that runs git's own
// git-upload-pack and git-receive-pack for `git clone`/`git push`. Only
// the key made for it is let in.
type SSH struct {
	// Addr is host:port; URL(name) the clone URL of a repository.
	Addr string
	// KnownHosts is the known_hosts line of the server's host key.
	KnownHosts string
	// ClientKey is the PEM private key that may log in (the deploy key).
	ClientKey string
	root      string

	mu     sync.Mutex
	logins int
}

// URL is ssh://git@ADDR/NAME.git.
func (s *SSH) URL(name string) string { return "ssh://git@" + s.Addr + "/" + name + ".git" }

// Logins is how many sessions authenticated.
func (s *SSH) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// StartSSH serves the server's repositories over SSH until the test ends.
func (s *Server) StartSSH(t testing.TB) *SSH {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "gittest deploy key")
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	srv := &SSH{root: s.Root, ClientKey: string(pem.EncodeToMemory(block))}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) != string(allowed.Marshal()) {
				return nil, errors.New("unknown key")
			}
			srv.mu.Lock()
			srv.logins++
			srv.mu.Unlock()
			return &ssh.Permissions{}, nil
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv.Addr = ln.Addr().String()
	srv.KnownHosts = knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, hostSigner.PublicKey())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.serve(c, cfg)
		}
	}()
	return srv
}

func (s *SSH) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, reqs)
	}
}

// session runs the one command a Git client asks for: git-upload-pack or
// git-receive-pack '/NAME.git', in the served repository.
func (s *SSH) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type == "env" {
			_ = req.Reply(true, nil)
			continue
		}
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if ssh.Unmarshal(req.Payload, &payload) != nil {
			_ = req.Reply(false, nil)
			return
		}
		prog, arg, _ := strings.Cut(payload.Command, " ")
		repo := strings.Trim(strings.Trim(arg, "'\""), "/")
		if (prog != "git-upload-pack" && prog != "git-receive-pack") || repo == "" || strings.Contains(repo, "..") {
			_ = req.Reply(false, nil)
			fmt.Fprintf(ch.Stderr(), "gittest ssh: refused command %q\n", payload.Command)
			return
		}
		_ = req.Reply(true, nil)
		cmd := exec.Command("git", strings.TrimPrefix(prog, "git-"), filepath.Join(s.root, repo))
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		// Not cmd.Stdin = ch: Wait would wait for the channel's EOF, which
		// a client sends only after the exit status.
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return
		}
		go func() { _, _ = io.Copy(stdin, ch); stdin.Close() }()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = uint32(ee.ExitCode())
			}
		}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}
