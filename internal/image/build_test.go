package image_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/gantry-ci/gantry/internal/image"
	"github.com/gantry-ci/gantry/internal/metadata"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/release"
)

var created = time.Date(2026, 11, 20, 13, 3, 11, 0, time.UTC)

// recorder is registry middleware that remembers requests, so tests can
// check what a push actually sent.
type recorder struct {
	// scoped makes blobs visible only in the repositories they were pushed
	// or mounted to, as in Docker Distribution, GHCR or ECR (the in-memory
	// registry shares blobs between repositories).
	scoped bool
	have   map[string]bool // repo + "@" + digest

	mu       sync.Mutex
	requests []string // "METHOD path?query -> status"
	uploaded int64    // blob body bytes received
	blobs    []string // digests of completed blob uploads
}

func (r *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		repo, digest, isBlob := blobPath(req.URL.Path)
		if r.scoped && isBlob && (req.Method == http.MethodHead || req.Method == http.MethodGet) {
			r.mu.Lock()
			ok := r.have[repo+"@"+digest]
			r.mu.Unlock()
			if !ok {
				http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
				return
			}
		}
		// go-containerregistry's registry has no cross-repository mount;
		// a scoped recorder answers mounts itself, as Distribution does.
		if from, m := req.URL.Query().Get("from"), req.URL.Query().Get("mount"); r.scoped && req.Method == http.MethodPost && from != "" && m != "" {
			up := strings.TrimPrefix(req.URL.Path[:strings.Index(req.URL.Path, "/blobs/uploads/")], "/v2/")
			r.mu.Lock()
			ok := r.have[from+"@"+m]
			if ok {
				r.have[up+"@"+m] = true
				r.requests = append(r.requests, req.Method+" "+req.URL.RequestURI()+" -> Created")
			}
			r.mu.Unlock()
			if ok {
				w.Header().Set("Location", "/v2/"+up+"/blobs/"+m)
				w.Header().Set("Docker-Content-Digest", m)
				w.WriteHeader(http.StatusCreated)
				return
			}
		}
		var n int64
		if strings.Contains(req.URL.Path, "/blobs/uploads/") && req.Body != nil {
			b, _ := io.ReadAll(req.Body)
			n = int64(len(b))
			req.Body = io.NopCloser(strings.NewReader(string(b)))
		}
		sw := &statusWriter{ResponseWriter: w, status: 200}
		next.ServeHTTP(sw, req)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.uploaded += n
		r.requests = append(r.requests, req.Method+" "+req.URL.RequestURI()+" -> "+http.StatusText(sw.status))
		if strings.Contains(req.URL.Path, "/blobs/uploads/") && sw.status == http.StatusCreated {
			if r.have == nil {
				r.have = map[string]bool{}
			}
			up := strings.TrimPrefix(req.URL.Path[:strings.Index(req.URL.Path, "/blobs/uploads/")], "/v2/")
			if req.Method == http.MethodPut {
				r.blobs = append(r.blobs, req.URL.Query().Get("digest"))
				r.have[up+"@"+req.URL.Query().Get("digest")] = true
			} else if m := req.URL.Query().Get("mount"); m != "" {
				r.have[up+"@"+m] = true
			}
		}
	})
}

