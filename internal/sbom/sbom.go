package sbom

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/registry"
	"github.com/gantry-ci/gantry/internal/release"
)

// Run writes the SBOMs of every requested platform of the image and of
// every entry of the paths input. A tag is resolved once and only the
// digest used after. Platforms and paths are cataloged in parallel; the
// files are written only when every one succeeded, so a failed run leaves
// no partial output.
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
	paths, _ := parsePaths(in.Paths)    // validated above
	// A missing path fails before any network use, like bad input.
	if err := statPaths(paths); err != nil {
		return Outputs{}, err
	}
	hasImage := strings.TrimSpace(in.Image) != ""
	// A broken release record fails before any work, not after it. The
	// record describes an image: a run without one leaves it alone.
	if hasImage {
		if err := release.Check(in.ReleaseFile); err != nil {
			return Outputs{}, err
		}
	}
	// syft's license scanner takes about a second of CPU to build: start
	// it now, so it is ready by the time the first platform's layers are.
	// (On an early error it finishes on its own moments later.)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(in.Jobs))
	cat := newCataloger(gctx)

	var ref name.Digest
	var targets []target
	if hasImage {
		var err error
		if ref, targets, err = resolveImage(ctx, in); err != nil {
			return Outputs{}, timedOut(ctx, in.Timeout, err)
		}
		if err := nameClash(paths, targets); err != nil {
			return Outputs{}, err
		}
	}

	end := in.Log.Group(groupTitle(ref, targets, paths))
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
	pathResults := make([]catalog, len(paths))
	for i, p := range paths {
		g.Go(func() error {
			start := time.Now()
			c, err := cat.catalogPath(p, fmts)
			if err != nil {
				return fmt.Errorf(`input "paths": %s: %w`, p.name, err)
			}
			c.seconds = time.Since(start).Seconds()
			pathResults[i] = c
			in.Log.Infof("%s: %s %s, %d packages (%s) in %.1fs", p.name, p.kind(), p.path, c.packages, typeCounts(c.byType), c.seconds)
			return nil
		})
	}
	err := g.Wait()
	end()
	if err != nil {
		return Outputs{}, timedOut(ctx, in.Timeout, err)
	}

	out := Outputs{
		Files:    map[string][]string{},
		Packages: map[string]int{},
	}
	if hasImage {
		out.Digest = ref.String()
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
	for i, pe := range paths {
		p := PathSBOM{
			Name:     pe.name,
			Path:     pe.path,
			Kind:     pe.kind(),
			Packages: pathResults[i].packages,
			ByType:   pathResults[i].byType,
			Seconds:  pathResults[i].seconds,
		}
		for j, f := range fmts {
			path := filepath.Join(in.OutputDir, pe.name+"."+f.Short+".json")
			p.Files = append(p.Files, path)
			files = append(files, pendingFile{path: path, data: pathResults[i].docs[j]})
		}
		out.Paths = append(out.Paths, p)
		out.Files[pe.name] = p.Files
		out.Packages[pe.name] = p.Packages
	}
	if err := writeFiles(in.OutputDir, files); err != nil {
		return Outputs{}, fmt.Errorf(`writing the SBOM files to %q (input "output-dir"): %w`, in.OutputDir, err)
	}
	for _, f := range files {
		in.Log.Infof("wrote %s (%d bytes)", f.path, len(f.data))
	}

	if hasImage {
		path, err := record(in.ReleaseFile, ref, fmts, out, in.Log)
		if err != nil {
			return out, err
		}
		out.ReleaseFile = path
	}
	return out, nil
}

// resolveImage resolves the image input to a digest, once, and picks the
// platforms to catalog.
func resolveImage(ctx context.Context, in Inputs) (name.Digest, []target, error) {
	conn := registry.Conn{
		Username:  in.RegistryUsername,
		Password:  in.RegistryPassword,
		Insecure:  in.InsecureRegistries,
		Keychain:  in.Keychain,
		Transport: in.Transport,
		Backoff:   in.Backoff,
		UserAgent: "gantry-sbom",
	}
	ref, err := conn.Resolve(ctx, "image", in.Image, in.Log)
	if err != nil {
		return name.Digest{}, nil, err
	}
	desc, err := remote.Get(ref, conn.Options(ctx, ref.String())...)
	if err != nil {
		return name.Digest{}, nil, fmt.Errorf(`input "image": fetching %s: %w (check the reference, registry-username/registry-password, and insecure-registries for a plain-HTTP registry)`, ref, err)
	}
	targets, err := selectPlatforms(desc, in.Platforms)
	if err != nil {
		return name.Digest{}, nil, err
	}
	return ref, targets, nil
}

// statPaths checks that every entry of the paths input exists, naming all
// that do not, and notes which are directories.
func statPaths(paths []pathEntry) error {
	var errs []error
	for i := range paths {
		p := &paths[i]
		abs, err := filepath.Abs(p.path)
		if err != nil {
			errs = append(errs, fmt.Errorf(`input "paths": %s: %w`, p.path, err))
			continue
		}
		fi, err := os.Stat(abs)
		if errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf(`input "paths": %s does not exist (resolved to %s): build it in an earlier step, or fix the path`, p.path, abs))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf(`input "paths": %w`, err))
			continue
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf(`input "paths": %s is neither a directory nor a regular file`, p.path))
			continue
		}
		p.abs, p.dir = abs, fi.IsDir()
	}
	return errors.Join(errs...)
}

func (p pathEntry) kind() string {
	if p.dir {
		return "directory"
	}
	return "file"
}

// nameClash reports a path entry whose files would overwrite a platform's:
// NAME linux-amd64 next to an image with linux/amd64.
func nameClash(paths []pathEntry, targets []target) error {
	var errs []error
	for _, p := range paths {
		for _, t := range targets {
			if p.name == fileBase(t.platform) {
				errs = append(errs, fmt.Errorf(`input "paths": the name %s of %s is also the file name of the image's platform %s, so their SBOM files would overwrite each other: give the path another name with NAME=PATH`, p.name, p.path, t.platform))
			}
		}
	}
	return errors.Join(errs...)
}

// groupTitle names what the run catalogs, for the log group.
func groupTitle(ref name.Digest, targets []target, paths []pathEntry) string {
	var parts []string
	if len(targets) > 0 {
		names := make([]string, len(targets))
		for i, t := range targets {
			names[i] = t.platform
		}
		parts = append(parts, fmt.Sprintf("%s for %s", ref, strings.Join(names, ", ")))
	}
	if len(paths) > 0 {
		names := make([]string, len(paths))
		for i, p := range paths {
			names[i] = p.path
		}
		parts = append(parts, strings.Join(names, ", "))
	}
	return "SBOMs of " + strings.Join(parts, " and of ")
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
