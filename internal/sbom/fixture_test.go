package sbom_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// The test image has two platforms that differ in content, as a real
// multi-arch image built from different bases would:
//
//	linux/amd64: an Alpine root (apk database with three packages)
//	linux/arm64: a Debian root (dpkg status with two packages)
//
// and both carry the sample app (testdata/app) cross-compiled for their
// architecture, whose Go build info lists its modules. The index also holds
// a buildx-style unknown/unknown attestation manifest, which is no platform.

const apkInstalled = `C:Q1w1ZgSgnLmkW0ue4VXfDzdGuEsck=
P:musl
V:1.2.5-r10
A:x86_64
S:408790
I:1011712
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1744209046
c:1cd1b6ec77b6c8e6ad8ba2a4d4a6e3b0bb2b20b2
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1hHaRy7/RKrgSEyW0aW9nnOgHxkI=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1b1G6ZLdb0Z6yr0/fIKzbxtpqC7o=
P:busybox
V:1.37.0-r19
A:x86_64
S:510546
I:946176
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1747316340
c:4bd3d89d7cd6d5ec5c4c0d39a6d3a8a5bb1cd8d4
D:so:libc.musl-x86_64.so.1
F:bin
R:busybox
a:0:0:755
Z:Q1oAdo9DI4wSLjS9Mjwuqk7f7qT5E=

C:Q1Mlo2oDzTLd1VzlhSVOjJq9Nm1w8=
P:ca-certificates-bundle
V:20250619-r0
A:x86_64
S:128421
I:233472
T:Pre generated bundle of Mozilla certificates
U:https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/
L:MPL-2.0 AND MIT
o:ca-certificates
m:Natanael Copa <ncopa@alpinelinux.org>
t:1750339296
c:8e9c5a6e0e7bcd5b2c4b6a2c2e4b1b4a0e4c7f0e
F:etc
F:etc/ssl
F:etc/ssl/certs
R:ca-certificates.crt
a:0:0:644
Z:Q1W3DX5CDx5nW3KCDpaI0eRVwJ0m0=

`

const dpkgStatus = `Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: arm64
Multi-Arch: foreign
Version: 12.4+deb12u11
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Conffiles:
 /etc/debian_version 8f1d6c6ab0d3c4f7c0c42b1e4f2a1f6e
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system.
Homepage: https://tracker.debian.org/pkg/base-files

Package: tzdata
Status: install ok installed
Priority: required
Section: localization
Installed-Size: 2418
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: all
Multi-Arch: foreign
Version: 2025b-0+deb12u1
Provides: tzdata-bookworm
Depends: debconf (>= 0.5) | debconf-2.0
Description: time zone and daylight-saving time data
 This package contains data required for the implementation of
 standard local time for many representative locations around the globe.
Homepage: https://www.iana.org/time-zones

`

// expected are name@version pairs each platform's SBOM must hold (the Go
// modules come from testdata/app/go.mod) and pairs it must not.
var expected = map[string]struct{ has, hasNot []string }{
	"linux/amd64": {
		has: []string{
			"musl@1.2.5-r10", "busybox@1.37.0-r19", "ca-certificates-bundle@20250619-r0",
			"github.com/prometheus/client_golang@v1.25.0", "github.com/prometheus/common@v0.72.0",
		},
		hasNot: []string{"base-files@12.4+deb12u11", "tzdata@2025b-0+deb12u1"},
	},
	"linux/arm64": {
		has: []string{
			"base-files@12.4+deb12u11", "tzdata@2025b-0+deb12u1",
			"github.com/prometheus/client_golang@v1.25.0", "github.com/prometheus/common@v0.72.0",
		},
		hasNot: []string{"musl@1.2.5-r10", "busybox@1.37.0-r19"},
	},
}

