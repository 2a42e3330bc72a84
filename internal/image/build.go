package image

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/human"
	"github.com/gantry-ci/gantry/internal/metadata"
)

// Run builds the image for every requested platform, assembles the index,
// and pushes it (or writes an OCI layout when Push is false). Nothing is
// tagged unless every manifest and the index are in the registry.
func Run(ctx context.Context, in Inputs) (Outputs, error) {
	if err := in.Validate(); err != nil {
		return Outputs{}, err
	}
	if in.Log == nil {
		in.Log = ghaction.Discard{}
	}
	if in.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.Timeout)
		defer cancel()
	}
	if in.Created.IsZero() {
		in.Created = time.Unix(0, 0).UTC()
	}
	reg := newRegistries(in)
	repo, err := reg.repository(in.Image)
	if err != nil {
		return Outputs{}, err
	}
	tags, err := metadata.Tags(in.Git, in.Tags)
	if err != nil {
		return Outputs{}, fmt.Errorf(`input "tags": %w`, err)
	}
	if in.PushByDigest {
		tags = nil // one platform per job: the merge job tags the index
	}
	if len(in.Merge) > 0 {
		out, err := merge(ctx, in, reg, repo, tags)
		out.ByDigest = in.PushByDigest
		if err != nil {
			return out, err
		}
		return withRelease(in, out, repo)
	}
	if in.Dockerfile != "" {
		out, err := dockerfileBuild(ctx, in, reg, repo, tags)
		if err != nil {
			return out, err
		}
		return withRelease(in, out, repo)
	}
	specs, _ := parseLayers(in.Layers) // validated above

	base, err := resolveBase(ctx, reg, in)
	if err != nil {
		return Outputs{}, err
	}

	end := in.Log.Group(fmt.Sprintf("Building %s for %s", repo, strings.Join(in.Platforms, ", ")))
	b := &builder{in: in, specs: specs, layers: map[string]*sharedLayer{}}
	oci := metadata.OCI(in.Git, in.Created, tags, repo.RepositoryStr())
	results := make([]platformImage, len(base.platforms))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(in))
	for i, bp := range base.platforms {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			r, err := b.platform(bp, base, oci)
			if err != nil {
				return fmt.Errorf("%s: %w", platformString(bp.platform), err)
			}
			in.Log.Infof("%s: base %s + %d layer(s) (%s of app), manifest %s",
				r.result.Platform, short(bp.desc.Digest.String()), len(specs), human.Bytes(r.result.AppSize), r.result.Digest)
			results[i] = r
			return nil
		})
	}
	err = g.Wait()
	end()
	if err != nil {
		return Outputs{}, err
	}

	idx, err := assembleIndex(base, results, oci, in.Annotations)
	if err != nil {
		return Outputs{}, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return Outputs{}, err
	}

	out := Outputs{
		Digest:          digest.String(),
		PlatformDigests: map[string]string{},
		Base:            base.name(),
		Pushed:          in.Push,
		ByDigest:        in.PushByDigest,
	}
	for _, r := range results {
		out.Platforms = append(out.Platforms, r.result)
		out.PlatformDigests[r.result.Platform] = r.result.Digest
	}

	if in.Push {
		uploaded, err := push(ctx, reg, in.Log, repo, idx, tags)
		out.Uploaded = uploaded
		if err != nil {
			return out, err
		}
		out.Image = repo.Digest(digest.String()).String()
		for _, t := range tags {
			out.Tags = append(out.Tags, repo.Tag(t).String())
		}
	} else {
		if err := writeLayout(in.OCILayout, idx, tags); err != nil {
			return out, fmt.Errorf(`writing the OCI layout to %q (input "oci-layout"): %w`, in.OCILayout, err)
		}
		in.Log.Infof("wrote %s@%s to OCI layout %s (push: false)", repo, digest, in.OCILayout)
		out.Image = repo.Digest(digest.String()).String()
		for _, t := range tags {
			out.Tags = append(out.Tags, repo.Tag(t).String())
		}
	}

	return withRelease(in, out, repo)
}