// blobPath splits /v2/<repo>/blobs/<digest>.
func blobPath(p string) (repo, digest string, ok bool) {
	i := strings.LastIndex(p, "/blobs/")
	if i < 0 || !strings.HasPrefix(p, "/v2/") || strings.Contains(p[i:], "/uploads") {
		return "", "", false
	}
	return p[len("/v2/"):i], p[i+len("/blobs/"):], true
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests, r.uploaded, r.blobs = nil, 0, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// startRegistry starts a real registry for one test.
func startRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *ocitest.Registry {
	t.Helper()
	reg, err := ocitest.StartRegistry(wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// appContext writes a small app tree: one binary per architecture and a
// static directory shared by all platforms.
func appContext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		writeFile(t, filepath.Join(dir, "dist", "server-"+arch), "#!/bin/sh\necho server for "+arch+"\n", 0o755)
	}
	writeFile(t, filepath.Join(dir, "static", "index.html"), "<h1>hello</h1>\n", 0o644)
	writeFile(t, filepath.Join(dir, "static", "css", "site.css"), "body{}\n", 0o600)
	return dir
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func baseInputs(t *testing.T, host, base, ctxDir string) image.Inputs {
	return image.Inputs{
		Image:       host + "/acme/Prompt-Builder",
		Base:        base,
		Platforms:   []string{"linux/amd64", "linux/arm64"},
		Context:     ctxDir,
		Layers:      []string{"dist/server-{arch}:/app/server", "static:/app/static"},
		Entrypoint:  []string{"/app/server"},
		Env:         []string{"PATH=/app:/usr/bin:/bin", "APP_VERSION=1.2.3"},
		Workdir:     "/app",
		User:        "65532:65532",
		Ports:       []string{"8080", "9090/tcp"},
		Labels:      []string{"org.opencontainers.image.vendor=Acme"},
		Annotations: []string{"index:com.example.scope=index-only", "com.example.team=web"},
		Push:        true,
		ReleaseFile: filepath.Join(t.TempDir(), "gantry-release.json"),
		Timeout:     2 * time.Minute,
		Created:     created,
		Backoff:     remote.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 6},
		Git: metadata.Context{
			EventName: "push", Ref: "refs/tags/v1.2.3", SHA: "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
			Repository: "acme/Prompt-Builder", ServerURL: "https://github.com", DefaultBranch: "main", License: "MIT",
		},
	}
}

func pushBase(t *testing.T, host string, platforms []string, opts ocitest.BaseOptions) string {
	t.Helper()
	ref, _, err := ocitest.PushBase(t.Context(), host, "library/base:1", platforms, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestBuildPushesMultiArchImage(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}, ocitest.BaseOptions{Attestation: true})
	in := baseInputs(t, reg.Host, base, appContext(t))

	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	repo := reg.Host + "/acme/prompt-builder"
	if want := repo + "@" + out.Digest; out.Image != want {
		t.Errorf("image output = %q, want %q (repository lowercased, by digest)", out.Image, want)
	}
	ref, err := name.ParseReference(out.Image)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("pushed index is invalid: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range im.Manifests {
		got = append(got, d.Platform.OS+"/"+d.Platform.Architecture)
		if d.ArtifactType != "" {
			t.Errorf("%s descriptor has artifactType %q: a runnable image must not", d.Platform.Architecture, d.ArtifactType)
		}
		if want := out.PlatformDigests[d.Platform.OS+"/"+d.Platform.Architecture]; want != d.Digest.String() {
			t.Errorf("platform-digests[%s] = %s, index has %s", d.Platform.Architecture, want, d.Digest)
		}
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(got, want) {
		t.Fatalf("index platforms = %v, want exactly %v (no arm/v7, no attestation)", got, want)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type = %s", im.MediaType)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":   "1.2.3",
		"org.opencontainers.image.revision":  "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"org.opencontainers.image.source":    "https://github.com/acme/Prompt-Builder",
		"org.opencontainers.image.licenses":  "MIT",
		"org.opencontainers.image.created":   "2026-11-20T13:03:11Z",
		"org.opencontainers.image.title":     "Prompt-Builder",
		"org.opencontainers.image.base.name": base,
		"com.example.scope":                  "index-only",
		"com.example.team":                   "web",
	} {
		if im.Annotations[k] != want {
			t.Errorf("index annotation %s = %q, want %q", k, im.Annotations[k], want)
		}
	}
	baseRef, _ := name.ParseReference(base)
	baseDesc, err := remote.Get(baseRef)
	if err != nil {
		t.Fatal(err)
	}
	if im.Annotations["org.opencontainers.image.base.digest"] != baseDesc.Digest.String() {
		t.Errorf("index base.digest = %q, want the base index %s", im.Annotations["org.opencontainers.image.base.digest"], baseDesc.Digest)
	}

	for _, d := range im.Manifests {
		arch := d.Platform.Architecture
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("%s image invalid: %v", arch, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != arch || cf.OS != "linux" {
			t.Errorf("%s config says %s/%s", arch, cf.OS, cf.Architecture)
		}
		c := cf.Config
		if !slices.Equal(c.Entrypoint, []string{"/app/server"}) || len(c.Cmd) != 0 {
			t.Errorf("%s entrypoint/cmd = %v/%v, want [/app/server] and the base cmd cleared", arch, c.Entrypoint, c.Cmd)
		}
		wantEnv := []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "PATH=/app:/usr/bin:/bin", "APP_VERSION=1.2.3"}
		if !slices.Equal(c.Env, wantEnv) {
			t.Errorf("%s env = %v, want %v", arch, c.Env, wantEnv)
		}
		if c.WorkingDir != "/app" || c.User != "65532:65532" {
			t.Errorf("%s workdir/user = %q/%q", arch, c.WorkingDir, c.User)
		}
		if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 2 {
			t.Errorf("%s exposed ports = %v", arch, c.ExposedPorts)
		}
		if c.Labels["org.opencontainers.image.vendor"] != "Acme" || c.Labels["org.example.base"] != "gantry-test-base" || c.Labels["org.opencontainers.image.version"] != "1.2.3" {
			t.Errorf("%s labels = %v: want the user's, the base's and the OCI labels", arch, c.Labels)
		}
		if !cf.Created.Time.Equal(created) {
			t.Errorf("%s created = %v, want %v", arch, cf.Created, created)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Annotations["com.example.scope"] != "" || m.Annotations["com.example.team"] != "web" {
			t.Errorf("%s manifest annotations = %v: index: ones belong on the index only", arch, m.Annotations)
		}
		if m.Annotations["org.opencontainers.image.base.digest"] != d.Digest.String() && m.Annotations["org.opencontainers.image.base.digest"] == "" {
			t.Errorf("%s manifest has no base.digest", arch)
		}
		files := imageFiles(t, img)
		if got := files["app/server"]; got.content != "#!/bin/sh\necho server for "+arch+"\n" || got.mode != 0o755 {
			t.Errorf("%s /app/server = %+v, want the %s binary, mode 0755", arch, got, arch)
		}
		if got := files["app/static/css/site.css"]; got.content != "body{}\n" || got.mode != 0o644 {
			t.Errorf("%s /app/static/css/site.css = %+v", arch, got)
		}
		if _, ok := files["etc/os-release"]; !ok {
			t.Errorf("%s lost the base layer", arch)
		}
		for p, f := range files {
			if f.uid != 0 || f.gid != 0 || (strings.HasPrefix(p, "app") && !f.mtime.Equal(created)) {
				t.Errorf("%s %s: uid/gid %d/%d mtime %v, want 0/0 and %v", arch, p, f.uid, f.gid, f.mtime, created)
			}
		}
	}

	wantTags := []string{"1.2.3", "1.2", "1", "sha-9a8b7c6", "latest"}
	for i, tg := range wantTags {
		wantTags[i] = repo + ":" + tg
	}
	if !slices.Equal(out.Tags, wantTags) {
		t.Errorf("tags output = %v, want %v", out.Tags, wantTags)
	}
	for _, tg := range wantTags {
		r, _ := name.ParseReference(tg)
		d, err := remote.Head(r)
		if err != nil || d.Digest.String() != out.Digest {
			t.Errorf("tag %s: %v, digest %v; want it to point at %s", tg, err, d, out.Digest)
		}
	}

	rec, err := release.Read(out.ReleaseFile)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Digest != out.Digest || rec.Image != out.Image || len(rec.Platforms) != 2 || rec.Source.Revision != in.Git.SHA {
		t.Errorf("release record = %+v, want the build's digest, image, platforms and revision", rec)
	}
}

type file struct {
	content  string
	mode     int64
	uid, gid int
	mtime    time.Time
}

// imageFiles flattens an image's layers into path -> file.
func imageFiles(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]file{}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			files[strings.TrimSuffix(h.Name, "/")] = file{content: string(b), mode: h.Mode, uid: h.Uid, gid: h.Gid, mtime: h.ModTime}
		}
		rc.Close()
	}
	return files
}

