package registry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/registry"
)

// subjects pushes a two-platform image to a fresh registry and returns the
// index and platform digests.
func subjects(t *testing.T, opts ocitest.RegistryOptions) []name.Digest {
	t.Helper()
	reg, err := ocitest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	tagged, idx, err := ocitest.PushBase(t.Context(), reg.Host, "acme/app:1", []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(tagged)
	if err != nil {
		t.Fatal(err)
	}
	repo := ref.Context()
	d, _ := idx.Digest()
	out := []name.Digest{repo.Digest(d.String())}
	im, _ := idx.IndexManifest()
	for _, m := range im.Manifests {
		out = append(out, repo.Digest(m.Digest.String()))
	}
	return out
}

// referrer uploads the blobs of a small artifact about subj and returns
// its manifest.
func referrer(t *testing.T, subj name.Digest, id string) []byte {
	t.Helper()
	desc, err := remote.Head(subj)
	if err != nil {
		t.Fatal(err)
	}
	config := static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json")
	layer := static.NewLayer([]byte(id), "text/plain")
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(subj.Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	cd, _ := config.Digest()
	ld, _ := layer.Digest()
	raw, err := json.Marshal(v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: "application/vnd.gantry.test+json",
		Config:      v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: cd, Size: 2},
		Layers:      []v1.Descriptor{{MediaType: "text/plain", Digest: ld, Size: int64(len(id))}},
		Subject:     &v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size},
		Annotations: map[string]string{"org.example.id": id},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// listed is what any registry client sees: the referrers of subj.
func listed(t *testing.T, subj name.Digest) map[v1.Hash]bool {
	t.Helper()
	idx, err := remote.Referrers(subj)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	out := map[v1.Hash]bool{}
	for _, m := range im.Manifests {
		out[m.Digest] = true
	}
	return out
}

// attachAll attaches n referrers to each subject from concurrent
// goroutines and returns their digests per subject.
func attachAll(t *testing.T, att *registry.Attacher, subjs []name.Digest, n int) (map[string][]v1.Hash, error) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := map[string][]v1.Hash{}
	var errs []error
	for _, s := range subjs {
		for i := range n {
			m := referrer(t, s, fmt.Sprintf("%s #%d", s.DigestStr(), i))
			wg.Go(func() {
				h, err := att.Attach(t.Context(), s, m)
				mu.Lock()
				defer mu.Unlock()
				got[s.String()] = append(got[s.String()], h)
				if err != nil {
					errs = append(errs, err)
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		return got, errs[0]
	}
	return got, nil
}

// TestAttachConcurrently attaches six referrers to each of three subjects
// at once, with and without the referrers API: every one is listed, and
// since one run serializes its writes per subject, none had to be re-added.
func TestAttachConcurrently(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ocitest.RegistryOptions
		via  string
	}{
		{"referrers API", ocitest.RegistryOptions{}, "referrers API"},
		{"fallback tag", ocitest.RegistryOptions{NoReferrers: true}, "fallback tag sha256-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subjs := subjects(t, tc.opts)
			att := registry.Conn{}.NewAttacher(nil)
			got, err := attachAll(t, att, subjs, 6)
			if err != nil {
				t.Fatal(err)
			}
			if err := att.Confirm(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, s := range subjs {
				have := listed(t, s)
				for _, h := range got[s.String()] {
					if !have[h] {
						t.Errorf("%s is not among the referrers of %s", h, s.DigestStr())
					}
				}
				if len(have) != 6 {
					t.Errorf("%d referrers of %s, want 6", len(have), s.DigestStr())
				}
			}
			for _, a := range att.Subjects() {
				if !strings.HasPrefix(a.Via, tc.via) || a.Readded != 0 || len(a.Manifests) != 6 || len(a.Missing()) != 0 {
					t.Errorf("attached %+v: want 6 found via %s, none re-added", a, tc.via)
				}
			}
		})
	}
}

// staleWriter stands for another job attaching to the same digests: right
// after some of our writes of a fallback tag, it writes the index it read
// before ours (so our new entry is gone), as a last writer does.
type staleWriter struct {
	next   http.Handler
	mu     sync.Mutex
	prev   map[string][]byte // path → the index before the last write
	budget int
	stale  int
}

func (s *staleWriter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !ocitest.FallbackTag(http.MethodPut, "")(r) {
		s.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.next.ServeHTTP(w, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.prev[r.URL.Path]
	s.prev[r.URL.Path] = body
	if !ok || s.budget == 0 {
		return
	}
	s.budget--
	s.stale++
	req := httptest.NewRequest(http.MethodPut, r.URL.Path, bytes.NewReader(prev))
	req.Header.Set("Content-Type", string(types.OCIImageIndex))
	s.next.ServeHTTP(httptest.NewRecorder(), req)
	s.prev[r.URL.Path] = prev
}

// TestAttachReaddsWhatAnotherWriterDropped: another writer's stale index
// overwrites ours four times; every dropped entry is found missing on the
// read-back and written again, and the report counts them.
func TestAttachReaddsWhatAnotherWriterDropped(t *testing.T) {
	sw := &staleWriter{prev: map[string][]byte{}, budget: 4}
	subjs := subjects(t, ocitest.RegistryOptions{NoReferrers: true, Wrap: func(h http.Handler) http.Handler { sw.next = h; return sw }})
	att := registry.Conn{}.NewAttacher(nil)
	att.Interval = time.Millisecond
	got, err := attachAll(t, att, subjs[:2], 5)
	if err != nil {
		t.Fatal(err)
	}
	if sw.stale != 4 {
		t.Fatalf("the other writer overwrote the index %d times, want 4", sw.stale)
	}
	readded := 0
	for _, a := range att.Subjects() {
		readded += a.Readded
		if len(a.Missing()) != 0 {
			t.Errorf("%s: missing %v", a.Subject, a.Missing())
		}
	}
	if readded != 4 {
		t.Errorf("%d entries re-added, want the 4 the other writer dropped", readded)
	}
	for _, s := range subjs[:2] {
		have := listed(t, s)
		for _, h := range got[s.String()] {
			if !have[h] {
				t.Errorf("%s is not among the referrers of %s", h, s.DigestStr())
			}
		}
	}
}

// TestConfirmCatchesALateStaleWrite: a stale index written after the
// last attachment's read-back is caught by Confirm and repaired.
func TestConfirmCatchesALateStaleWrite(t *testing.T) {
	subjs := subjects(t, ocitest.RegistryOptions{NoReferrers: true})
	s := subjs[0]
	att := registry.Conn{}.NewAttacher(nil)
	att.Settle = 10 * time.Millisecond
	first, err := att.Attach(t.Context(), s, referrer(t, s, "first"))
	if err != nil {
		t.Fatal(err)
	}
	tag := s.Context().Tag(registry.FallbackTag(s))
	before, err := remote.Get(tag)
	if err != nil {
		t.Fatal(err)
	}
	second, err := att.Attach(t.Context(), s, referrer(t, s, "second"))
	if err != nil {
		t.Fatal(err)
	}
	// Another job's write of the index it read before "second" landed.
	if err := remote.Put(tag, before); err != nil {
		t.Fatal(err)
	}
	if have := listed(t, s); !have[first] || have[second] {
		t.Fatalf("the stale write did not drop the second referrer: %v", have)
	}
	if err := att.Confirm(t.Context()); err != nil {
		t.Fatal(err)
	}
	if have := listed(t, s); !have[first] || !have[second] {
		t.Errorf("after Confirm the referrers are %v, want %s and %s", have, first, second)
	}
	if a := att.Subjects()[0]; a.Readded != 1 {
		t.Errorf("re-added %d, want 1", a.Readded)
	}
}

// TestAttachFailsWhenTheIndexCannotBeWritten: every write of the fallback
// tag answers 503 (before or after the registry stored it); the first
// case ends in an error that names what is missing and where, never in a
// silent success; the second ends complete.
func TestAttachFailsWhenTheIndexCannotBeWritten(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after bool
	}{
		{"refused", false},
		{"stored, then 503", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fault := &ocitest.Fault{Match: ocitest.FallbackTag(http.MethodPut, ""), Status: http.StatusServiceUnavailable, After: tc.after}
			subjs := subjects(t, ocitest.RegistryOptions{NoReferrers: true, Wrap: fault.Wrap})
			s := subjs[1]
			att := registry.Conn{Backoff: remote.Backoff{Duration: time.Millisecond, Steps: 1}}.NewAttacher(nil)
			att.Tries, att.Interval = 3, time.Millisecond
			h, err := att.Attach(t.Context(), s, referrer(t, s, "x"))
			a := att.Subjects()[0]
			if tc.after {
				// The registry has the index; the read-back sees it.
				if err != nil || !listed(t, s)[h] || len(a.Missing()) != 0 {
					t.Errorf("err %v, attached %+v: want the stored entry found", err, a)
				}
				return
			}
			if err == nil {
				t.Fatal("attached, with every write of the index refused")
			}
			for _, want := range []string{"after 3 tries", "injected fault", registry.FallbackTag(s), h.String()} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
			if fault.Failed() != 3 || len(a.Missing()) != 1 || a.Missing()[0] != h || listed(t, s)[h] {
				t.Errorf("%d writes refused, attached %+v: want 3 and %s missing", fault.Failed(), a, h)
			}
		})
	}
}
