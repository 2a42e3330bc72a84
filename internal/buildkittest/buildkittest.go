// Package buildkittest gives the tests of the Dockerfile mode what they
// need around a real BuildKit: where buildkitd and runc are (make tools
// installs them into bin/), and a multi-arch base image with a shell,
// pushed to the test's registry (there is no Docker Hub here).
package buildkittest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"os/exec"
	"path"
	"path/filepath"
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

// Busybox pushes a base image to ref (REGISTRY/REPO:TAG, with opts such
// as credentials) and returns ref:
// an OCI index with linux/amd64 and linux/arm64 entries holding Debian's
// static busybox (bin/busybox from make tools) with its applets as
// symlinks, /etc/passwd and /tmp. Both entries hold the amd64 binary (no
// arm64 busybox here, and no emulator): RUN steps belong in
// $BUILDPLATFORM stages, the arm64 stage only COPYs, as the docs advise.
func Busybox(t testing.TB, ref string, opts ...remote.Option) string {
	t.Helper()
	bb, err := os.ReadFile(testproc.Tool(t, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	files := []file{{name: "bin/busybox", body: bb, mode: 0o755}, {name: "etc/passwd", body: []byte("root:x:0:0:root:/root:/bin/sh\n"), mode: 0o644}}
	for _, a := range []string{"sh", "echo", "cat", "mkdir", "ls", "wc", "touch", "true", "false", "uname", "sleep", "cp", "rm", "env", "test", "sha256sum", "tr"} {
		files = append(files, file{name: "bin/" + a, link: "busybox"})
	}
	return push(t, ref, files, []string{"amd64", "arm64"}, opts...)
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
	return push(t, ref, []file{{name: "bin/sh", body: elf, mode: 0o755}}, []string{"arm64"})
}

type file struct {
	name, link string
	body       []byte
	mode       int64
}

func push(t testing.TB, ref string, files []file, arches []string, opts ...remote.Option) string {
	return pushEnv(t, ref, files, arches, nil, opts...)
}

func pushEnv(t testing.TB, ref string, files []file, arches, env []string, opts ...remote.Option) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	epoch := time.Unix(0, 0)
	for _, f := range files {
		var parents []string
		for d := path.Dir(f.name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parents[i] + "/", Mode: 0o755, ModTime: epoch})
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
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()), tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestSpeed))
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
		cf.Config.Env = append([]string{"PATH=/usr/local/bin:/bin"}, env...)
		cf.Config.Cmd = []string{"/bin/sh"}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	if err := remote.WriteIndex(r, idx, opts...); err != nil {
		t.Fatalf("pushing the base image %s: %v", ref, err)
	}
	return ref
}

// Node pushes a linux/amd64 + linux/arm64 index to ref with this machine's
// node (and the libraries it links), npm and busybox's shell: a stand-in
// for node:20-bookworm-slim, which is not reachable here. Like Busybox,
// both entries hold the amd64 binaries, so npm ci runs for either target
// on this amd64 machine (a real arm64 base would need an arm64 runner).
func Node(t testing.TB, ref string, opts ...remote.Option) string {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH (%v): the Node Dockerfile tests need Node.js", err)
	}
	if nodeBin, err = filepath.EvalSymlinks(nodeBin); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(testproc.Tool(t, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	files := []file{{name: "bin/busybox", body: bb, mode: 0o755}, {name: "etc/passwd", body: []byte("root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n"), mode: 0o644}}
	for _, a := range []string{"sh", "cat", "ls", "mkdir", "rm", "cp", "env", "uname", "true"} {
		files = append(files, file{name: "bin/" + a, link: "busybox"})
	}
	add := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, file{name: dst, body: b, mode: 0o755})
	}
	add(nodeBin, "usr/local/bin/node")
	// The shared libraries node links, at the paths the loader looks in.
	out, err := exec.Command("ldd", nodeBin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", nodeBin, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			t.Fatal(err)
		}
		add(real, strings.TrimPrefix(lib, "/"))
	}
	// npm, from node's prefix.
	npmDir := filepath.Join(filepath.Dir(filepath.Dir(nodeBin)), "lib", "node_modules", "npm")
	if _, err := os.Stat(filepath.Join(npmDir, "bin", "npm-cli.js")); err != nil {
		t.Fatalf("npm not found next to node (%v)", err)
	}
	err = filepath.Walk(npmDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(npmDir, p)
		dst := "usr/local/lib/node_modules/npm/" + filepath.ToSlash(rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			files = append(files, file{name: dst, link: target})
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files = append(files, file{name: dst, body: b, mode: int64(fi.Mode().Perm())})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, file{name: "usr/local/bin/npm", link: "../lib/node_modules/npm/bin/npm-cli.js"},
		file{name: "usr/bin/env", link: "/bin/busybox"}) // npm-cli.js starts #!/usr/bin/env node
	// This machine's CA bundle, as a company's base image carries its
	// proxy's CA (this machine reaches the npm registry through one).
	var env []string
	const bundle = "/etc/ssl/certs/ca-certificates.crt"
	if b, err := os.ReadFile(bundle); err == nil {
		files = append(files, file{name: strings.TrimPrefix(bundle, "/"), body: b, mode: 0o644})
		env = append(env, "NODE_EXTRA_CA_CERTS="+bundle)
	}
	return pushEnv(t, ref, files, []string{"amd64", "arm64"}, env, opts...)
}

// Daemon starts a buildkitd (bin/buildkitd, OCI worker with bin/runc) on a
// private socket and state directory for the test, stopped at its end, and
// returns its address: for tests that give the build stage a daemon
// (input buildkit) or compare it with buildctl on the same daemon.
func Daemon(t testing.TB) string {
	t.Helper()
	env := Env(t)
	dir, err := os.MkdirTemp("", "bkt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	addr := "unix://" + filepath.Join(dir, "buildkitd.sock")
	p, err := testproc.Start(testproc.Spec{
		Bin: env["GANTRY_BUILDKITD"],
		Args: []string{"--root", filepath.Join(dir, "root"), "--addr", addr, "--oci-worker=true",
			"--oci-worker-binary", env["GANTRY_RUNC"], "--containerd-worker=false"},
		Env:   []string{"PATH=" + os.Getenv("PATH")},
		Log:   filepath.Join(dir, "buildkitd.log"),
		Grace: 15 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	buildctl := testproc.Tool(t, "buildctl")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if exec.Command(buildctl, "--addr", addr, "debug", "workers").Run() == nil {
			return addr
		}
		if p.Exited() || time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "buildkitd.log"))
			t.Fatalf("buildkitd did not start on %s:\n%s", addr, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