func TestBuildIsReproducible(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})

	first := baseInputs(t, reg.Host, base, appContext(t))
	first.Push = false
	first.OCILayout = t.TempDir()
	a, err := image.Run(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}

	// The same sources in another directory, written later with another
	// umask and file times: nothing of the host may reach the image.
	second := baseInputs(t, reg.Host, base, appContext(t))
	second.Push = false
	second.OCILayout = t.TempDir()
	later := time.Now().Add(48 * time.Hour)
	filepath.Walk(second.Context, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, later, later) })
	os.Chmod(filepath.Join(second.Context, "static", "index.html"), 0o664)
	b, err := image.Run(t.Context(), second)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Errorf("same inputs gave %s and %s", a.Digest, b.Digest)
	}

	third := baseInputs(t, reg.Host, base, second.Context)
	third.Push = false
	third.OCILayout = t.TempDir()
	third.Created = created.Add(time.Second)
	c, err := image.Run(t.Context(), third)
	if err != nil {
		t.Fatal(err)
	}
	if c.Digest == a.Digest {
		t.Errorf("a different commit time gave the same digest %s: the timestamp is not reaching the image", c.Digest)
	}
}

func TestSecondPushUploadsNothingAndSharedLayerOnce(t *testing.T) {
	t.Parallel()
	rec := &recorder{scoped: true}
	reg := startRegistry(t, rec.wrap)
	base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	rec.reset()

	in := baseInputs(t, reg.Host, base, appContext(t))
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	// Blobs: two arch-specific server layers, one shared static layer, two
	// configs. The base layers come by cross-repository mount.
	counts := map[string]int{}
	for _, d := range rec.blobs {
		counts[d]++
	}
	if len(rec.blobs) != 5 {
		t.Errorf("first push uploaded %d blobs %v, want 5 (2 server layers, 1 shared static layer, 2 configs)", len(rec.blobs), rec.blobs)
	}
	for d, n := range counts {
		if n > 1 {
			t.Errorf("blob %s uploaded %d times", d, n)
		}
	}
	mounted := 0
	for _, r := range rec.requests {
		if strings.HasPrefix(r, "POST ") && strings.Contains(r, "mount=") && strings.HasSuffix(r, "Created") {
			mounted++
		}
	}
	if mounted != 2 {
		t.Errorf("%d base layers mounted from the base repository, want 2", mounted)
	}
	if out.Uploaded == 0 || out.Uploaded != rec.uploaded {
		t.Errorf("Uploaded = %d, registry received %d bytes", out.Uploaded, rec.uploaded)
	}

	rec.reset()
	again, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != out.Digest {
		t.Fatalf("re-run gave %s, first run %s", again.Digest, out.Digest)
	}
	if rec.uploaded != 0 || len(rec.blobs) != 0 || again.Uploaded != 0 {
		t.Errorf("re-run with no change uploaded %d bytes in %d blobs (reported %d), want 0", rec.uploaded, len(rec.blobs), again.Uploaded)
	}
}

