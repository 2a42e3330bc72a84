package image

import (
	"path"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

// FuzzLayersAnnotationsPorts: the layers, annotations and ports inputs
// either parse into values the build can use safely (a layer's source
// stays inside the context, its destination is absolute; a port is
// 1-65535 with a known protocol) or are refused naming the input.
func FuzzLayersAnnotationsPorts(f *testing.F) {
	for _, s := range []string{"dist/server-{arch}:/app/server", "../etc/passwd:/x", "/abs:/x", "a:b", "a:", ":b", "c:\\x:/y",
		"index:org.opencontainers.image.title=x", "manifest:k=", "=v", "8080", "53/udp", "0", "65536", "80/http", "080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if specs, err := parseLayers([]string{s}); err != nil {
			if !strings.Contains(err.Error(), `input "layers"`) {
				t.Fatalf("parseLayers(%q): %q does not name the input", s, err)
			}
		} else {
			for _, sp := range specs {
				if !strings.HasPrefix(sp.Dest, "/") || path.IsAbs(sp.Src) || strings.HasPrefix(path.Clean(sp.Src), "..") {
					t.Fatalf("parseLayers(%q) = %+v: unsafe source or destination", s, sp)
				}
			}
		}
		if level, kv, err := parseAnnotation(s); err != nil {
			if !strings.Contains(err.Error(), `input "annotations"`) {
				t.Fatalf("parseAnnotation(%q): %q does not name the input", s, err)
			}
		} else if (level != "both" && level != "index" && level != "manifest") || !strings.Contains(kv, "=") || strings.HasPrefix(kv, "=") {
			t.Fatalf("parseAnnotation(%q) = %q, %q", s, level, kv)
		}
		if ports, err := parsePorts([]string{s}); err != nil {
			if !strings.Contains(err.Error(), `input "ports"`) {
				t.Fatalf("parsePorts(%q): %q does not name the input", s, err)
			}
		} else if len(ports) != 1 {
			t.Fatalf("parsePorts(%q) = %v", s, ports)
		}
	})
}

// FuzzImageInputs: any image, base, platform, env and label value is
// accepted by Validate and then parses (image and base as the build
// parses them), or is refused with errors that each name an input. Never
// a panic.
func FuzzImageInputs(f *testing.F) {
	for _, s := range []string{"ghcr.io/acme/app", "Acme/Prompt-Builder", "ghcr.io/acme/app:1", "app@sha256:abc", "localhost:5000/x",
		"linux/amd64", "linux/arm/v7", "linux", "/amd64", "a/b/c/d", "KEY=value", "=v", "k", "", " ", "UPPER/Case:Tag"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := Inputs{Image: s, Base: s, Platforms: []string{s}, Env: []string{s}, Labels: []string{s}, Push: true, Jobs: 1}
		if err := in.Validate(); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, `input "`) && !strings.HasPrefix(line, `inputs "`) {
					t.Fatalf("Validate with %q: %q does not name the input", s, line)
				}
			}
			return
		}
		reg := newRegistries(Inputs{Log: ghaction.Discard{}})
		if _, err := reg.repository(s); err != nil && !strings.HasPrefix(err.Error(), `input "image"`) {
			t.Fatalf("image %q: %q does not name the input", s, err)
		}
	})
}
