package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file in a layer, with everything that makes layers differ
// between hosts (owner, times, order) already fixed.
type entry struct {
	name string // path in the image, without the leading slash
	src  string // host path; empty for directories
	mode fs.FileMode
	link string // symlink target
}

// resolveSrc substitutes the platform placeholders in a layer's source.
func resolveSrc(src string, p v1.Platform) string {
	return strings.NewReplacer("{os}", p.OS, "{arch}", p.Architecture, "{variant}", p.Variant).Replace(src)
}

// collect lists the entries for "src:dest", src relative to contextDir.
// A file goes to dest (or into dest when dest ends in '/'); a directory's
// contents go under dest.
func collect(contextDir, src, dest string) ([]entry, error) {
	root := filepath.Join(contextDir, filepath.FromSlash(src))
	fi, err := os.Lstat(root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf(`input "layers": %s does not exist in context %q: build it before this step or fix the path`, src, contextDir)
		}
		return nil, fmt.Errorf(`input "layers": %w`, err)
	}
	intoDir := strings.HasSuffix(dest, "/")
	dest = strings.TrimPrefix(path.Clean(dest), "/")
	if !fi.IsDir() {
		if intoDir || dest == "" {
			dest = path.Join(dest, fi.Name())
		}
		e, err := fileEntry(root, dest, fi)
		if err != nil {
			return nil, err
		}
		return []entry{e}, nil
	}
	var entries []entry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := path.Join(dest, filepath.ToSlash(rel))
		if rel == "." {
			name = dest
		}
		if name == "" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e, err := fileEntry(p, name, info)
		if err != nil {
			return err
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", src, err)
	}
	return entries, nil
}

func fileEntry(hostPath, name string, fi fs.FileInfo) (entry, error) {
	e := entry{name: name}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(hostPath)
		if err != nil {
			return e, err
		}
		e.mode, e.link = fs.ModeSymlink|0o777, target
	case fi.IsDir():
		e.mode = fs.ModeDir | 0o755
	case fi.Mode().IsRegular():
		// Keep the execute bits (they matter) but not the host's umask.
		e.mode, e.src = 0o644, hostPath
		if fi.Mode()&0o111 != 0 {
			e.mode = 0o755
		}
	default:
		return e, fmt.Errorf("%s is not a regular file, directory or symlink", hostPath)
	}
	return e, nil
}

// writeTar writes entries as a tar stream with parent directories, sorted
// names, uid/gid 0 and every time set to created.
func writeTar(w io.Writer, entries []entry, created time.Time) error {
	byName := map[string]entry{}
	for _, e := range entries {
		for dir := path.Dir(e.name); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if _, ok := byName[dir]; !ok {
				byName[dir] = entry{name: dir, mode: fs.ModeDir | 0o755}
			}
		}
		byName[e.name] = e // a later layer line wins over an earlier one
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)

	tw := tar.NewWriter(w)
	for _, n := range names {
		e := byName[n]
		hdr := &tar.Header{
			Name:    n,
			Mode:    int64(e.mode.Perm()),
			ModTime: created,
			Format:  tar.FormatPAX,
		}
		var f *os.File
		switch {
		case e.mode&fs.ModeDir != 0:
			hdr.Typeflag, hdr.Name = tar.TypeDir, n+"/"
		case e.mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		default:
			var err error
			if f, err = os.Open(e.src); err != nil {
				return err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return err
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		}
		if err := tw.WriteHeader(hdr); err != nil {
			if f != nil {
				f.Close()
			}
			return err
		}
		if f != nil {
			_, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("adding %s: %w", e.src, err)
			}
		}
	}
	return tw.Close()
}

// buildLayer compresses the entries once into memory and returns a layer
// whose digest, diff ID and upload all read that one buffer. Compressing
// once, not once per read as a tarball.LayerFromFile of a plain tar does,
// is where most of the speed over crane append comes from.
func buildLayer(entries []entry, created time.Time, mt types.MediaType) (v1.Layer, error) {
	var buf bytes.Buffer
	// BestSpeed, as crane and ko use: layers of compiled binaries barely
	// shrink further at higher levels, and compression is most of a build's
	// CPU time.
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := writeTar(zw, entries, created); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(mt))
}
