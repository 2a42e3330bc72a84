package image

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/metadata"
)

// mergeSource is one manifest the merged index lists: a platform image, or
// an attestation manifest that travels with one (BuildKit's
// unknown/unknown entries, kept with their annotations).
type mergeSource struct {
	from        string // the merge line it came from
	desc        v1.Descriptor
	image       v1.Image
	attestation bool
	repo        name.Repository
	size        int64 // compressed bytes of the layers (platform images)
}

// parseMergeRefs checks that every merge line is repo@sha256:… (a build
// job's digest output), so a tag that moved cannot slip in.
func parseMergeRefs(lines []string, opts func(string) []name.Option) ([]name.Digest, error) {
	var refs []name.Digest
	var errs []error
	seen := map[string]bool{}
	for _, line := range lines {
		line = strings.TrimSpace(line)
		d, err := name.NewDigest(line, opts(line)...)
		if err != nil {
			errs = append(errs, fmt.Errorf(`input "merge": %q is not REPOSITORY@sha256:DIGEST (the digest output of a push-by-digest build): %v`, line, err))
			continue
		}
		if seen[d.String()] {
			errs = append(errs, fmt.Errorf(`input "merge": %s is listed twice`, d))
			continue
		}
		seen[d.String()] = true
		refs = append(refs, d)
	}
	return refs, errors.Join(errs...)
}

// isAttestation reports whether an index entry is an attestation manifest
// (buildx's and BuildKit's unknown/unknown entries) rather than a runnable
// platform. The base resolution and the merge both go by it.
func isAttestation(d v1.Descriptor) bool {
	return d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" ||
		(d.Platform != nil && d.Platform.OS == "unknown")
}

// mergeSources reads every merge input: a platform image is one source; an
// index contributes each of its platform images and their attestations.
func mergeSources(ctx context.Context, reg *registries, refs []name.Digest) ([]mergeSource, types.MediaType, error) {
	var out []mergeSource
	docker := true // every input a Docker schema 2 manifest: keep a Docker list
	for _, ref := range refs {
		desc, err := remote.Get(ref, reg.options(ctx)...)
		if err != nil {
			return nil, "", fmt.Errorf(`input "merge": fetching %s: %w`, ref, err)
		}
		switch {
		case desc.MediaType.IsImage():
			img, err := desc.Image()
			if err != nil {
				return nil, "", err
			}
			s, err := imageSource(ref.String(), ref.Context(), img, desc.Descriptor, nil)
			if err != nil {
				return nil, "", fmt.Errorf(`input "merge": %s: %w`, ref, err)
			}
			docker = docker && desc.MediaType == types.DockerManifestSchema2
			out = append(out, s)
		case desc.MediaType.IsIndex():
			idx, err := desc.ImageIndex()
			if err != nil {
				return nil, "", err
			}
			srcs, err := indexSources(ref.String(), ref.Context(), idx)
			if err != nil {
				return nil, "", fmt.Errorf(`input "merge": %w`, err)
			}
			docker = docker && desc.MediaType == types.DockerManifestList
			out = append(out, srcs...)
		default:
			return nil, "", fmt.Errorf(`input "merge": %s is a %s, not an image or an image index`, ref, desc.MediaType)
		}
	}
	if docker {
		return out, types.DockerManifestList, nil
	}
	return out, types.OCIImageIndex, nil
}

