package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// Attacher attaches referrer manifests (signatures, attestations) to
// subject digests so that none is lost, on registries with and without the
// OCI 1.1 referrers API. It is safe for concurrent use; make one per run.
//
// A registry with the referrers API keeps each subject's list itself. On
// one without it, clients keep the list in an image index under the
// subject's fallback tag, sha256-<hex>: each attaching client reads that
// index, adds its manifest and writes the index back, so two clients that
// read the same index drop each other's entry (the last write wins). The
// Attacher therefore
//   - attaches to one subject at a time within the run;
//   - writes without go-containerregistry's own retries, which would send
//     an index read before the retry's wait (a stale write that drops what
//     others added meanwhile); its own retries read afresh;
//   - reads the subject's referrers back after every write and checks that
//     every manifest the run attached to it so far is listed; a missing one
//     is written again, which adds it back, with bounded, jittered retries
//     (two jobs attaching to one digest at once keep losing and re-adding
//     entries until their writes no longer collide);
//   - with Confirm, reads every subject back once more at the end.
type Attacher struct {
	// Tries bounds the writes and read-backs of one attachment; zero
	// means 10.
	Tries int
	// Interval is the first wait between tries, doubled each time
	// (randomized by half, at most 5s); zero means 250ms.
	Interval time.Duration
	// Settle is how long Confirm waits before its read-back when a
	// fallback tag is in use, so that another job's write of an index it
	// read before ours has landed and is seen; zero means 2s.
	Settle time.Duration

	conn Conn
	log  ghaction.Logger

	mu       sync.Mutex
	subjects map[string]*subject
	order    []string
	api      map[string]bool // repository → it serves the referrers API
}

// NewAttacher returns an Attacher that reaches the registry with c and
// logs re-added entries to log (nil discards).
func (c Conn) NewAttacher(log ghaction.Logger) *Attacher {
	if log == nil {
		log = ghaction.Discard{}
	}
	return &Attacher{conn: c, log: log, subjects: map[string]*subject{}, api: map[string]bool{}}
}

// Attached is what a run attached to one subject and what the last
// read-back of its referrers found.
type Attached struct {
	Subject name.Digest
	// Via says where the referrers were read: "referrers API" or
	// "fallback tag sha256-<hex>".
	Via string
	// Manifests are the referrer manifests attached, in order.
	Manifests []Referrer
	// Readded counts manifests a read-back found missing after a write
	// had succeeded (lost to another writer) and that were written again.
	Readded int
}

// Referrer is one attached referrer manifest.
type Referrer struct {
	Digest v1.Hash
	// Found says whether the last read-back listed it.
	Found bool
}

// Missing lists the attached manifests the last read-back did not find.
func (a Attached) Missing() []v1.Hash {
	var out []v1.Hash
	for _, r := range a.Manifests {
		if !r.Found {
			out = append(out, r.Digest)
		}
	}
	return out
}

// subject is the run's state for one subject; mu serializes attaching to it.
type subject struct {
	mu      sync.Mutex
	digest  name.Digest
	entries []*entry
	via     string
	readded int
}

// entry is one referrer manifest, as pushed.
type entry struct {
	raw    []byte
	mt     types.MediaType
	digest v1.Hash
	found  bool
}

func (e *entry) RawManifest() ([]byte, error)        { return e.raw, nil }
func (e *entry) MediaType() (types.MediaType, error) { return e.mt, nil }

// LostError says which attached manifests a subject's referrers do not
// list.
type LostError struct {
	Subject  name.Digest
	Via      string
	Missing  []v1.Hash
	Attached int
}

func (e *LostError) Error() string {
	ds := make([]string, len(e.Missing))
	for i, d := range e.Missing {
		ds[i] = d.String()
	}
	return fmt.Sprintf("the referrers of %s (read via the %s) do not list %d of the %d manifests this run attached to it: %s",
		e.Subject, e.Via, len(e.Missing), e.Attached, strings.Join(ds, ", "))
}

