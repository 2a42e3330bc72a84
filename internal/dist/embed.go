// Package dist prepares Gantry's own releases: the binary archives' names
// and the release commit, whose action.yml files embed the release version,
// its download URL and the SHA256 of every binary archive, so the setup
// step of each action (scripts/locate.sh → scripts/fetch.sh) installs
// checked binaries instead of building from source.
package dist

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The block between these comment lines in an action.yml step's env is what
// Embed rewrites.
const (
	beginMarker = "# gantry:release"
	endMarker   = "# gantry:release-end"
)

// Platforms are the OS/architecture pairs a release ships binaries for.
var Platforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

// ArchiveName is the release asset holding one binary for one platform,
// e.g. gantry-scan_v1.2.3_linux_amd64.tar.gz.
func ArchiveName(binary, version, goos, goarch string) string {
	return fmt.Sprintf("%s_%s_%s_%s.tar.gz", binary, version, goos, goarch)
}

// Sum is one line of a sha256sum file.
type Sum struct {
	SHA256 string
	Name   string
}

var hexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseSums reads sha256sum output ("<hex>  <name>" or "<hex> *<name>").
// It refuses malformed lines and duplicate names, so a truncated or mixed-up
// checksums file cannot be embedded.
func ParseSums(r io.Reader) ([]Sum, error) {
	var sums []Sum
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		hex, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*")
		if !ok || !hexRE.MatchString(hex) || name == "" || strings.ContainsAny(name, " /\"'\\") {
			return nil, fmt.Errorf("checksums line %d %q: want \"<64 hex digits>  <file name>\" as sha256sum writes it", n, line)
		}
		if seen[name] {
			return nil, fmt.Errorf("checksums line %d: %s is listed twice", n, name)
		}
		seen[name] = true
		sums = append(sums, Sum{SHA256: hex, Name: name})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("the checksums file lists no files")
	}
	return sums, nil
}

// Release is what a release commit embeds.
type Release struct {
	Version string // v1.2.3
	URL     string // base URL of the release's assets
	Sums    []Sum  // only the binary archives are embedded
}

var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

func (r Release) validate() error {
	if !versionRE.MatchString(r.Version) {
		return fmt.Errorf("version %q: want a tag like v1.2.3 (or v1.2.3-rc.1)", r.Version)
	}
	if !strings.HasPrefix(r.URL, "https://") && !strings.HasPrefix(r.URL, "http://") {
		return fmt.Errorf("download URL %q: want an http(s) URL of the release's assets", r.URL)
	}
	if strings.ContainsAny(r.URL, "\"\\\n") {
		return fmt.Errorf("download URL %q contains a quote, backslash or newline", r.URL)
	}
	if len(r.archives()) == 0 {
		return fmt.Errorf("the checksums list no binary archive of %s (want names like %s)", r.Version, ArchiveName("gantry-build", r.Version, "linux", "amd64"))
	}
	return nil
}

// archives returns the sums of the release's binary archives, sorted by name.
func (r Release) archives() []Sum {
	var out []Sum
	for _, s := range r.Sums {
		if strings.Contains(s.Name, "_"+r.Version+"_") && strings.HasSuffix(s.Name, ".tar.gz") {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Sum) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Embed writes the release into every action.yml under root (root/action.yml
// and root/actions/*/action.yml) that carries the marker block, and returns
// the files it changed. Every file is rewritten only after all of them
// parsed, so a bad file leaves the tree as it was.
func Embed(root string, r Release) ([]string, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	files, err := ActionFiles(root)
	if err != nil {
		return nil, err
	}
	type change struct {
		path string
		data []byte
	}
	var changes []change
	for _, f := range files {
		old, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		updated, n, err := embedFile(old, r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if n == 0 {
			continue
		}
		if !bytes.Equal(old, updated) {
			changes = append(changes, change{f, updated})
		}
	}
	var changed []string
	for _, c := range changes {
		if err := os.WriteFile(c.path, c.data, 0o644); err != nil {
			return changed, err
		}
		changed = append(changed, c.path)
	}
	return changed, nil
}

// ActionFiles lists root/action.yml and root/actions/*/action.yml.
func ActionFiles(root string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(root, "actions", "*", "action.yml"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "action.yml")); err == nil {
		files = append([]string{filepath.Join(root, "action.yml")}, files...)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no action.yml under %s", root)
	}
	return files, nil
}

// embedFile replaces every marker block of one file; n counts the blocks.
func embedFile(data []byte, r Release) (out []byte, n int, err error) {
	lines := strings.SplitAfter(string(data), "\n")
	var b strings.Builder
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(trimmed, beginMarker) || strings.HasPrefix(trimmed, endMarker) {
			b.WriteString(line)
			continue
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
		end := -1
		for j := i + 1; j < len(lines); j++ {
			t := strings.TrimSpace(lines[j])
			if strings.HasPrefix(t, endMarker) {
				end = j
				break
			}
			if strings.HasPrefix(t, beginMarker) {
				break
			}
		}
		if end < 0 {
			return nil, 0, fmt.Errorf("line %d: %q without a matching %q", i+1, beginMarker, endMarker)
		}
		b.WriteString(line)
		b.WriteString(block(indent, r))
		b.WriteString(lines[end])
		i = end
		n++
	}
	return []byte(b.String()), n, nil
}

func block(indent string, r Release) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%sGANTRY_RELEASE: %q\n", indent, r.Version)
	fmt.Fprintf(&b, "%sGANTRY_RELEASE_URL: %q\n", indent, strings.TrimSuffix(r.URL, "/"))
	fmt.Fprintf(&b, "%sGANTRY_RELEASE_SHA256: |\n", indent)
	for _, s := range r.archives() {
		fmt.Fprintf(&b, "%s  %s  %s\n", indent, s.SHA256, s.Name)
	}
	return b.String()
}
