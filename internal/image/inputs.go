// Package image is Gantry's build stage. It builds in one of two modes and
// pushes the result by digest: it appends an application's layers to every
// requested platform of a multi-arch base image, without Docker or QEMU
// (the layering mode), or it builds a Dockerfile with BuildKit (the
// Dockerfile mode, selected by the dockerfile input). It also merges
// per-platform builds into one index.
package image

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/metadata"
)

// Inputs are the build stage's inputs. Fields tagged input:"..." are the
// action's public interface (actions/build/action.yml); the rest are set by
// the caller from the runner's environment.
type Inputs struct {
	Image              string        `input:"image" required:"true"`
	Base               string        `input:"base"`
	Platforms          []string      `input:"platforms" default:"linux/amd64,linux/arm64"`
	Context            string        `input:"context" default:"."`
	Layers             []string      `input:"layers" list:"lines"`
	Entrypoint         []string      `input:"entrypoint" list:"argv"`
	Cmd                []string      `input:"cmd" list:"argv"`
	Env                []string      `input:"env" list:"lines"`
	Workdir            string        `input:"workdir"`
	User               string        `input:"user"`
	Ports              []string      `input:"ports"`
	Labels             []string      `input:"labels" list:"lines"`
	Annotations        []string      `input:"annotations" list:"lines"`
	Tags               []string      `input:"tags" list:"lines"`
	Push               bool          `input:"push" default:"true"`
	PushByDigest       bool          `input:"push-by-digest" default:"false"`
	Merge              []string      `input:"merge" list:"lines"`
	Dockerfile         string        `input:"dockerfile"`
	BuildArgs          []string      `input:"build-args" list:"lines"`
	Target             string        `input:"target"`
	Secrets            []string      `input:"secrets" list:"lines"`
	CacheFrom          []string      `input:"cache-from" list:"lines"`
	CacheTo            []string      `input:"cache-to" list:"lines"`
	BuildKit           string        `input:"buildkit"`
	AllowSyntax        bool          `input:"allow-syntax" default:"false"`
	OCILayout          string        `input:"oci-layout" default:"oci-layout"`
	RegistryUsername   string        `input:"registry-username"`
	RegistryPassword   string        `input:"registry-password" secret:"true"`
	InsecureRegistries []string      `input:"insecure-registries"`
	ReleaseFile        string        `input:"release-file" default:"gantry-release.json"`
	Jobs               int           `input:"jobs" default:"4"`
	Timeout            time.Duration `input:"timeout" default:"15m"`

	// Git is the GitHub context tags and labels are derived from.
	Git metadata.Context `input:"-"`
	// Created is the timestamp of every file, history entry and the config;
	// the caller takes it from SOURCE_DATE_EPOCH or the commit time, so the
	// same commit always gives the same digest.
	Created time.Time `input:"-"`
	// Log receives progress lines; nil discards them.
	Log ghaction.Logger `input:"-"`
	// Keychain resolves registry credentials when no username/password is
	// given; nil means the Docker config keychain.
	Keychain authn.Keychain `input:"-"`
	// Transport is the HTTP transport to registries; nil means the default.
	Transport http.RoundTripper `input:"-"`
	// Backoff is how registry requests are retried; zero means 1s, 2s, 4s, 8s, 16s.
	Backoff remote.Backoff `input:"-"`
	// Getenv reads the environment variables the secrets input names (and
	// the Actions cache token); nil means os.Getenv.
	Getenv func(string) string `input:"-"`
}

func (in Inputs) getenv() func(string) string {
	if in.Getenv != nil {
		return in.Getenv
	}
	return os.Getenv
}

