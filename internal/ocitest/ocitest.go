// Package ocitest provides the real OCI parts Gantry's tests and demo run
// against: an in-process registry speaking the distribution protocol over
// HTTP (with the OCI referrers API), and small multi-arch base images.
package ocitest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry is a running registry on a loopback port.
type Registry struct {
	Host   string // 127.0.0.1:PORT, usable in image references
	server *http.Server
}

// StartRegistry serves go-containerregistry's registry (referrers on) on a
// free loopback port. wrap, when not nil, wraps the handler, e.g. to count
// or inject faults.
func StartRegistry(wrap func(http.Handler) http.Handler) (*Registry, error) {
	return Start(RegistryOptions{Wrap: wrap})
}

// RegistryOptions shape a test registry.
type RegistryOptions struct {
	// NoReferrers turns the OCI 1.1 referrers API off, as in
	// `crane registry serve`: GET /v2/<repo>/referrers/<digest> answers
	// 404 METHOD_UNKNOWN, so clients keep each subject's referrers in an
	// index under the fallback tag sha256-<hex>, read, changed and written
	// back by every client that attaches.
	NoReferrers bool
	// Wrap, when not nil, wraps the handler, e.g. to count requests or
	// inject faults (see Fault).
	Wrap func(http.Handler) http.Handler
}

// Start serves go-containerregistry's registry on a free loopback port.
func Start(opts RegistryOptions) (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the registry: %w", err)
	}
	var h http.Handler = registry.New(registry.WithReferrersSupport(!opts.NoReferrers), registry.Logger(log.New(io.Discard, "", 0)))
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("registry: %v", err)
		}
	}()
	return &Registry{Host: ln.Addr().String(), server: srv}, nil
}

// Close stops the registry at once. (Shutdown would wait up to five seconds
// for connections a client dialled but never used.)
func (r *Registry) Close() error {
	return r.server.Close()
}

// BaseOptions shape a base image.
type BaseOptions struct {
	// Docker makes a Docker manifest list of schema 2 manifests instead of
	// an OCI index.
	Docker bool
	// Attestation adds an "unknown/unknown" attestation manifest, as
	// buildx does.
	Attestation bool
}

// Base builds a small multi-arch base image with a root filesystem layer per
// platform (os-release naming the platform, a nonroot passwd entry) and a
// config with PATH, a user and a label, like a distroless base.
func Base(platforms []string, opts BaseOptions) (v1.ImageIndex, error) {
	idxType, manType, cfgType, layerType := types.OCIImageIndex, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer
	if opts.Docker {
		idxType, manType, cfgType, layerType = types.DockerManifestList, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer
	}
	var adds []mutate.IndexAddendum
	for _, ps := range platforms {
		p, err := v1.ParsePlatform(ps)
		if err != nil {
			return nil, err
		}
		files := map[string]string{
			"etc/os-release": fmt.Sprintf("NAME=gantry-base\nID=gantry\nPLATFORM=%s\n", ps),
			"etc/passwd":     "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
			"etc/group":      "root:x:0:\nnonroot:x:65532:\n",
		}
		layer, err := tarLayer(files, layerType)
		if err != nil {
			return nil, err
		}
		img := mutate.MediaType(empty.Image, manType)
		img = mutate.ConfigMediaType(img, cfgType)
		img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: layerType, History: v1.History{CreatedBy: "ocitest base " + ps}})
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
		cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
		cf.Config.User = "65532"
		cf.Config.Cmd = []string{"/bin/sh"}
		cf.Config.Labels = map[string]string{"org.example.base": "gantry-test-base"}
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	if opts.Attestation {
		att, err := tarLayer(map[string]string{"provenance.json": "{}"}, layerType)
		if err != nil {
			return nil, err
		}
		img, err := mutate.Append(mutate.MediaType(empty.Image, manType), mutate.Addendum{Layer: att, MediaType: layerType})
		if err != nil {
			return nil, err
		}
		// Annotated as buildx does: what it is and which manifest it attests
		// (the first platform's).
		ann := map[string]string{"vnd.docker.reference.type": "attestation-manifest"}
		if len(adds) > 0 {
			d, err := adds[0].Add.Digest()
			if err != nil {
				return nil, err
			}
			ann["vnd.docker.reference.digest"] = d.String()
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}, Annotations: ann}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, idxType), adds...), nil
}

// PushBase pushes a base made by Base to host/repo:tag and returns its
// reference by tag.
func PushBase(ctx context.Context, host, repoTag string, platforms []string, opts BaseOptions) (string, v1.ImageIndex, error) {
	idx, err := Base(platforms, opts)
	if err != nil {
		return "", nil, err
	}
	ref, err := name.ParseReference(host + "/" + repoTag)
	if err != nil {
		return "", nil, err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
		return "", nil, fmt.Errorf("pushing the base %s: %w", ref, err)
	}
	return ref.String(), idx, nil
}

func tarLayer(files map[string]string, mt types.MediaType) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if d := n[:strings.LastIndex(n, "/")+1]; d != "" && !dirs[d] {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(mt))
}

// BasicAuth wraps a registry handler so that every request must carry these
// credentials (a 401 with a Basic challenge and the distribution error
// body otherwise), like GHCR; pass it to StartRegistry.
func BasicAuth(user, password string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
