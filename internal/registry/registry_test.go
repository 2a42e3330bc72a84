package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/registry"
)

type warnings struct{ lines []string }

func (w *warnings) Infof(string, ...any)        {}
func (w *warnings) Warningf(f string, a ...any) { w.lines = append(w.lines, fmt.Sprintf(f, a...)) }
func (w *warnings) Group(string) func()         { return func() {} }

// TestResolve: a tag is resolved once to the digest the registry holds,
// with a warning that only the digest is used; a digest is used as is; bad
// references name the input.
func TestResolve(t *testing.T) {
	// Open while the test pushes; then private, like GHCR.
	var private atomic.Bool
	auth := ocitest.BasicAuth("ci-bot", "s3cret")
	reg, err := ocitest.StartRegistry(func(next http.Handler) http.Handler {
		guarded := auth(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if private.Load() {
				guarded.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	tagged, idx, err := ocitest.PushBase(t.Context(), reg.Host, "acme/app:1.2.3", []string{"linux/amd64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	private.Store(true)
	conn := registry.Conn{Username: "ci-bot", Password: "s3cret"}

	log := &warnings{}
	d, err := conn.Resolve(t.Context(), "image", tagged, log)
	if err != nil {
		t.Fatal(err)
	}
	if d.DigestStr() != want.String() || !strings.HasPrefix(d.String(), reg.Host+"/acme/app@") {
		t.Errorf("resolved %s, want %s/acme/app@%s", d, reg.Host, want)
	}
	if len(log.lines) != 1 || !strings.Contains(log.lines[0], "only the digest is used") {
		t.Errorf("warnings %q: want one saying only the digest is used", log.lines)
	}

	if _, err := (registry.Conn{}).Resolve(t.Context(), "image", tagged, nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("resolving without the credentials: %v, want a 401", err)
	}

	byDigest := reg.Host + "/acme/app@" + want.String()
	log = &warnings{}
	if d, err := (registry.Conn{}).Resolve(t.Context(), "image", byDigest, log); err != nil || d.String() != byDigest || len(log.lines) != 0 {
		t.Errorf("a digest: got %s, %v, warnings %q; want it as is, silently, with no request", d, err, log.lines)
	}

	for _, bad := range []string{"", "Not A Reference!"} {
		if _, err := conn.Resolve(t.Context(), "image", bad, nil); err == nil || !strings.Contains(err.Error(), `input "image"`) {
			t.Errorf("Resolve(%q) = %v, want an error naming the input", bad, err)
		}
	}
}

// TestRetryAfter: a 429 with Retry-After is retried after the wait it asks
// for; without the header the 429 is handed back at once.
func TestRetryAfter(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case r.URL.Path == "/limited" && n == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case r.URL.Path == "/bare":
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: registry.RetryAfter(http.DefaultTransport, 3)}

	start := time.Now()
	resp, err := client.Get(srv.URL + "/limited")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || calls.Load() != 2 || time.Since(start) < time.Second {
		t.Errorf("after a 429 with Retry-After: 1: status %d after %d calls in %v; want 200 after 2 calls and at least 1s", resp.StatusCode, calls.Load(), time.Since(start))
	}

	calls.Store(0)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/bare", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || calls.Load() != 1 {
		t.Errorf("a 429 without Retry-After: status %d after %d calls; want it handed back after 1", resp.StatusCode, calls.Load())
	}

	for h, want := range map[string]time.Duration{"3": 3 * time.Second, "900": time.Minute, "-5": 0} {
		if got, ok := registry.ParseRetryAfter(h); !ok || got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v", h, got, ok, want)
		}
	}
	if _, ok := registry.ParseRetryAfter("soon"); ok {
		t.Error(`ParseRetryAfter("soon") accepted`)
	}
}
