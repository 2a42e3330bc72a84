package ocitest

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Fault makes a registry fail or hold some requests, for tests of what a
// client does when a write is refused or lost. Pass its Wrap to Start (or
// StartRegistry). It is safe for concurrent use.
type Fault struct {
	// Match picks the requests the fault applies to.
	Match func(*http.Request) bool
	// Status answers matching requests with this status (e.g. 503) and a
	// distribution error body; zero passes them through (with Delay).
	Status int
	// Times is how many matching requests fail; zero means every one.
	Times int
	// After serves the request first and fails only the answer: the write
	// happened, the client is told it did not.
	After bool
	// Delay holds every matching request this long before serving it,
	// which widens the gap between a client's read of an index and its
	// write back.
	Delay time.Duration

	mu      sync.Mutex
	matched int
	failed  int
}

// Wrap is the handler wrapper to give Start.
func (f *Fault) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.Match == nil || !f.Match(r) {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		f.matched++
		fail := f.Status != 0 && (f.Times == 0 || f.failed < f.Times)
		if fail {
			f.failed++
		}
		f.mu.Unlock()
		if f.Delay > 0 {
			time.Sleep(f.Delay)
		}
		if !fail {
			next.ServeHTTP(w, r)
			return
		}
		if f.After {
			next.ServeHTTP(discard{h: http.Header{}}, r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected fault: %s %s"}]}`, r.Method, r.URL.Path)
	})
}

// Failed is how many requests the fault failed so far.
func (f *Fault) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// Matched is how many requests matched so far.
func (f *Fault) Matched() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.matched
}

// fallbackTagPath is /v2/<repo>/manifests/sha256-<hex>: the referrers
// fallback tag of the OCI distribution spec.
var fallbackTagPath = regexp.MustCompile(`^/v2/.+/manifests/(sha256-[0-9a-f]{64})$`)

// FallbackTag matches requests with method to the referrers fallback tag
// of digest (sha256:…), or of any digest when digest is "".
func FallbackTag(method, digest string) func(*http.Request) bool {
	want := strings.Replace(digest, ":", "-", 1)
	return func(r *http.Request) bool {
		m := fallbackTagPath.FindStringSubmatch(r.URL.Path)
		return r.Method == method && m != nil && (want == "" || m[1] == want)
	}
}

// discard is a ResponseWriter that drops what the registry answers.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
