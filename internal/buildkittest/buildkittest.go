// Package buildkittest gives the tests of the Dockerfile mode what they
// need around a real BuildKit: where buildkitd and runc are (make tools
// installs them into bin/), and a multi-arch base image with a shell,
// pushed to the test's registry (there is no Docker Hub here).
package buildkittest

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// Env is the environment the build stage reads to start its own buildkitd
// (GANTRY_BUILDKITD, GANTRY_RUNC): the binaries make tools installed.
// BuildKit's OCI worker is rootful: the test fails (it does not skip)
// when it does not run as root.
func Env(t testing.TB) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the Dockerfile tests start a rootful buildkitd: run them as root (CI does)")
	}
	return map[string]string{
		"GANTRY_BUILDKITD": testproc.Tool(t, "buildkitd"),
		"GANTRY_RUNC":      testproc.Tool(t, "runc"),
	}
}

// Getenv is Env with the rest from the process environment (the build's
// secrets are set by the test on top).
func Getenv(t testing.TB, extra map[string]string) func(string) string {
	env := Env(t)
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
}

// Busybox pushes a base image to ref (REGISTRY/REPO:TAG) and returns ref:
// an OCI index with linux/amd64 and linux/arm64 entries holding Debian's
// static busybox (bin/busybox from make tools) with its applets as
// symlinks, /etc/passwd and /tmp. Both entries hold the amd64 binary (no
// arm64 busybox here, and no emulator): RUN steps belong in
// $BUILDPLATFORM stages, the arm64 stage only COPYs, as the docs advise.
func Busybox(t testing.TB, ref string) string {
	t.Helper()
	bb, err := os.ReadFile(testproc.Tool(t, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	files := []file{{name: "bin/busybox", body: bb, mode: 0o755}, {name: "etc/passwd", body: []byte("root:x:0:0:root:/root:/bin/sh\n"), mode: 0o644}}
	for _, a := range []string{"sh", "echo", "cat", "mkdir", "ls", "wc", "touch", "true", "false", "uname", "sleep", "cp", "rm", "env", "test", "sha256sum", "tr"} {
		files = append(files, file{name: "bin/" + a, link: "busybox"})
	}
	return push(t, ref, files, "amd64", "arm64")
}

// ForeignShell pushes a linux/arm64-only base image whose /bin/sh is an
// arm64 ELF header (enough for the kernel to refuse it with "exec format
// error"): what a real arm64 base is to a RUN step on an amd64 runner
// without an emulator.
func ForeignShell(t testing.TB, ref string) string {
	t.Helper()
	elf := make([]byte, 64)
	copy(elf, "\x7fELF")
	elf[4], elf[5], elf[6] = 2, 1, 1             // 64-bit, little-endian, version 1
	binary.LittleEndian.PutUint16(elf[16:], 2)   // ET_EXEC
	binary.LittleEndian.PutUint16(elf[18:], 183) // EM_AARCH64
	binary.LittleEndian.PutUint32(elf[20:], 1)
	return push(t, ref, []file{{name: "bin/sh", body: elf, mode: 0o755}}, "arm64")
}

type file struct {
	name, link string
	body       []byte
	mode       int64
}

func push(t testing.TB, ref string, files []file, arches ...string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	epoch := time.Unix(0, 0)
	for _, f := range files {
		if d, _, ok := strings.Cut(f.name, "/"); ok && !dirs[d] {
			dirs[d] = true
			_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch})
		}
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: epoch, Typeflag: tar.TypeReg}
		if f.link != "" {
			h = &tar.Header{Name: f.name, Linkname: f.link, Typeflag: tar.TypeSymlink, Mode: 0o777, ModTime: epoch}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range arches {
		img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1), layer)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		cf.Config.Env = []string{"PATH=/bin"}
		cf.Config.Cmd = []string{"/bin/sh"}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("pushing the base image %s: %v", ref, err)
	}
	return ref
}