func TestBuildRefusesMissingPlatform(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	reg := startRegistry(t, rec.wrap)
	base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm/v7"}, ocitest.BaseOptions{})
	rec.reset()
	in := baseInputs(t, reg.Host, base, appContext(t))
	in.Platforms = []string{"linux/amd64", "linux/arm64", "linux/s390x"}
	_, err := image.Run(t.Context(), in)
	if err == nil {
		t.Fatal("build succeeded with platforms missing from the base")
	}
	for _, want := range []string{`input "platforms"`, "linux/arm64 is not in the base", "linux/s390x is not in the base", "linux/amd64, linux/arm/v7"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, r := range rec.requests {
		if r[:4] != "GET " && r[:5] != "HEAD " {
			t.Errorf("a failed build wrote to the registry: %s", r)
		}
	}
}

func TestBuildWritesOCILayoutWhenNotPushing(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	reg := startRegistry(t, rec.wrap)
	base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	rec.reset()
	in := baseInputs(t, reg.Host, base, appContext(t))
	in.Push = false
	in.OCILayout = filepath.Join(t.TempDir(), "layout")
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(in.OCILayout)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Digest.String() != out.Digest || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "1.2.3" {
		t.Fatalf("layout index = %+v, want one entry %s named 1.2.3", tm.Manifests, out.Digest)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("layout image invalid: %v", err)
	}
	for _, r := range rec.requests {
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			t.Errorf("push: false wrote to the registry: %s", r)
		}
	}
}

