// Package localregistry is the OCI registry `gantry run` starts on this
// machine when no registry is configured: go-containerregistry's registry
// (with the referrers API), its blobs in a directory and its manifests
// journalled beside them, so images pushed by one run are there for the
// next. It listens on the loopback interface only, over plain HTTP.
package localregistry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry is a running local registry.
type Registry struct {
	Host string // 127.0.0.1:port
	Dir  string

	srv     *http.Server
	handler http.Handler
	mu      sync.Mutex
	seq     int
}

// entry is one manifest as journalled: what was PUT where.
type entry struct {
	Seq         int    `json:"seq"`
	Repo        string `json:"repo"`
	Ref         string `json:"ref"`
	ContentType string `json:"contentType"`
	Body        []byte `json:"body"`
}

var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)

// Start serves a registry whose content lives in dir (made if missing) on
// addr ("" is 127.0.0.1 on a free port), with what earlier runs pushed
// there.
func Start(dir, addr string) (*Registry, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	for _, sub := range []string{"blobs", "manifests"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("local registry: %w", err)
		}
	}
	r := &Registry{Dir: dir}
	r.handler = registry.New(
		registry.WithBlobHandler(registry.NewDiskBlobHandler(filepath.Join(dir, "blobs"))),
		registry.WithReferrersSupport(true),
		registry.Logger(log.New(io.Discard, "", 0)),
	)
	if err := r.replay(); err != nil {
		return nil, fmt.Errorf("local registry in %s: %w", dir, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("local registry: %w", err)
	}
	r.Host = ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	go r.srv.Serve(ln)
	return r, nil
}

// Close stops serving; the content stays in Dir.
func (r *Registry) Close() error { return r.srv.Close() }

// serve passes every request to the registry and journals the manifests
// it accepted (PUT) or deleted.
func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	m := manifestPath.FindStringSubmatch(req.URL.Path)
	if m == nil || (req.Method != http.MethodPut && req.Method != http.MethodDelete) {
		r.handler.ServeHTTP(w, req)
		return
	}
	r.mu.Lock() // one manifest change at a time, journal in step
	defer r.mu.Unlock()
	var body []byte
	if req.Method == http.MethodPut {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	rec := &statusWriter{ResponseWriter: w}
	r.handler.ServeHTTP(rec, req)
	if rec.status >= 300 {
		return
	}
	repo, ref := m[1], m[2]
	var err error
	if req.Method == http.MethodPut {
		r.seq++
		err = r.write(entry{Seq: r.seq, Repo: repo, Ref: ref, ContentType: req.Header.Get("Content-Type"), Body: body})
	} else {
		err = os.Remove(r.file(repo, ref))
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	}
	if err != nil {
		// The registry has it; only the next run would miss it.
		log.Printf("local registry: journalling %s:%s: %v", repo, ref, err)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// file is where the manifest PUT to repo:ref is journalled (a later PUT
// to the same place replaces it).
func (r *Registry) file(repo, ref string) string {
	sum := sha256.Sum256([]byte(repo + "\x00" + ref))
	return filepath.Join(r.Dir, "manifests", hex.EncodeToString(sum[:16])+".json")
}

func (r *Registry) write(e entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	dst := r.file(e.Repo, e.Ref)
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// replay puts the journalled manifests back: images first, then the
// indexes (which name them), in the order they were pushed.
func (r *Registry) replay() error {
	files, err := filepath.Glob(filepath.Join(r.Dir, "manifests", "*.json"))
	if err != nil {
		return err
	}
	var entries []entry
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("%s: %w (remove the file to drop that manifest)", f, err)
		}
		entries = append(entries, e)
		r.seq = max(r.seq, e.Seq)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Seq < entries[j].Seq })
	// An index needs its manifests first; nested indexes need more than
	// one pass.
	for pending := entries; len(pending) > 0; {
		var next []entry
		var lastErr error
		for _, e := range pending {
			if types.MediaType(e.ContentType).IsIndex() && len(next) < len(pending) && !r.childrenPresent(e) {
				next = append(next, e)
				continue
			}
			if err := r.put(e); err != nil {
				next, lastErr = append(next, e), err
			}
		}
		if len(next) == len(pending) {
			return fmt.Errorf("manifests that cannot be restored (%d, e.g. %s:%s: %v)", len(next), next[0].Repo, next[0].Ref, lastErr)
		}
		pending = next
	}
	return nil
}

func (r *Registry) childrenPresent(e entry) bool {
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if json.Unmarshal(e.Body, &idx) != nil {
		return true // let the registry say what is wrong
	}
	for _, m := range idx.Manifests {
		rec := r.local(http.MethodHead, "/v2/"+e.Repo+"/manifests/"+m.Digest, "", nil)
		if rec.code != http.StatusOK {
			return false
		}
	}
	return true
}

func (r *Registry) put(e entry) error {
	rec := r.local(http.MethodPut, "/v2/"+e.Repo+"/manifests/"+e.Ref, e.ContentType, e.Body)
	if rec.code >= 300 {
		return fmt.Errorf("%s", strings.TrimSpace(rec.body.String()))
	}
	return nil
}

// local sends one request to the registry in this process.
func (r *Registry) local(method, path, contentType string, body []byte) *recorder {
	req, _ := http.NewRequest(method, "http://local"+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := &recorder{header: http.Header{}}
	r.handler.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return rec
}

// recorder is the http.ResponseWriter of a request served in process.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
