package image

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Scratch is the base input's value for no base at all (Dockerfile's
// FROM scratch): each platform's image is only the layers given, e.g. a
// static Go binary. No registry is asked for it.
const Scratch = "scratch"

// scratchBase is a base of empty images, one per platform, each with that
// platform in its config.
func scratchBase(in Inputs) (*resolvedBase, error) {
	rb := &resolvedBase{mediaType: types.OCIImageIndex}
	for _, want := range in.Platforms {
		p, err := v1.ParsePlatform(want)
		if err != nil {
			return nil, fmt.Errorf(`input "platforms": %q: %w`, want, err)
		}
		cf, err := empty.Image.ConfigFile()
		if err != nil {
			return nil, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = p.OS, p.Architecture, p.Variant, p.OSVersion
		cf.RootFS.Type = "layers"
		img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), cf)
		if err != nil {
			return nil, err
		}
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		size, err := img.Size()
		if err != nil {
			return nil, err
		}
		rb.platforms = append(rb.platforms, basePlatform{
			platform: *p,
			desc:     v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: size, Platform: p},
			image:    img,
		})
	}
	return rb, nil
}
