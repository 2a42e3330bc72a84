package image_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/gantry-ci/gantry/internal/image"
	"github.com/gantry-ci/gantry/internal/ocitest"
)

// faulty sits in front of the registry like a flaky proxy. When fail says
// so, it answers with a 500, a 429 with Retry-After, or drops the
// connection without a response.
type faulty struct {
	mu      sync.Mutex
	enabled bool
	n       int
	fail    func(n int, req *http.Request) string // "", "500", "429", "drop"
	log     []string
	at      map[string]time.Time // first 429 time per request, for Retry-After
	retried map[string]time.Duration
}

func (f *faulty) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f.mu.Lock()
		fault := ""
		key := req.Method + " " + req.URL.Path
		if t, ok := f.at[key]; ok {
			f.retried[key] = time.Since(t)
			delete(f.at, key)
		}
		if f.enabled {
			f.n++
			fault = f.fail(f.n, req)
			if fault != "" {
				f.log = append(f.log, fault+" "+key)
			}
			if fault == "429" {
				f.at[key] = time.Now()
			}
		}
		f.mu.Unlock()
		switch fault {
		case "500":
			http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected"}]}`, http.StatusInternalServerError)
		case "429":
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}`, http.StatusTooManyRequests)
		case "drop":
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			next.ServeHTTP(w, req)
		}
	})
}

func newFaulty(fail func(int, *http.Request) string) *faulty {
	return &faulty{fail: fail, at: map[string]time.Time{}, retried: map[string]time.Duration{}}
}

func TestPushSurvivesTransientFaults(t *testing.T) {
	t.Parallel()
	kinds := []string{"500", "drop", "429"}
	f := newFaulty(func(n int, req *http.Request) string {
		// One request in seven fails: harsh, but each blob upload (HEAD,
		// POST, PATCH, PUT) still gets through within its retries.
		if n%7 != 0 {
			return ""
		}
		return kinds[(n/7)%len(kinds)]
	})
	reg := startRegistry(t, f.wrap)
	base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	f.mu.Lock()
	f.enabled = true
	f.mu.Unlock()

	in := baseInputs(t, reg.Host, base, appContext(t))
	// One request at a time: every blob upload starts with the same
	// POST .../blobs/uploads/, so with parallel uploads another upload's
	// first POST would pass for the retry of a 429'd one.
	in.Jobs = 1
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("push through a flaky proxy failed: %v\nfaults: %v", err, f.log)
	}
	f.mu.Lock()
	f.enabled = false
	injected := map[string]int{}
	for _, l := range f.log {
		injected[strings.Fields(l)[0]]++
	}
	var slow []string
	for k, d := range f.retried {
		if d < 900*time.Millisecond {
			slow = append(slow, fmt.Sprintf("%s retried after %v", k, d))
		}
	}
	f.mu.Unlock()
	for _, k := range kinds {
		if injected[k] == 0 {
			t.Errorf("no %s fault was injected (%v): the test did not exercise it", k, injected)
		}
	}
	for _, s := range slow {
		t.Errorf("Retry-After: 1 not honoured: %s", s)
	}

	ref, _ := name.ParseReference(out.Image)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("index after faults is invalid: %v", err)
	}
	for _, tg := range out.Tags {
		r, _ := name.ParseReference(tg)
		if d, err := remote.Head(r); err != nil || d.Digest.String() != out.Digest {
			t.Errorf("tag %s: %v", tg, err)
		}
	}
}

func TestFailedPushLeavesNoIndexOrTags(t *testing.T) {
	t.Parallel()
	var arm string
	f := newFaulty(func(_ int, req *http.Request) string {
		if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/manifests/"+arm) {
			return "500"
		}
		return ""
	})
	reg := startRegistry(t, f.wrap)
	base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	ctxDir := appContext(t)

	// The build is reproducible, so a dry run names every digest the real
	// push will use.
	dry := baseInputs(t, reg.Host, base, ctxDir)
	dry.Push, dry.OCILayout = false, filepath.Join(t.TempDir(), "layout")
	plan, err := image.Run(t.Context(), dry)
	if err != nil {
		t.Fatal(err)
	}
	arm = plan.PlatformDigests["linux/arm64"]
	f.mu.Lock()
	f.enabled = true
	f.mu.Unlock()

	in := baseInputs(t, reg.Host, base, ctxDir)
	in.Backoff = remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 3}
	_, err = image.Run(t.Context(), in)
	if err == nil {
		t.Fatal("push succeeded although the arm64 manifest could not be written")
	}
	if !strings.Contains(err.Error(), "no tag was moved") {
		t.Errorf("error %q does not tell the user that no tag moved", err)
	}
	f.mu.Lock()
	if len(f.log) < 3 {
		t.Errorf("the arm64 manifest PUT was tried %d time(s), want it retried", len(f.log))
	}
	f.mu.Unlock()

	repo, _ := name.NewRepository(reg.Host + "/acme/prompt-builder")
	if tags, err := remote.List(repo); err == nil && len(tags) > 0 {
		t.Errorf("failed push left tags %v", tags)
	}
	if _, err := remote.Head(repo.Digest(plan.Digest)); err == nil {
		t.Errorf("index %s was pushed although one of its manifests was not", plan.Digest)
	}
	if _, err := remote.Head(repo.Digest(arm)); err == nil {
		t.Errorf("the arm64 manifest %s is in the registry although every PUT failed", arm)
	}
}
