package ghrelease

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// localAsset is a file to upload.
type localAsset struct {
	Path        string // absolute
	Name        string // the asset's name: the file's base name
	Size        int64
	Digest      string // sha256:…
	ContentType string
	From        string // the input it came from, for errors
}

// resolveAssets expands the assets input: each item is a path or a glob
// (with ** for any number of directories), relative to dir. Every item must
// match at least one file and no item may match a directory, so a build
// that failed to produce a file fails here, before anything is created.
// Files matched twice are uploaded once; two files with the same base name
// are an error, since a release holds one asset per name.
func resolveAssets(dir string, patterns []string) ([]localAsset, error) {
	var errs []error
	var out []localAsset
	seen := map[string]bool{}
	byName := map[string]string{}
	for _, p := range patterns {
		full := p
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, p)
		}
		var matches []string
		var err error
		switch {
		case strings.Contains(p, "**"):
			matches, err = globStar(full)
		case strings.ContainsAny(p, "*?["):
			matches, err = filepath.Glob(full)
		default:
			if _, serr := os.Stat(full); serr == nil {
				matches = []string{full}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf(`input "assets": pattern %q is malformed (%v): use *, ?, [a-z] and ** as in dist/**/*.tar.gz`, p, err))
			continue
		}
		if len(matches) == 0 {
			what := "pattern %q matches no file"
			if !strings.ContainsAny(p, "*?[") {
				what = "%q does not exist"
			}
			errs = append(errs, fmt.Errorf(`input "assets": `+what+` (looked in %s): the build did not produce it or the path is wrong; nothing was released`, p, filepath.Dir(full)))
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			abs, err := filepath.Abs(m)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fi, err := os.Stat(abs)
			if err != nil {
				errs = append(errs, fmt.Errorf(`input "assets": %s: %w`, m, err))
				continue
			}
			if fi.IsDir() {
				errs = append(errs, fmt.Errorf(`input "assets": %s (from %q) is a directory: name its files instead, e.g. %s`, rel(dir, abs), p, path.Join(filepath.ToSlash(rel(dir, abs)), "*")))
				continue
			}
			if !fi.Mode().IsRegular() {
				errs = append(errs, fmt.Errorf(`input "assets": %s (from %q) is not a regular file`, rel(dir, abs), p))
				continue
			}
			if seen[abs] {
				continue
			}
			seen[abs] = true
			name := filepath.Base(abs)
			if other, ok := byName[name]; ok {
				errs = append(errs, fmt.Errorf(`input "assets": %s and %s would both be the asset %q (a release holds one asset per name): rename one, e.g. with the platform in the name`, other, rel(dir, abs), name))
				continue
			}
			byName[name] = rel(dir, abs)
			out = append(out, localAsset{Path: abs, Name: name, Size: fi.Size(), ContentType: contentType(name), From: p})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := range out {
		d, err := fileDigest(out[i].Path)
		if err != nil {
			return nil, fmt.Errorf(`input "assets": reading %s: %w`, out[i].Path, err)
		}
		out[i].Digest = d
	}
	return out, nil
}

func rel(dir, p string) string {
	base := dir
	if base == "" {
		base, _ = os.Getwd()
	}
	if r, err := filepath.Rel(base, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// globStar matches a pattern in which ** stands for any number of
// directories (zero included). It returns regular files only: "dist/**"
// means every file under dist.
func globStar(pattern string) ([]string, error) {
	pattern = filepath.ToSlash(filepath.Clean(pattern))
	segs := strings.Split(pattern, "/")
	// The walk starts at the longest prefix without a wildcard.
	i := 0
	for i < len(segs)-1 && !strings.ContainsAny(segs[i], "*?[") {
		i++
	}
	root := strings.Join(segs[:i], "/")
	switch {
	case i == 0:
		root = "."
	case root == "":
		root = "/"
	}
	for _, s := range segs[i:] {
		if s != "**" {
			if _, err := path.Match(s, ""); err != nil {
				return nil, err
			}
		}
	}
	var out []string
	err := filepath.WalkDir(filepath.FromSlash(root), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == filepath.FromSlash(root) && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		r, err := filepath.Rel(filepath.FromSlash(root), p)
		if err != nil {
			return err
		}
		if matchSegments(segs[i:], strings.Split(filepath.ToSlash(r), "/")) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func matchSegments(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		for k := 0; k <= len(name); k++ {
			if matchSegments(pat[1:], name[k:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, _ := path.Match(pat[0], name[0])
	return ok && matchSegments(pat[1:], name[1:])
}

func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// contentType is the media type an asset is uploaded with. GitHub serves
// the asset with it, so a browser shows text instead of downloading it.
func contentType(name string) string {
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".sigstore.json"), strings.HasSuffix(lower, ".json"):
		return "application/json"
	case strings.HasSuffix(lower, ".md"):
		return "text/markdown; charset=utf-8"
	case strings.HasSuffix(lower, ".txt"), isChecksums(name), strings.HasSuffix(lower, ".pub"), strings.HasSuffix(lower, ".pem"):
		return "text/plain; charset=utf-8"
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		return "application/gzip"
	}
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// isChecksums reports whether an asset is a checksums file users check
// with sha256sum --check.
func isChecksums(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), "checksums.txt") || strings.HasSuffix(name, "SHA256SUMS")
}

// checksumLine matches "<hex>  name" (text) and "<hex> *name" (binary)
// lines as sha256sum writes them, and BSD-style "SHA256 (name) = <hex>".
var (
	checksumLine = regexp.MustCompile(`^([0-9a-fA-F]{64}) [ *](.+)$`)
	checksumBSD  = regexp.MustCompile(`^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$`)
)

// checkChecksums reads every checksums file among the assets and compares
// the sums it lists with the assets of those names, so a release never
// ships a checksums file that does not match its files. A listed name with
// a directory (dist/app.tar.gz) is an error too: release assets download
// into one directory, where sha256sum --check would not find it.
func checkChecksums(assets []localAsset) error {
	byName := map[string]localAsset{}
	for _, a := range assets {
		byName[a.Name] = a
	}
	var errs []error
	for _, c := range assets {
		if !isChecksums(c.Name) {
			continue
		}
		f, err := os.Open(c.Path)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			var sum, name string
			if m := checksumLine.FindStringSubmatch(line); m != nil {
				sum, name = m[1], m[2]
			} else if m := checksumBSD.FindStringSubmatch(line); m != nil {
				name, sum = m[1], m[2]
			} else {
				continue
			}
			name = strings.TrimPrefix(name, "./")
			base := path.Base(filepath.ToSlash(name))
			a, ok := byName[base]
			if !ok {
				continue
			}
			if name != base {
				errs = append(errs, fmt.Errorf(`input "assets": %s lists %q with a directory, but the release asset is %q, so "sha256sum --check %s" would not find it: write the sums from inside the directory (cd %s && sha256sum * > %s)`, c.Name, name, base, c.Name, path.Dir(name), c.Name))
				continue
			}
			if "sha256:"+strings.ToLower(sum) != a.Digest {
				errs = append(errs, fmt.Errorf(`input "assets": %s says %s has sha256 %s, but the file has %s: regenerate %s after the last change to %s`, c.Name, base, strings.ToLower(sum), strings.TrimPrefix(a.Digest, "sha256:"), c.Name, base))
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", c.Path, err)
		}
	}
	return errors.Join(errs...)
}