// withRelease writes the release record when one is asked for.
func withRelease(in Inputs, out Outputs, repo name.Repository) (Outputs, error) {
	if in.ReleaseFile != "" {
		p, err := writeRelease(in, out, repo)
		if err != nil {
			return out, err
		}
		out.ReleaseFile = p
	}
	return out, nil
}

func jobs(in Inputs) int {
	if in.Jobs > 0 {
		return in.Jobs
	}
	return 4
}

// basePlatform is one manifest of the base chosen for a requested platform.
type basePlatform struct {
	platform v1.Platform
	desc     v1.Descriptor
	image    v1.Image
}

type resolvedBase struct {
	ref       name.Reference // nil for scratch
	digest    v1.Hash
	mediaType types.MediaType // of the index we build
	platforms []basePlatform
}

// resolveBase resolves the base once (a tag becomes a digest here and only
// the digest is used after) and picks a manifest for each platform.
func resolveBase(ctx context.Context, reg *registries, in Inputs) (*resolvedBase, error) {
	if in.Base == Scratch {
		return scratchBase(in)
	}
	ref, err := reg.reference(in.Base)
	if err != nil {
		return nil, fmt.Errorf(`input "base": %w`, err)
	}
	desc, err := remote.Get(ref, reg.options(ctx)...)
	if err != nil {
		return nil, fmt.Errorf(`input "base": fetching %s: %w`, in.Base, err)
	}
	rb := &resolvedBase{ref: ref, digest: desc.Digest}
	var available []v1.Descriptor
	images := map[v1.Hash]func() (v1.Image, error){}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		rb.mediaType = im.MediaType
		if rb.mediaType == "" {
			rb.mediaType = types.OCIImageIndex
		}
		for _, d := range im.Manifests {
			if d.Platform == nil || isAttestation(d) || !d.MediaType.IsImage() {
				continue // attestation manifests and nested indexes are not runnable platforms
			}
			available = append(available, d)
			images[d.Digest] = func() (v1.Image, error) { return idx.Image(d.Digest) }
		}
	} else if desc.MediaType.IsImage() {
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := cf.Platform()
		if p == nil {
			p = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		}
		rb.mediaType = types.OCIImageIndex
		if desc.MediaType == types.DockerManifestSchema2 {
			rb.mediaType = types.DockerManifestList
		}
		d := desc.Descriptor
		d.Platform = p
		available = append(available, d)
		images[d.Digest] = func() (v1.Image, error) { return img, nil }
	} else {
		return nil, fmt.Errorf(`input "base": %s is a %s, not an image or image index`, in.Base, desc.MediaType)
	}
	if _, isDigest := ref.(name.Digest); !isDigest {
		in.Log.Infof("base %s resolved to %s (only the digest is used from here on)", in.Base, desc.Digest)
	}

	var missing []string
	for _, want := range in.Platforms {
		wp, err := v1.ParsePlatform(want)
		if err != nil {
			return nil, fmt.Errorf(`input "platforms": %q: %w`, want, err)
		}
		d, err := matchPlatform(*wp, available)
		if err != nil {
			missing = append(missing, err.Error())
			continue
		}
		img, err := images[d.Digest]()
		if err != nil {
			return nil, err
		}
		rb.platforms = append(rb.platforms, basePlatform{platform: *d.Platform, desc: d, image: img})
	}
	if len(missing) > 0 {
		var have []string
		for _, d := range available {
			have = append(have, platformString(*d.Platform))
		}
		return nil, fmt.Errorf(`input "platforms": %s; the base %s has %s: choose platforms from that list or a base that has them`,
			strings.Join(missing, "; "), in.Base, strings.Join(have, ", "))
	}
	return rb, nil
}