// appBinaries cross-compiles testdata/app once per test binary and returns
// arch -> path. The build cache makes this a second or two after the
// first run.
var appBinaries = sync.OnceValues(func() (map[string]string, error) {
	root, err := testproc.RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gantry-sbom-app-")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		bin := filepath.Join(dir, "server-"+arch)
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, ".")
		cmd.Dir = filepath.Join(root, "testdata", "app")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building testdata/app for %s: %v\n%s", arch, err, b)
		}
		out[arch] = bin
	}
	return out, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bins, err := appBinaries(); err == nil {
		os.RemoveAll(filepath.Dir(bins["amd64"]))
	}
	if notifyBuilt.Load() {
		if bin, err := notifyBinary(); err == nil {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

// testImage is the fixture pushed to a registry.
type testImage struct {
	reg       *ocitest.Registry
	repo      string            // host/acme/app
	tag       string            // repo:1.0
	index     string            // repo@sha256:... of the index
	platforms map[string]string // platform -> manifest digest
	images    map[string]v1.Image
	blobGets  *blobCounter
}

// blobCounter counts GETs of each blob, to prove layers are pulled once,
// and answers 404 for the blobs in deny, to break one platform.
type blobCounter struct {
	mu   sync.Mutex
	n    map[string]int
	deny map[string]bool
	// requests counts every request, to see a registry was never asked.
	requests atomic.Int64
}

func (c *blobCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			c.mu.Lock()
			c.n[d]++
			denied := c.deny[d]
			c.mu.Unlock()
			if denied {
				http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (c *blobCounter) get(digest string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[digest]
}

func (c *blobCounter) denyBlob(digest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deny[digest] = true
}

func (c *blobCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = map[string]int{}
}

// pushTestImage starts a registry and pushes the two-platform test image
// (index tagged 1.0).
func pushTestImage(t testing.TB) testImage {
	t.Helper()
	bins, err := appBinaries()
	if err != nil {
		t.Fatal(err)
	}
	counter := &blobCounter{n: map[string]int{}, deny: map[string]bool{}}
	reg, err := ocitest.StartRegistry(counter.wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })

	ti := testImage{reg: reg, repo: reg.Host + "/acme/app", platforms: map[string]string{}, images: map[string]v1.Image{}, blobGets: counter}
	roots := map[string]map[string]string{
		"amd64": {
			"etc/os-release":          "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.22.1\nPRETTY_NAME=\"Alpine Linux v3.22\"\n",
			"lib/apk/db/installed":    apkInstalled,
			"etc/apk/world":           "busybox\nca-certificates-bundle\n",
			"lib/ld-musl-x86_64.so.1": "not really musl",
		},
		"arm64": {
			"etc/os-release":         "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
			"etc/debian_version":     "12.11\n",
			"var/lib/dpkg/status":    dpkgStatus,
			"usr/share/zoneinfo/UTC": "TZif2",
		},
	}
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		server, err := os.ReadFile(bins[arch])
		if err != nil {
			t.Fatal(err)
		}
		img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		for _, files := range []map[string][]byte{stringFiles(roots[arch]), {"app/server": server}} {
			layer := tarLayer(t, files)
			if img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer}); err != nil {
				t.Fatal(err)
			}
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		cf.Config.Entrypoint = []string{"/app/server"}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		ti.platforms["linux/"+arch] = d.String()
		ti.images["linux/"+arch] = img
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	att, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
		mutate.Addendum{Layer: tarLayer(t, map[string][]byte{"provenance.json": []byte("{}")}), MediaType: types.OCILayer})
	if err != nil {
		t.Fatal(err)
	}
	adds = append(adds, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}})
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)

	tag, err := name.NewTag(ti.repo + ":1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	ti.tag, ti.index = tag.String(), ti.repo+"@"+d.String()
	counter.reset()
	return ti
}

// layerDigests lists the layer blobs of a platform.
func (ti testImage) layerDigests(t testing.TB, platform string) []string {
	t.Helper()
	layers, err := ti.images[platform].Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range layers {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	return out
}

func stringFiles(m map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

func tarLayer(t testing.TB, files map[string][]byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, n := range slices.Sorted(maps.Keys(files)) {
		parts := strings.Split(n, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// spdxDoc and cdxDoc are the parts of the two formats the tests read.
type spdxDoc struct {
	SPDXVersion   string             `json:"spdxVersion"`
	Name          string             `json:"name"`
	Namespace     string             `json:"documentNamespace"`
	Relationships []spdxRelationship `json:"relationships"`
	Packages      []spdxPackage      `json:"packages"`
}

type spdxPackage struct {
	SPDXID      string `json:"SPDXID"`
	Name        string `json:"name"`
	VersionInfo string `json:"versionInfo"`
}

type spdxRelationship struct {
	From string `json:"spdxElementId"`
	Type string `json:"relationshipType"`
	To   string `json:"relatedSpdxElement"`
}

type cdxDoc struct {
	BOMFormat   string `json:"bomFormat"`
	SpecVersion string `json:"specVersion"`
	Metadata    struct {
		Component struct {
			Type    string `json:"type"`
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"component"`
	} `json:"metadata"`
	Components []struct {
		Type    string `json:"type"`
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"components"`
}

func readSPDX(t testing.TB, path string) spdxDoc {
	t.Helper()
	var d spdxDoc
	readJSON(t, path, &d)
	if !strings.HasPrefix(d.SPDXVersion, "SPDX-2.3") {
		t.Errorf("%s: spdxVersion %q, want SPDX-2.3", path, d.SPDXVersion)
	}
	return d
}

func readCycloneDX(t testing.TB, path string) cdxDoc {
	t.Helper()
	var d cdxDoc
	readJSON(t, path, &d)
	if d.BOMFormat != "CycloneDX" || d.SpecVersion == "" {
		t.Errorf("%s: bomFormat %q specVersion %q, want a CycloneDX document", path, d.BOMFormat, d.SpecVersion)
	}
	return d
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s does not parse as JSON: %v", path, err)
	}
}

// packageSet is the name@version set of an SBOM's packages: SPDX packages
// other than the document's subject, CycloneDX components other than the
// operating system.
func (d spdxDoc) packageSet() map[string]bool {
	out := map[string]bool{}
	for _, p := range d.Packages {
		if d.describes(p.SPDXID) {
			continue
		}
		out[p.Name+"@"+p.VersionInfo] = true
	}
	return out
}

// describes reports whether the document DESCRIBES the element: its
// subject.
func (d spdxDoc) describes(id string) bool {
	return slices.ContainsFunc(d.Relationships, func(r spdxRelationship) bool {
		return r.From == "SPDXRef-DOCUMENT" && r.Type == "DESCRIBES" && r.To == id
	})
}

func (d cdxDoc) packageSet() map[string]bool {
	out := map[string]bool{}
	for _, c := range d.Components {
		if c.Type == "operating-system" || c.Type == "file" {
			continue
		}
		out[c.Name+"@"+c.Version] = true
	}
	return out
}
