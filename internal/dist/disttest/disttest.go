// Package disttest serves a fake Gantry release over HTTP for tests of the
// setup step: one archive per binary for this machine's platform, each
// holding a small executable that prints its name and the release version.
package disttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/internal/dist"
)

// Release is the fake release and the server handing out its archives.
type Release struct {
	Version string
	Sums    []dist.Sum // the archives' SHA256 (what a release commit embeds)
	Server  *httptest.Server

	mu      sync.Mutex
	served  map[string][]byte
	fetched map[string]int
}

// Start builds the archives of binaries (gantry-notify, gantry …) for
// version and serves them under /download/<version>/.
func Start(t testing.TB, version string, binaries ...string) *Release {
	t.Helper()
	r := &Release{Version: version, served: map[string][]byte{}, fetched: map[string]int{}}
	for _, bin := range binaries {
		name := r.Archive(bin)
		b := Archive(t, bin, fmt.Sprintf("#!/bin/sh\necho %s %s\n", bin, version))
		r.Sums = append(r.Sums, dist.Sum{SHA256: fmt.Sprintf("%x", sha256.Sum256(b)), Name: name})
		r.served[name] = b
	}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name := strings.TrimPrefix(req.URL.Path, "/download/"+version+"/")
		r.mu.Lock()
		b, ok := r.served[name]
		r.fetched[name]++
		r.mu.Unlock()
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(r.Server.Close)
	return r
}

// Archive is the asset name of binary for this machine's platform.
func (r *Release) Archive(binary string) string {
	return dist.ArchiveName(binary, r.Version, runtime.GOOS, runtime.GOARCH)
}

// URL is the base URL of the release's assets.
func (r *Release) URL() string { return r.Server.URL + "/download/" + r.Version }

// Serve replaces what the server hands out for an asset (e.g. a tampered
// archive) without changing the embedded sums.
func (r *Release) Serve(name string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.served[name] = b
}

// Fetched counts the requests for an asset.
func (r *Release) Fetched(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetched[name]
}

// SumsText is the sha256sum file of the archives.
func (r *Release) SumsText() string {
	var b strings.Builder
	for _, s := range r.Sums {
		fmt.Fprintf(&b, "%s  %s\n", s.SHA256, s.Name)
	}
	return b.String()
}

// Archive packs one executable file into a .tar.gz.
func Archive(t testing.TB, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// RunnerOS and RunnerArch are this machine as runner.os / runner.arch.
func RunnerOS() string {
	if runtime.GOOS == "darwin" {
		return "macOS"
	}
	return "Linux"
}

// RunnerArch is this machine's runner.arch.
func RunnerArch() string {
	if runtime.GOARCH == "arm64" {
		return "ARM64"
	}
	return "X64"
}