// Outputs are the build stage's results.
type Outputs struct {
	Digest          string            `output:"digest"`
	Image           string            `output:"image"`
	Tags            []string          `output:"tags"`
	PlatformDigests map[string]string `output:"platform-digests"`
	ReleaseFile     string            `output:"release-file"`

	// Platforms has the per-platform details for the job summary.
	Platforms []PlatformResult `output:"-"`
	// Base is the resolved base index (repo@sha256:...); empty for a merge.
	Base string `output:"-"`
	// ByDigest is true when no tag was pushed on purpose (push-by-digest).
	ByDigest bool `output:"-"`
	// Merged lists the merge inputs the index was made from.
	Merged []string `output:"-"`
	// Dockerfile describes a Dockerfile build (nil in the other modes).
	Dockerfile *DockerfileResult `output:"-"`
	// Pushed is false when the image went to an OCI layout instead.
	Pushed bool `output:"-"`
	// Uploaded is the number of blob bytes actually sent to the registry.
	Uploaded int64 `output:"-"`
}

// PlatformResult describes one platform's manifest.
type PlatformResult struct {
	Platform   string `json:"platform"`
	Digest     string `json:"digest"`
	BaseDigest string `json:"baseDigest"`
	Size       int64  `json:"size"` // compressed bytes of all layers
	AppSize    int64  `json:"appSize"`
}

// layerSpec is one parsed "SRC:DEST" line.
type layerSpec struct {
	Src, Dest string
}

// Validate checks inputs that need no network, so bad input fails in
// milliseconds with a message that names the input and the fix.
func (in *Inputs) Validate() error {
	var errs []error
	if in.Image == "" {
		errs = append(errs, errors.New(`input "image" is required: set the repository to push to, e.g. ghcr.io/acme/app`))
	} else if strings.ContainsAny(in.Image, "@") || strings.Contains(in.Image[strings.LastIndex(in.Image, "/")+1:], ":") {
		errs = append(errs, fmt.Errorf(`input "image" is %q: give the repository only (e.g. ghcr.io/acme/app) and put tags in the "tags" input`, in.Image))
	}
	if in.Dockerfile != "" {
		errs = append(errs, in.validateDockerfile()...)
	} else {
		// The Dockerfile mode's inputs would be dropped by the other modes.
		for input, set := range map[string]bool{"build-args": len(in.BuildArgs) > 0, "target": in.Target != "", "secrets": len(in.Secrets) > 0,
			"cache-from": len(in.CacheFrom) > 0, "cache-to": len(in.CacheTo) > 0, "buildkit": in.BuildKit != "", "allow-syntax": in.AllowSyntax} {
			if set {
				errs = append(errs, fmt.Errorf(`input %q is set but "dockerfile" is not: %q belongs to the Dockerfile mode; set "dockerfile" (e.g. Dockerfile) to build with BuildKit, or leave %q out`, input, input, input))
			}
		}
	}
	if len(in.Merge) > 0 && in.Dockerfile != "" {
		errs = append(errs, errors.New(`inputs "merge" and "dockerfile" are both set: a merge makes an index of images already built; build each platform with "dockerfile" and "push-by-digest: true", then merge their digests in another job`))
	} else if in.Dockerfile != "" {
		// checked by validateDockerfile
	} else if len(in.Merge) > 0 {
		// A merge lists images that are already built: an input that would
		// change them cannot be honoured, so it is refused, not dropped.
		for input, set := range map[string]bool{"base": in.Base != "", "layers": len(in.Layers) > 0, "entrypoint": len(in.Entrypoint) > 0,
			"cmd": len(in.Cmd) > 0, "env": len(in.Env) > 0, "workdir": in.Workdir != "", "user": in.User != "", "ports": len(in.Ports) > 0} {
			if set {
				errs = append(errs, fmt.Errorf(`input %q is set with "merge": a merge makes an index of images already built and changes none of them; set %q in the per-platform builds`, input, input))
			}
		}
		if !in.Push {
			errs = append(errs, errors.New(`input "push" is false with "merge": a merge reads the per-platform images from the registry and pushes the index there; leave push true`))
		}
	} else if in.Base == "" {
		errs = append(errs, errors.New(`input "base" is required: set a multi-arch base image, e.g. gcr.io/distroless/static-debian12:nonroot (or "merge" to make one index of per-platform builds)`))
	}
	if in.PushByDigest && len(in.Tags) > 0 {
		errs = append(errs, errors.New(`inputs "push-by-digest" and "tags" are both set: a push by digest moves no tag; set the tags on the job that merges the digests (input "merge")`))
	}
	if in.PushByDigest && !in.Push {
		errs = append(errs, errors.New(`input "push-by-digest" is true but "push" is false: push-by-digest pushes without tags; set push true, or push-by-digest false to write an OCI layout`))
	}
	if len(in.Platforms) == 0 {
		errs = append(errs, errors.New(`input "platforms" is empty: list platforms such as linux/amd64,linux/arm64`))
	}
	for _, p := range in.Platforms {
		if parts := strings.Split(p, "/"); len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			errs = append(errs, fmt.Errorf(`input "platforms": %q is not os/arch[/variant], e.g. linux/arm64 or linux/arm/v7`, p))
		}
	}
	if _, err := parseLayers(in.Layers); err != nil {
		errs = append(errs, err)
	}
	for _, kv := range in.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf(`input "env": %q is not KEY=VALUE`, kv))
		}
	}
	for _, kv := range in.Labels {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf(`input "labels": %q is not key=value`, kv))
		}
	}
	for _, kv := range in.Annotations {
		if _, _, err := parseAnnotation(kv); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := parsePorts(in.Ports); err != nil {
		errs = append(errs, err)
	}
	if (in.RegistryUsername == "") != (in.RegistryPassword == "") {
		errs = append(errs, errors.New(`inputs "registry-username" and "registry-password" go together: set both (for GHCR: github.actor and secrets.GITHUB_TOKEN) or neither`))
	}
	if !in.Push && in.OCILayout == "" {
		errs = append(errs, errors.New(`input "push" is false but "oci-layout" is empty: set a directory to write the image to`))
	}
	if in.Jobs < 0 {
		errs = append(errs, fmt.Errorf(`input "jobs" is %d: use a positive number`, in.Jobs))
	}
	return errors.Join(errs...)
}

