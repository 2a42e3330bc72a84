package sbom

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/registry"
)

// Run writes the SBOMs of every requested platform of the image. A tag is
// resolved once and only the digest used after. The platforms are cataloged
// in parallel; the files are written only when every platform succeeded, so
// a failed run leaves no partial output.
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
	fmts, _ := parseFormats(in.Formats) // validated above
	conn := registry.Conn{
		Username:  in.RegistryUsername,
		Password:  in.RegistryPassword,
		Insecure:  in.InsecureRegistries,
		Keychain:  in.Keychain,
		Transport: in.Transport,
		Backoff:   in.Backoff,
		UserAgent: "gantry-sbom",
	}
	// A broken release record fails before any work, not after it.
	rec, err := openRecord(in.ReleaseFile)
	if err != nil {
		return Outputs{}, err
	}
	// syft's license scanner takes about a second of CPU to build: start
	// it now, so it is ready by the time the first platform's layers are.
	// (On an early error it finishes on its own moments later.)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(in.Jobs))
	cat := newCataloger(gctx)

	ref, err := conn.Resolve(ctx, "image", in.Image, in.Log)
	if err != nil {
		return Outputs{}, timedOut(ctx, in.Timeout, err)
	}
	opts := conn.Options(ctx, ref.String())
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return Outputs{}, timedOut(ctx, in.Timeout, fmt.Errorf(`input "image": fetching %s: %w (check the reference, registry-username/registry-password, and insecure-registries for a plain-HTTP registry)`, ref, err))
	}
	targets, err := selectPlatforms(desc, in.Platforms)
	if err != nil {
		return Outputs{}, err
	}

	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.platform
	}
	end := in.Log.Group(fmt.Sprintf("SBOMs of %s for %s", ref, strings.Join(names, ", ")))
	results := make([]catalog, len(targets))
	for i, t := range targets {
		g.Go(func() error {
			start := time.Now()
			img, err := t.image()
			if err != nil {
				return fmt.Errorf("%s: fetching manifest %s: %w", t.platform, t.digest, err)
			}
			c, err := cat.catalogImage(img, ref.Context().Digest(t.digest.String()), fmts)
			if err != nil {
				return fmt.Errorf("%s: %w", t.platform, err)
			}
			c.seconds = time.Since(start).Seconds()
			results[i] = c
			in.Log.Infof("%s: manifest %s, %d packages (%s) in %.1fs", t.platform, t.digest, c.packages, typeCounts(c.byType), c.seconds)
			return nil
		})
	}
	err = g.Wait()
	end()
	if err != nil {
		return Outputs{}, timedOut(ctx, in.Timeout, err)
	}

	out := Outputs{
		Digest:   ref.String(),
		Files:    map[string][]string{},
		Packages: map[string]int{},
	}
	var files []pendingFile
	for i, t := range targets {
		p := PlatformSBOM{
			Platform: t.platform,
			Digest:   t.digest.String(),
			Packages: results[i].packages,
			ByType:   results[i].byType,
			Seconds:  results[i].seconds,
		}
		for j, f := range fmts {
			path := filepath.Join(in.OutputDir, fileBase(t.platform)+"."+f.Short+".json")
			p.Files = append(p.Files, path)
			files = append(files, pendingFile{path: path, data: results[i].docs[j]})
		}
		out.Platforms = append(out.Platforms, p)
		out.Files[t.platform] = p.Files
		out.Packages[t.platform] = p.Packages
	}
	if err := writeFiles(in.OutputDir, files); err != nil {
		return Outputs{}, fmt.Errorf(`writing the SBOM files to %q (input "output-dir"): %w`, in.OutputDir, err)
	}
	for _, f := range files {
		in.Log.Infof("wrote %s (%d bytes)", f.path, len(f.data))
	}

	if rec != nil {
		path, err := rec.update(ref, fmts, out, in.Log)
		if err != nil {
			return out, err
		}
		out.ReleaseFile = path
	}
	return out, nil
}