// matchPlatform finds the base manifest for want. An empty variant matches
// any variant when that is unambiguous; arm64 and arm64/v8 are the same.
func matchPlatform(want v1.Platform, descs []v1.Descriptor) (v1.Descriptor, error) {
	norm := func(p v1.Platform) string {
		if p.Architecture == "arm64" && p.Variant == "" {
			p.Variant = "v8"
		}
		return p.Variant
	}
	var found []v1.Descriptor
	for _, d := range descs {
		p := *d.Platform
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		if want.Variant == "" || norm(p) == norm(want) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return v1.Descriptor{}, fmt.Errorf("%s is not in the base", platformString(want))
	case 1:
		return found[0], nil
	}
	var names []string
	for _, d := range found {
		names = append(names, platformString(*d.Platform))
	}
	return v1.Descriptor{}, fmt.Errorf("%s matches %s in the base: name the variant", platformString(want), strings.Join(names, " and "))
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// builder holds what the per-platform goroutines share.
type builder struct {
	in    Inputs
	specs []layerSpec

	mu     sync.Mutex
	layers map[string]*sharedLayer
}

// sharedLayer makes a layer whose source has no platform placeholder get
// built once and reused by every platform, so it is also uploaded once.
type sharedLayer struct {
	once  sync.Once
	layer v1.Layer
	err   error
}

func (b *builder) layer(src, dest string, mt types.MediaType) (v1.Layer, error) {
	key := src + "\x00" + dest + "\x00" + string(mt)
	b.mu.Lock()
	sl, ok := b.layers[key]
	if !ok {
		sl = &sharedLayer{}
		b.layers[key] = sl
	}
	b.mu.Unlock()
	sl.once.Do(func() {
		entries, err := collect(b.in.Context, src, dest)
		if err != nil {
			sl.err = err
			return
		}
		sl.layer, sl.err = buildLayer(entries, b.in.Created, mt)
	})
	return sl.layer, sl.err
}

type platformImage struct {
	image  v1.Image
	desc   v1.Descriptor
	result PlatformResult
}

func (b *builder) platform(bp basePlatform, base *resolvedBase, oci map[string]string) (platformImage, error) {
	in := b.in
	img := bp.image
	mt, err := img.MediaType()
	if err != nil {
		return platformImage{}, err
	}
	isOCI := mt == types.OCIManifestSchema1
	layerMT := types.DockerLayer
	if isOCI {
		layerMT = types.OCILayer
	}
	created := v1.Time{Time: in.Created}
	var adds []mutate.Addendum
	var appSize int64
	for _, s := range b.specs {
		src := resolveSrc(s.Src, bp.platform)
		l, err := b.layer(src, s.Dest, layerMT)
		if err != nil {
			return platformImage{}, err
		}
		size, err := l.Size()
		if err != nil {
			return platformImage{}, err
		}
		appSize += size
		adds = append(adds, mutate.Addendum{
			Layer:     l,
			MediaType: layerMT,
			History: v1.History{
				Created:   created,
				CreatedBy: fmt.Sprintf("gantry-build: COPY %s %s", src, s.Dest),
				Comment:   "gantry",
			},
		})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return platformImage{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return platformImage{}, err
	}
	cfg := *cf.Config.DeepCopy()
	if err := applyConfig(&cfg, in, oci, bp.desc.Digest.String(), base); err != nil {
		return platformImage{}, err
	}
	if img, err = mutate.Config(img, cfg); err != nil {
		return platformImage{}, err
	}
	if img, err = mutate.CreatedAt(img, created); err != nil {
		return platformImage{}, err
	}
	if isOCI {
		ann := baseAnnotations(oci, base, bp.desc.Digest.String())
		addUserAnnotations(ann, in.Annotations, "manifest")
		img = mutate.Annotations(img, ann).(v1.Image)
	}
	digest, err := img.Digest()
	if err != nil {
		return platformImage{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return platformImage{}, err
	}
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	p := bp.platform
	return platformImage{
		image: img,
		desc:  v1.Descriptor{Platform: &p},
		result: PlatformResult{
			Platform:   platformString(p),
			Digest:     digest.String(),
			BaseDigest: bp.desc.Digest.String(),
			Size:       size,
			AppSize:    appSize,
		},
	}, nil
}

// applyConfig sets the runtime config: Docker semantics, so a new entrypoint
// without a cmd clears the base's cmd.
func applyConfig(cfg *v1.Config, in Inputs, oci map[string]string, baseDigest string, base *resolvedBase) error {
	if len(in.Entrypoint) > 0 {
		cfg.Entrypoint = in.Entrypoint
		if len(in.Cmd) == 0 {
			cfg.Cmd = nil
		}
	}
	if len(in.Cmd) > 0 {
		cfg.Cmd = in.Cmd
	}
	for _, kv := range in.Env {
		k, _, _ := strings.Cut(kv, "=")
		cfg.Env = slices.DeleteFunc(cfg.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		cfg.Env = append(cfg.Env, kv)
	}
	if in.Workdir != "" {
		if !path.IsAbs(in.Workdir) {
			return fmt.Errorf(`input "workdir": %q must be an absolute path, e.g. /app`, in.Workdir)
		}
		cfg.WorkingDir = in.Workdir
	}
	if in.User != "" {
		cfg.User = in.User
	}
	ports, _ := parsePorts(in.Ports)
	if len(ports) > 0 && cfg.ExposedPorts == nil {
		cfg.ExposedPorts = map[string]struct{}{}
	}
	for p := range ports {
		cfg.ExposedPorts[p] = struct{}{}
	}
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	for k, v := range baseAnnotations(oci, base, baseDigest) {
		labels[k] = v
	}
	for _, kv := range in.Labels {
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = v
	}
	cfg.Labels = labels
	return nil
}

func baseAnnotations(oci map[string]string, base *resolvedBase, baseDigest string) map[string]string {
	ann := map[string]string{}
	for k, v := range oci {
		ann[k] = v
	}
	if base.ref != nil { // scratch has none
		ann["org.opencontainers.image.base.name"] = base.ref.String()
		ann["org.opencontainers.image.base.digest"] = baseDigest
	}
	return ann
}

// name is the base as the outputs name it: repo@digest, or scratch.
func (b *resolvedBase) name() string {
	if b.ref == nil {
		return Scratch
	}
	return b.ref.Context().Digest(b.digest.String()).String()
}

func addUserAnnotations(ann map[string]string, lines []string, level string) {
	for _, line := range lines {
		l, kv, err := parseAnnotation(line)
		if err != nil || (l != "both" && l != level) {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		ann[k] = v
	}
}

// assembleIndex builds an index of exactly the requested platforms, in the
// order they were requested.
func assembleIndex(base *resolvedBase, results []platformImage, oci map[string]string, annotations []string) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, r := range results {
		d, err := partial.Descriptor(r.image)
		if err != nil {
			return nil, err
		}
		// go-containerregistry copies the config media type into the
		// descriptor's artifactType; for a runnable image that field must be
		// empty, or OCI 1.1 clients take the manifest for an artifact.
		desc := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: r.desc.Platform}
		adds = append(adds, mutate.IndexAddendum{Add: described{Image: r.image, desc: desc}, Descriptor: desc})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, base.mediaType), adds...)
	if base.mediaType == types.OCIImageIndex {
		ann := baseAnnotations(oci, base, base.digest.String())
		addUserAnnotations(ann, annotations, "index")
		idx = mutate.Annotations(idx, ann).(v1.ImageIndex)
	}
	if _, err := idx.Digest(); err != nil {
		return nil, fmt.Errorf("assembling the index: %w", err)
	}
	return idx, nil
}

// described is an image that reports exactly the descriptor it was given.
type described struct {
	v1.Image
	desc v1.Descriptor
}

func (d described) Descriptor() (*v1.Descriptor, error) { return &d.desc, nil }

func short(d string) string {
	if i := strings.Index(d, ":"); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}
