package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/registry"
)

// registries carries the connection settings shared by every request of a
// run: credentials, plain-HTTP registries, retries and a byte counter.
type registries struct {
	in       Inputs
	insecure map[string]bool
	keychain authn.Keychain
	counter  *countingTransport
}

func newRegistries(in Inputs) *registries {
	r := &registries{in: in, insecure: map[string]bool{}}
	for _, h := range in.InsecureRegistries {
		r.insecure[strings.ToLower(strings.TrimSpace(h))] = true
	}
	kc := in.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	if in.RegistryUsername != "" {
		kc = authn.NewMultiKeychain(registry.StaticKeychain(registryOf(in.Image),
			authn.FromConfig(authn.AuthConfig{Username: in.RegistryUsername, Password: in.RegistryPassword})), kc)
	}
	r.keychain = kc
	base := in.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	r.counter = &countingTransport{next: registry.RetryAfter(base, 3)}
	return r
}

// registryOf returns the registry host of a reference string the way
// go-containerregistry would parse it (docker.io when there is none).
func registryOf(s string) string { return registry.HostOf(s) }

func (r *registries) nameOptions(s string) []name.Option {
	if r.insecure[registryOf(s)] {
		return []name.Option{name.Insecure}
	}
	return nil
}

// repository parses the image input. Repository names must be lower case, so
// an owner/repo taken from GitHub (Acme/Prompt-Builder) is lowercased here.
func (r *registries) repository(s string) (name.Repository, error) {
	lower := strings.ToLower(s)
	repo, err := name.NewRepository(lower, r.nameOptions(lower)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf(`input "image": %q is not a repository name: %w`, s, err)
	}
	if lower != s {
		r.in.Log.Infof("image repository %s lowercased to %s", s, lower)
	}
	return repo, nil
}

func (r *registries) reference(s string) (name.Reference, error) {
	return name.ParseReference(s, r.nameOptions(s)...)
}

func (r *registries) options(ctx context.Context) []remote.Option {
	backoff := r.in.Backoff
	if backoff.Steps == 0 {
		backoff = remote.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 5}
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.keychain),
		remote.WithTransport(r.counter),
		remote.WithRetryBackoff(backoff),
		remote.WithJobs(jobs(r.in)),
		remote.WithUserAgent("gantry-build"),
	}
}

// countingTransport counts the blob bytes actually sent, so the summary (and
// the tests) can tell a real upload from a skipped or mounted one.
type countingTransport struct {
	next     http.RoundTripper
	uploaded atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && (req.Method == http.MethodPatch || req.Method == http.MethodPut) && strings.Contains(req.URL.Path, "/blobs/uploads/") {
		req = req.Clone(req.Context())
		req.Body = &countingBody{ReadCloser: req.Body, n: &t.uploaded}
	}
	return t.next.RoundTrip(req)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
