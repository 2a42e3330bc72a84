// Package registry holds what every stage that talks to an OCI registry
// shares: credentials from the stage's inputs (else the Docker config
// keychain), plain-HTTP registries, retries that honour Retry-After, and
// resolving a tag to a digest exactly once.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/retry"
)

// Conn is a stage's connection settings. The zero value uses the Docker
// config keychain, HTTPS, and retries of 1s, 2s, 4s, 8s, 16s.
type Conn struct {
	// Username and Password, when Username is set, authenticate to the
	// registry of the stage's image (the registry-username/-password inputs).
	Username string
	Password string
	// Insecure lists registries (host[:port]) reached over plain HTTP.
	// Loopback registries are plain HTTP without being listed.
	Insecure []string
	// Keychain resolves credentials otherwise; nil means the Docker config.
	Keychain authn.Keychain
	// Transport is the HTTP transport; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Backoff is how failed requests are retried; zero means 1s ... 16s.
	Backoff remote.Backoff
	// UserAgent names the stage (gantry-sbom ...).
	UserAgent string
	// Jobs bounds concurrent blob transfers; zero means 4.
	Jobs int
}

// HostOf returns the registry host of a reference string the way
// go-containerregistry parses it (index.docker.io when there is none).
func HostOf(s string) string {
	if ref, err := name.ParseReference(strings.ToLower(s)); err == nil {
		return ref.Context().RegistryStr()
	}
	return ""
}

func (c Conn) insecure(s string) bool {
	host := HostOf(s)
	for _, h := range c.Insecure {
		if strings.EqualFold(strings.TrimSpace(h), host) {
			return true
		}
	}
	return false
}

// NameOptions are the parse options for a reference string: name.Insecure
// for a registry listed in Insecure.
func (c Conn) NameOptions(s string) []name.Option {
	if c.insecure(s) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Reference parses a reference string (tag or digest). input names the
// action input it came from, for the error message.
func (c Conn) Reference(input, s string) (name.Reference, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("input %q is empty: pass an image reference, e.g. ghcr.io/acme/app@sha256:…", input)
	}
	ref, err := name.ParseReference(s, c.NameOptions(s)...)
	if err != nil {
		return nil, fmt.Errorf("input %q: %q is not an image reference (want repo@sha256:… or repo:tag): %w", input, s, err)
	}
	return ref, nil
}

// Keychain is the credential chain for requests about image: the static
// username/password for its registry first, then Keychain.
func (c Conn) keychain(image string) authn.Keychain {
	kc := c.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	if c.Username != "" {
		kc = authn.NewMultiKeychain(StaticKeychain(HostOf(image), authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password})), kc)
	}
	return kc
}

// Options are the remote options for requests about image.
func (c Conn) Options(ctx context.Context, image string) []remote.Option {
	backoff := c.Backoff
	if backoff.Steps == 0 {
		backoff = remote.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 5}
	}
	base := c.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	jobs := c.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "gantry"
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain(image)),
		remote.WithTransport(RetryAfter(base, 3)),
		remote.WithRetryBackoff(backoff),
		remote.WithJobs(jobs),
		remote.WithUserAgent(ua),
	}
}

// Resolve turns a reference into a digest. A digest is returned as is; a
// tag is resolved once, logged as a warning, and never used again (stages
// hand each other digests, never tags).
func (c Conn) Resolve(ctx context.Context, input, s string, log ghaction.Logger) (name.Digest, error) {
	ref, err := c.Reference(input, s)
	if err != nil {
		return name.Digest{}, err
	}
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(ref, c.Options(ctx, s)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("input %q: %s is a tag and resolving it failed (pass repo@sha256:… instead): %w", input, s, err)
	}
	d := ref.Context().Digest(desc.Digest.String())
	if log != nil {
		log.Warningf("input %q: %s is a tag: resolved once to %s; only the digest is used from here on", input, s, d)
	}
	return d, nil
}

// StaticKeychain answers auth for one registry host and anonymous for the rest.
func StaticKeychain(host string, auth authn.Authenticator) authn.Keychain {
	return staticKeychain{host: host, auth: auth}
}

type staticKeychain struct {
	host string
	auth authn.Authenticator
}

func (k staticKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if res.RegistryStr() == k.host {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

// RetryAfter wraps a transport so that a 429 with a Retry-After header is
// retried after the wait it asks for (up to a minute, at most max times),
// before go-containerregistry's own backoff gets to retry: a rate-limited
// registry is best served by doing what it says.
func RetryAfter(next http.RoundTripper, max int) http.RoundTripper {
	return &retryAfterTransport{next: next, max: max}
}

type retryAfterTransport struct {
	next http.RoundTripper
	max  int
}

// errTooManyRequests marks a 429 for the retry policy; RoundTrip hands the
// response itself back when the retries end without a wait cut short.
var errTooManyRequests = errors.New("the registry answered 429 Too Many Requests")

func (t *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var resp *http.Response
	p := retry.Policy{
		Attempts: t.max + 1,
		// ParseRetryAfter caps every wait at a minute, so none is refused.
		MaxWait: time.Minute,
		Sleep: func(ctx context.Context, d time.Duration) error {
			// Done with the 429: its connection can serve others meanwhile.
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			resp = nil
			return retry.Sleep(ctx, d)
		},
	}
	first := true
	err := p.Do(req.Context(), func(ctx context.Context) error {
		if !first && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return err
			}
			req = req.Clone(ctx)
			req.Body = body
		}
		first = false
		var err error
		if resp, err = t.next.RoundTrip(req); err != nil {
			return err
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			return errTooManyRequests
		}
		return nil
	}, func(err error) retry.Verdict {
		if !errors.Is(err, errTooManyRequests) {
			return retry.Permanent("") // the transport's own failure: go-containerregistry's backoff retries those
		}
		wait, ok := ParseRetryAfter(resp.Header.Get("Retry-After"))
		if !ok || (req.Body != nil && req.GetBody == nil) {
			return retry.Permanent("") // no wait to honour, or no body to send again
		}
		return retry.After(wait)
	})
	var re *retry.Error
	switch {
	case err == nil:
		return resp, nil
	case !errors.As(err, &re):
		return nil, err
	case !errors.Is(re.Err, errTooManyRequests):
		return resp, re.Err
	case resp != nil:
		return resp, nil // the 429 itself, for go-containerregistry to report or retry
	default:
		return nil, err // the request's context ended the wait
	}
}

// ParseRetryAfter reads a Retry-After header (seconds or an HTTP date),
// capped at a minute.
func ParseRetryAfter(h string) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	var d time.Duration
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	return min(max(d, 0), time.Minute), true
}