// timedOut names the timeout input when the run's deadline is what ended
// it, so the fix is obvious.
func timedOut(ctx context.Context, timeout time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf(`not done within input "timeout" (%s): raise it for large images or a slow registry: %w`, timeout, err)
	}
	return err
}

func jobs(n int) int {
	if n > 0 {
		return n
	}
	return 4
}

// target is one platform manifest to catalog.
type target struct {
	platform string
	digest   v1.Hash
	image    func() (v1.Image, error)
}

// selectPlatforms picks the manifests to catalog: the requested platforms,
// or every runnable platform of an index (attestation manifests such as
// buildx's unknown/unknown are skipped). A single-platform image is its own
// one platform.
func selectPlatforms(desc *remote.Descriptor, want []string) ([]target, error) {
	var available []target
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading the index %s: %w", desc.Digest, err)
		}
		for _, d := range im.Manifests {
			if !d.MediaType.IsImage() || d.Platform == nil || d.Platform.OS == "unknown" {
				continue
			}
			available = append(available, target{
				platform: platformString(*d.Platform),
				digest:   d.Digest,
				image:    func() (v1.Image, error) { return idx.Image(d.Digest) },
			})
		}
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading the config of %s: %w", desc.Digest, err)
		}
		available = []target{{
			platform: platformString(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}),
			digest:   desc.Digest,
			image:    func() (v1.Image, error) { return img, nil },
		}}
	default:
		return nil, fmt.Errorf(`input "image": %s is a %s, not an image or an image index`, desc.Digest, desc.MediaType)
	}
	if len(available) == 0 {
		return nil, fmt.Errorf(`input "image": the index %s lists no runnable platform (only attestations or nested indexes)`, desc.Digest)
	}
	if len(want) == 0 {
		return available, nil
	}
	var have []string
	for _, a := range available {
		have = append(have, a.platform)
	}
	var out []target
	var missing []string
	for _, w := range want {
		i := slices.IndexFunc(available, func(a target) bool { return platformMatches(w, a.platform) })
		if i < 0 {
			missing = append(missing, w)
			continue
		}
		if !slices.ContainsFunc(out, func(t target) bool { return t.digest == available[i].digest }) {
			out = append(out, available[i])
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf(`input "platforms": %s not in the image, which has %s: list only those (or leave the input empty for all)`,
			strings.Join(missing, ", "), strings.Join(have, ", "))
	}
	return out, nil
}

// platformMatches compares os/arch[/variant]; a request without a variant
// matches any variant (linux/arm64 is linux/arm64/v8).
func platformMatches(want, have string) bool {
	if strings.EqualFold(want, have) {
		return true
	}
	w, h := strings.Split(want, "/"), strings.Split(have, "/")
	return len(w) == 2 && len(h) == 3 && strings.EqualFold(w[0], h[0]) && strings.EqualFold(w[1], h[1])
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// fileBase is a platform's file name stem: linux/arm/v7 -> linux-arm-v7.
func fileBase(platform string) string { return strings.ReplaceAll(platform, "/", "-") }

// typeCounts renders package counts by type, largest first: "apk 3, go-module 2".
func typeCounts(byType map[string]int) string {
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	slices.SortFunc(types, func(a, b string) int {
		if byType[a] != byType[b] {
			return byType[b] - byType[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%s %d", t, byType[t])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

type pendingFile struct {
	path string
	data []byte
}

// writeFiles writes every file or none: each goes to a temporary name in
// its directory first, and only when all are written are they renamed into
// place.
func writeFiles(dir string, files []pendingFile) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var temps []string
	defer func() {
		if err != nil {
			for _, t := range temps {
				os.Remove(t)
			}
		}
	}()
	for _, f := range files {
		tmp, err := os.CreateTemp(filepath.Dir(f.path), ".gantry-sbom-*")
		if err != nil {
			return err
		}
		temps = append(temps, tmp.Name())
		if _, err := tmp.Write(f.data); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
	}
	for i, f := range files {
		if err := os.Chmod(temps[i], 0o644); err != nil {
			return err
		}
		if err := os.Rename(temps[i], f.path); err != nil {
			return err
		}
	}
	return nil
}