func TestBuildKeepsDockerMediaTypes(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{Docker: true})
	out, err := image.Run(t.Context(), baseInputs(t, reg.Host, base, appContext(t)))
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(out.Image)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if im.MediaType != types.DockerManifestList {
		t.Errorf("index media type %s, want a Docker manifest list like the base", im.MediaType)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	for _, l := range m.Layers {
		if l.MediaType != types.DockerLayer {
			t.Errorf("layer media type %s in a Docker manifest", l.MediaType)
		}
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	t.Parallel()
	ctxDir := appContext(t)
	for _, tc := range []struct {
		name   string
		modify func(*image.Inputs)
		want   string
	}{
		{"tag in image", func(in *image.Inputs) { in.Image = "ghcr.io/acme/app:latest" }, `input "image"`},
		{"digest in image", func(in *image.Inputs) { in.Image = "ghcr.io/acme/app@sha256:abc" }, `put tags in the "tags" input`},
		{"no base", func(in *image.Inputs) { in.Base = "" }, `input "base" is required`},
		{"bad platform", func(in *image.Inputs) { in.Platforms = []string{"amd64"} }, `"amd64" is not os/arch`},
		{"layer without dest", func(in *image.Inputs) { in.Layers = []string{"dist"} }, `is not SRC:DEST`},
		{"relative dest", func(in *image.Inputs) { in.Layers = []string{"dist:app"} }, `must be an absolute path`},
		{"src escapes context", func(in *image.Inputs) { in.Layers = []string{"../etc:/etc"} }, `stay inside it`},
		{"bad env", func(in *image.Inputs) { in.Env = []string{"NOEQUALS"} }, `input "env"`},
		{"bad port", func(in *image.Inputs) { in.Ports = []string{"http"} }, `input "ports"`},
		{"half credentials", func(in *image.Inputs) { in.RegistryUsername = "me" }, `go together`},
		{"bad tag rule", func(in *image.Inputs) { in.Tags = []string{"type=bogus"} }, `unknown type "bogus"`},
		{"missing source", func(in *image.Inputs) { in.Layers = []string{"dist/nope-{arch}:/app/x"} }, `input "layers": dist/nope-`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := startRegistry(t, nil)
			base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
			in := baseInputs(t, reg.Host, base, ctxDir)
			tc.modify(&in)
			_, err := image.Run(t.Context(), in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			// Nothing of the app may reach the registry on bad input.
			repo, _ := name.NewRepository(reg.Host + "/acme/prompt-builder")
			if tags, err := remote.List(repo); err == nil && len(tags) > 0 {
				t.Errorf("bad input left tags %v", tags)
			}
		})
	}
}

func TestReleaseRecordIsJSON(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	base := pushBase(t, reg.Host, []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	out, err := image.Run(t.Context(), baseInputs(t, reg.Host, base, appContext(t)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out.ReleaseFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	stages, _ := raw["stages"].(map[string]any)
	build, _ := stages["build"].(map[string]any)
	if build["pushed"] != true {
		t.Errorf("release record stages.build = %v", build)
	}
}