// indexSources lists an index's platform images and the attestations
// that travel with them.
func indexSources(from string, repo name.Repository, idx v1.ImageIndex) ([]mergeSource, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []mergeSource
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			return nil, fmt.Errorf(`%s lists %s, a %s: merge takes images and indexes of images, not nested indexes`, from, d.Digest, d.MediaType)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf(`%s: reading %s: %w`, from, d.Digest, err)
		}
		if isAttestation(d) {
			// Kept as it was, annotations (the digest it attests) and all.
			out = append(out, mergeSource{from: from, desc: d, image: img, attestation: true, repo: repo})
			continue
		}
		s, err := imageSource(from, repo, img, d, d.Platform)
		if err != nil {
			return nil, fmt.Errorf(`%s: %s: %w`, from, d.Digest, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// imageSource describes one platform image by the descriptor it had, its
// platform taken from the index entry or else from its config.
func imageSource(from string, repo name.Repository, img v1.Image, d v1.Descriptor, p *v1.Platform) (mergeSource, error) {
	if p == nil {
		cf, err := img.ConfigFile()
		if err != nil {
			return mergeSource{}, fmt.Errorf("reading its config: %w", err)
		}
		if p = cf.Platform(); p == nil || p.OS == "" || p.Architecture == "" {
			return mergeSource{}, errors.New("its config names no os/architecture, so its platform is unknown")
		}
	}
	m, err := img.Manifest()
	if err != nil {
		return mergeSource{}, err
	}
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	// The descriptor the registry served, with the platform; nothing else
	// (an artifactType copied from the config would mark it an artifact).
	desc := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: p, Annotations: d.Annotations}
	return mergeSource{from: from, desc: desc, image: img, repo: repo, size: size}, nil
}

// defaultPlatforms is the platforms input's default: with it, a merge
// takes whatever platforms its inputs hold; with any other value, the
// inputs must hold exactly those.
var defaultPlatforms = []string{"linux/amd64", "linux/arm64"}

// checkPlatforms refuses a platform given twice, naming both sources, and,
// when the platforms input was set, a set of platforms other than it.
func checkPlatforms(srcs []mergeSource, want []string) error {
	by := map[string]string{}
	var errs []error
	for _, s := range srcs {
		if s.attestation {
			continue
		}
		p := platformString(*s.desc.Platform)
		if prev, ok := by[p]; ok {
			errs = append(errs, fmt.Errorf(`input "merge": %s is given twice, by %s and by %s: each platform must come from one build`, p, prev, s.from))
			continue
		}
		by[p] = s.from
	}
	if len(by) == 0 {
		return errors.New(`input "merge": no platform image among the inputs (only attestations)`)
	}
	if len(errs) == 0 && !slices.Equal(want, defaultPlatforms) {
		have := slices.Sorted(maps.Keys(by))
		norm := func(ps []string) []string {
			var out []string
			for _, p := range ps {
				if vp, err := v1.ParsePlatform(p); err == nil {
					p = platformString(*vp)
				}
				out = append(out, p)
			}
			slices.Sort(out)
			return out
		}
		if !slices.Equal(norm(want), have) {
			errs = append(errs, fmt.Errorf(`input "platforms" is %s but the merge inputs hold %s: list the builds of exactly those platforms, or leave "platforms" at its default to take what the inputs hold`,
				strings.Join(want, ","), strings.Join(have, ",")))
		}
	}
	return errors.Join(errs...)
}

// copyInto makes every source available in repo: a source from another
// repository is copied (its blobs mounted where the registry allows), and
// its referrers — signatures, attestations — are copied with it.
func copyInto(ctx context.Context, reg *registries, repo name.Repository, srcs []mergeSource) error {
	for _, s := range srcs {
		if s.repo.String() == repo.String() {
			continue
		}
		src := s.repo.Digest(s.desc.Digest.String())
		dst := repo.Digest(s.desc.Digest.String())
		reg.in.Log.Infof("copying %s to %s (merge inputs from another repository)", src, repo)
		// The image read once in mergeSources; blobs are mounted from its
		// repository where the registry allows. Its referrers come next, so
		// the index push finds every manifest in place and tags last.
		if err := remote.Write(dst, s.image, reg.options(ctx)...); err != nil {
			return fmt.Errorf(`input "merge": copying %s to %s: %w`, src, repo, err)
		}
		refs, err := remote.Referrers(src, reg.options(ctx)...)
		if err != nil {
			return fmt.Errorf(`input "merge": listing the referrers of %s: %w`, src, err)
		}
		rm, err := refs.IndexManifest()
		if err != nil {
			return err
		}
		for _, r := range rm.Manifests {
			if err := copyManifest(ctx, reg, s.repo.Digest(r.Digest.String()), repo.Digest(r.Digest.String())); err != nil {
				return fmt.Errorf(`input "merge": copying %s's referrer %s to %s: %w`, src, r.Digest, repo, err)
			}
		}
	}
	return nil
}

func copyManifest(ctx context.Context, reg *registries, src, dst name.Digest) error {
	desc, err := remote.Get(src, reg.options(ctx)...)
	if err != nil {
		return err
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		return remote.WriteIndex(dst, idx, reg.options(ctx)...)
	}
	img, err := desc.Image()
	if err != nil {
		return err
	}
	return remote.Write(dst, img, reg.options(ctx)...)
}

// merge makes one index of the images the merge input lists (per-platform
// builds from native runners), without rebuilding: their manifests, digests
// and referrers stay as they are, so a signature made on a platform digest
// before the merge still verifies after it.
func merge(ctx context.Context, in Inputs, reg *registries, repo name.Repository, tags []string) (Outputs, error) {
	refs, err := parseMergeRefs(in.Merge, reg.nameOptions)
	if err != nil {
		return Outputs{}, err
	}
	end := in.Log.Group(fmt.Sprintf("Merging %d build(s) into one index in %s", len(refs), repo))
	srcs, mt, err := mergeSources(ctx, reg, refs)
	if err == nil {
		err = checkPlatforms(srcs, in.Platforms)
	}
	if err == nil {
		err = copyInto(ctx, reg, repo, srcs)
	}
	end()
	if err != nil {
		return Outputs{}, err
	}

	out, idx, err := indexOf(in, repo, tags, srcs, mt)
	if err != nil {
		return out, err
	}
	for _, r := range refs {
		out.Merged = append(out.Merged, r.String())
	}
	return publish(ctx, in, reg, repo, tags, idx, out)
}

// indexOf makes the index of the given images: their manifests as they
// are (digests unchanged), with Gantry's index annotations (the OCI ones,
// the labels, the user's index-level annotations).
func indexOf(in Inputs, repo name.Repository, tags []string, srcs []mergeSource, mt types.MediaType) (Outputs, v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	out := Outputs{PlatformDigests: map[string]string{}, Pushed: true}
	for _, s := range srcs {
		adds = append(adds, mutate.IndexAddendum{Add: described{Image: s.image, desc: s.desc}, Descriptor: s.desc})
		if s.attestation {
			continue
		}
		p := platformString(*s.desc.Platform)
		out.PlatformDigests[p] = s.desc.Digest.String()
		out.Platforms = append(out.Platforms, PlatformResult{Platform: p, Digest: s.desc.Digest.String(), Size: s.size})
		in.Log.Infof("%s: %s (from %s)", p, s.desc.Digest, s.from)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, mt), adds...)
	if mt == types.OCIImageIndex {
		// The index's own annotations: the OCI ones, then the labels
		// (a platform image's config cannot change without changing its
		// digest), then the user's index-level annotations.
		ann := metadata.OCI(in.Git, in.Created, tags, repo.RepositoryStr())
		for _, kv := range in.Labels {
			k, v, _ := strings.Cut(kv, "=")
			ann[k] = v
		}
		addUserAnnotations(ann, in.Annotations, "index")
		idx = mutate.Annotations(idx, ann).(v1.ImageIndex)
	} else if len(in.Annotations)+len(in.Labels) > 0 {
		return Outputs{}, nil, errors.New(`inputs "labels" / "annotations": every merge input is a Docker schema 2 manifest, and a Docker manifest list has no annotations: build OCI images (BuildKit's default) or leave them out`)
	}
	digest, err := idx.Digest()
	if err != nil {
		return Outputs{}, nil, fmt.Errorf("assembling the index: %w", err)
	}
	out.Digest = digest.String()
	slices.SortFunc(out.Platforms, func(a, b PlatformResult) int { return strings.Compare(a.Platform, b.Platform) })
	return out, idx, nil
}

// publish pushes the index (its manifests are in the registry already,
// so only the index is written) and then moves the tags.
func publish(ctx context.Context, in Inputs, reg *registries, repo name.Repository, tags []string, idx v1.ImageIndex, out Outputs) (Outputs, error) {
	uploaded, err := push(ctx, reg, in.Log, repo, idx, tags)
	out.Uploaded = uploaded
	if err != nil {
		return out, err
	}
	out.Image = repo.Digest(out.Digest).String()
	for _, t := range tags {
		out.Tags = append(out.Tags, repo.Tag(t).String())
	}
	return out, nil
}
