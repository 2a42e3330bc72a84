package sbom

// This file is the only one that imports syft and stereoscope: the seam
// where a syft upgrade lands.

import (
	"context"
	"crypto"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	stereofile "github.com/anchore/stereoscope/pkg/file"
	stereoimage "github.com/anchore/stereoscope/pkg/image"
	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/format"
	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/spdxjson"
	syftsbom "github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/directorysource"
	"github.com/anchore/syft/syft/source/filesource"
	"github.com/anchore/syft/syft/source/stereoscopesource"

	// syft's RPM cataloger reads newer (sqlite) RPM databases through
	// database/sql; the syft CLI links this pure-Go driver the same way.
	_ "modernc.org/sqlite"
)

// catalog is one platform's or path's SBOM, encoded in each requested
// format.
type catalog struct {
	packages int
	byType   map[string]int
	docs     [][]byte // one per format, in the order asked for
	seconds  float64
}

// cataloger catalogs the platforms and paths of one run. syft's license
// scanner compiles every license pattern it knows when it is built, which
// costs more CPU than cataloging a small image; the syft CLI builds one per
// run, and this builds one for all platforms and paths, in the background
// while the image's layers are pulled.
type cataloger struct {
	ctx     context.Context
	scanner chan struct{} // closed when scanCtx is ready
	scanCtx context.Context
	scanErr error
}

// newCataloger starts building the license scanner. ctx bounds every
// catalog made with it: cancelling it stops them all.
func newCataloger(ctx context.Context) *cataloger {
	c := &cataloger{ctx: ctx, scanner: make(chan struct{})}
	go func() {
		defer close(c.scanner)
		c.scanCtx, c.scanErr = syft.SetContextLicenseScanner(ctx, syft.DefaultCreateSBOMConfig().Licenses)
	}()
	return c
}

// catalogImage runs syft over one platform image. The image is read through
// go-containerregistry with the stage's registry connection (credentials,
// plain HTTP, retries), not through syft's registry provider, so Gantry
// talks to registries one way. Its layers are fetched once, into a
// temporary directory removed on return, and every format is encoded from
// the one catalog. ref, the platform manifest by digest, is the SBOM's
// subject: its name is the repository and its version the digest.
func (c *cataloger) catalogImage(img v1.Image, ref name.Digest, fmts []Format) (catalog, error) {
	tmp := stereofile.NewTempDirGenerator("gantry-sbom")
	defer tmp.Cleanup()
	dir, err := tmp.NewDirectory("layers")
	if err != nil {
		return catalog{}, fmt.Errorf("creating a directory for the layers: %w", err)
	}
	meta := []stereoimage.AdditionalMetadata{stereoimage.WithRepoDigests(ref.String())}
	if raw, err := img.RawManifest(); err == nil {
		meta = append(meta, stereoimage.WithManifest(raw))
	}
	simg := stereoimage.New(img, tmp, dir, meta...)
	if err := simg.Read(c.ctx); err != nil {
		simg.Cleanup()
		return catalog{}, fmt.Errorf("reading the layers of %s: %w", ref, err)
	}
	src := stereoscopesource.New(simg, stereoscopesource.ImageConfig{
		Reference: ref.String(),
		Alias:     source.Alias{Name: ref.Context().Name(), Version: ref.DigestStr()},
	})
	defer src.Close()
	return c.catalog(src, ref.String(), fmts)
}

// catalogPath runs syft over a directory or a single file on disk with
// syft's directory catalogers (for a Go binary: its modules and the Go
// standard library from the build info). The entry's NAME is the SBOM's
// subject, so the documents' names and SPDX namespace say what was
// cataloged rather than where the runner had it; paths inside the SBOM are
// relative to the directory (or the file's own directory). A file gets a
// SHA-256 digest, as the syft CLI gives it, which becomes the subject's
// version and checksum.
func (c *cataloger) catalogPath(p pathEntry, fmts []Format) (catalog, error) {
	alias := source.Alias{Name: p.name}
	var src source.Source
	var err error
	if p.dir {
		src, err = directorysource.New(directorysource.Config{Path: p.abs, Base: p.abs, Alias: alias})
	} else {
		src, err = filesource.New(filesource.Config{Path: p.abs, Alias: alias, DigestAlgorithms: []crypto.Hash{crypto.SHA256}})
	}
	if err != nil {
		return catalog{}, fmt.Errorf("reading %s: %w", p.path, err)
	}
	defer src.Close()
	return c.catalog(src, p.path, fmts)
}

// catalog runs syft over src and encodes the one catalog in every format.
// what names src in errors.
func (c *cataloger) catalog(src source.Source, what string, fmts []Format) (catalog, error) {
	encoders := make([]syftsbom.FormatEncoder, len(fmts))
	for i, f := range fmts {
		enc, err := encoder(f.Name)
		if err != nil {
			return catalog{}, err
		}
		encoders[i] = enc
	}
	select {
	case <-c.scanner:
	case <-c.ctx.Done():
		return catalog{}, c.ctx.Err()
	}
	if c.scanErr != nil {
		return catalog{}, fmt.Errorf("building syft's license scanner: %w", c.scanErr)
	}
	// scanCtx is c.ctx with the scanner added.
	s, err := syft.CreateSBOM(c.scanCtx, src, syft.DefaultCreateSBOMConfig())
	if err != nil {
		return catalog{}, fmt.Errorf("cataloging %s with syft: %w", what, err)
	}
	out := catalog{packages: s.Artifacts.Packages.PackageCount(), byType: map[string]int{}}
	for p := range s.Artifacts.Packages.Enumerate() {
		out.byType[string(p.Type)]++
	}
	for i, enc := range encoders {
		b, err := format.Encode(*s, enc)
		if err != nil {
			return catalog{}, fmt.Errorf("encoding the SBOM of %s as %s: %w", what, fmts[i].Name, err)
		}
		out.docs = append(out.docs, b)
	}
	return out, nil
}

// encoder returns syft's encoder for a format. The versions are pinned
// (SPDX 2.3, CycloneDX 1.6), so a syft upgrade does not silently change
// what the sign stage and users' tools receive.
func encoder(name string) (syftsbom.FormatEncoder, error) {
	switch name {
	case "spdx-json":
		cfg := spdxjson.DefaultEncoderConfig()
		cfg.Version = "2.3"
		return spdxjson.NewFormatEncoderWithConfig(cfg)
	case "cyclonedx-json":
		cfg := cyclonedxjson.DefaultEncoderConfig()
		cfg.Version = "1.6"
		return cyclonedxjson.NewFormatEncoderWithConfig(cfg)
	}
	return nil, fmt.Errorf("no encoder for SBOM format %q", name)
}