// Attach pushes manifest (an OCI image manifest whose subject is subject;
// its blobs must already be in the repository) by digest, and returns its
// digest once the subject's referrers list it and every manifest attached
// to subject before. The error, after the retries, names what is missing;
// the digest is returned with it.
func (a *Attacher) Attach(ctx context.Context, subj name.Digest, manifest []byte) (v1.Hash, error) {
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
		Subject   *v1.Descriptor  `json:"subject"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return v1.Hash{}, fmt.Errorf("the referrer manifest is not JSON: %w", err)
	}
	if m.Subject == nil || m.Subject.Digest.String() != subj.DigestStr() {
		return v1.Hash{}, fmt.Errorf("the referrer manifest's subject is %v, not %s", m.Subject, subj.DigestStr())
	}
	if m.MediaType == "" {
		m.MediaType = types.OCIManifestSchema1
	}
	h, _, err := v1.SHA256(bytes.NewReader(manifest))
	if err != nil {
		return v1.Hash{}, err
	}
	e := &entry{raw: manifest, mt: m.MediaType, digest: h}
	s := a.subject(subj)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, e)
	return h, a.settle(ctx, s, []*entry{e})
}

// Confirm reads every subject's referrers back once more and writes again
// what is missing (with the same retries): call it after the last Attach,
// so that a write of another job that landed after a subject's last
// read-back is caught. When a fallback tag is in use it first waits Settle.
func (a *Attacher) Confirm(ctx context.Context) error {
	subjects := a.all()
	fallback := false
	for _, s := range subjects {
		s.mu.Lock()
		fallback = fallback || strings.HasPrefix(s.via, "fallback")
		s.mu.Unlock()
	}
	if fallback {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(orDefault(a.Settle, 2*time.Second)):
		}
	}
	var errs []error
	for _, s := range subjects {
		s.mu.Lock()
		errs = append(errs, a.settle(ctx, s, nil))
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Subjects reports every subject attached to, in the order of their
// first attachment.
func (a *Attacher) Subjects() []Attached {
	var out []Attached
	for _, s := range a.all() {
		s.mu.Lock()
		at := Attached{Subject: s.digest, Via: s.via, Readded: s.readded}
		for _, e := range s.entries {
			at.Manifests = append(at.Manifests, Referrer{Digest: e.digest, Found: e.found})
		}
		s.mu.Unlock()
		out = append(out, at)
	}
	return out
}

func (a *Attacher) subject(d name.Digest) *subject {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := d.String()
	s, ok := a.subjects[k]
	if !ok {
		s = &subject{digest: d}
		a.subjects[k] = s
		a.order = append(a.order, k)
	}
	return s
}

func (a *Attacher) all() []*subject {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*subject, len(a.order))
	for i, k := range a.order {
		out[i] = a.subjects[k]
	}
	return out
}

// settle writes put, reads the subject's referrers back and writes again
// whatever of the subject's entries is missing, until all are listed or
// the tries run out. The caller holds s.mu.
func (a *Attacher) settle(ctx context.Context, s *subject, put []*entry) error {
	tries := a.Tries
	if tries <= 0 {
		tries = 10
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     orDefault(a.Interval, 250*time.Millisecond),
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         5 * time.Second,
	}
	var last error
	try := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		try++
		for _, e := range put {
			if err := a.put(ctx, s.digest, e); err != nil {
				last = fmt.Errorf("writing the referrer %s of %s: %w", e.digest, s.digest, err)
				return struct{}{}, permanent(err, last)
			}
		}
		listed, via, err := a.list(ctx, s.digest)
		if err != nil {
			last = err
			return struct{}{}, permanent(err, last)
		}
		s.via = via
		put = put[:0:0]
		for _, e := range s.entries {
			e.found = listed[e.digest]
			if !e.found {
				put = append(put, e)
			}
		}
		if len(put) == 0 {
			return struct{}{}, nil
		}
		lost := &LostError{Subject: s.digest, Via: via, Attached: len(s.entries)}
		for _, e := range put {
			lost.Missing = append(lost.Missing, e.digest)
		}
		s.readded += len(put)
		a.log.Infof("%d referrer(s) of %s missing from the %s (another writer's index overwrote them?): writing them again (try %d of %d)", len(put), s.digest.DigestStr(), via, try+1, tries)
		last = lost
		return struct{}{}, lost
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(tries)), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		return nil
	case last == nil:
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("%w (%w)", ctx.Err(), last)
	case try >= tries:
		return fmt.Errorf("after %d tries: %w", try, last)
	}
	return last
}

// put pushes one referrer manifest by digest. On a registry without the
// referrers API, go-containerregistry then reads the fallback tag's index,
// adds the manifest (unless listed) and writes the index back.
func (a *Attacher) put(ctx context.Context, subj name.Digest, e *entry) error {
	ref := subj.Context().Digest(e.digest.String())
	// No retries inside go-containerregistry: a retried index write would
	// carry an index read before the wait.
	base := a.conn.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	opts := append(a.conn.Options(ctx, subj.String()), remote.WithTransport(base), remote.WithRetryBackoff(remote.Backoff{Steps: 1}))
	return remote.Put(ref, e, opts...)
}

// list reads the subject's referrers: through the referrers API when the
// registry serves it, else from the fallback tag.
func (a *Attacher) list(ctx context.Context, subj name.Digest) (map[v1.Hash]bool, string, error) {
	opts := a.conn.Options(ctx, subj.String())
	repo := subj.Context().String()
	a.mu.Lock()
	api, known := a.api[repo]
	a.mu.Unlock()
	var idx v1.ImageIndex
	var err error
	if !known {
		// Ask the API alone first: go-containerregistry does not say
		// which one answered.
		if idx, err = remote.Referrers(subj, append(opts, remote.WithReferrersTagFallback(false))...); err == nil {
			api = true
		}
	}
	if idx == nil {
		if idx, err = remote.Referrers(subj, opts...); err != nil {
			return nil, "", fmt.Errorf("reading the referrers of %s back: %w", subj, err)
		}
	}
	if !known {
		a.mu.Lock()
		a.api[repo] = api
		a.mu.Unlock()
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", fmt.Errorf("reading the referrers of %s back: %w", subj, err)
	}
	listed := map[v1.Hash]bool{}
	for _, d := range im.Manifests {
		listed[d.Digest] = true
	}
	via := "referrers API"
	if !api {
		via = "fallback tag " + FallbackTag(subj)
	}
	return listed, via, nil
}

// FallbackTag is the tag that holds a subject's referrers on a registry
// without the referrers API: sha256-<hex>.
func FallbackTag(d name.Digest) string {
	return strings.Replace(d.DigestStr(), ":", "-", 1)
}

// permanent marks errors that no retry fixes (refused credentials, a
// manifest the registry rejects) so that they are reported at once; wrap
// is what is returned.
func permanent(err, wrap error) error {
	var te *transport.Error
	if errors.As(err, &te) && slices.Contains([]int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed}, te.StatusCode) {
		return backoff.Permanent(wrap)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return backoff.Permanent(wrap)
	}
	return wrap
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