func parseLayers(lines []string) ([]layerSpec, error) {
	var specs []layerSpec
	for _, line := range lines {
		i := strings.LastIndex(line, ":")
		if i <= 0 || i == len(line)-1 {
			return nil, fmt.Errorf(`input "layers": %q is not SRC:DEST, e.g. dist/server-{arch}:/app/server`, line)
		}
		src, dest := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		if !strings.HasPrefix(dest, "/") {
			return nil, fmt.Errorf(`input "layers": destination %q in %q must be an absolute path in the image, e.g. /app`, dest, line)
		}
		if path.IsAbs(src) || strings.HasPrefix(path.Clean(src), "..") {
			return nil, fmt.Errorf(`input "layers": source %q in %q must be relative to the "context" input and stay inside it`, src, line)
		}
		specs = append(specs, layerSpec{Src: src, Dest: dest})
	}
	return specs, nil
}

// parseAnnotation splits "[index:|manifest:]key=value".
func parseAnnotation(s string) (level, key string, err error) {
	level = "both"
	for _, l := range []string{"index:", "manifest:"} {
		if rest, ok := strings.CutPrefix(s, l); ok {
			level, s = strings.TrimSuffix(l, ":"), rest
		}
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf(`input "annotations": %q is not [index:|manifest:]key=value`, s)
	}
	return level, k + "=" + v, nil
}

func parsePorts(ports []string) (map[string]struct{}, error) {
	out := map[string]struct{}{}
	for _, p := range ports {
		num, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		var n int
		if _, err := fmt.Sscanf(num, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != num || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return nil, fmt.Errorf(`input "ports": %q is not PORT[/tcp|udp|sctp], e.g. 8080 or 53/udp`, p)
		}
		out[num+"/"+proto] = struct{}{}
	}
	return out, nil
}
