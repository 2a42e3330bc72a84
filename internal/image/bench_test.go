package image_test

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/buildkittest"
	"github.com/gantry-ci/gantry/internal/image"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// BenchmarkBuildPushVsCrane times gantry-build's build and push of the demo
// image (the sample app cross-compiled for two platforms plus a shared
// static layer) against the crane CLI doing the same work — one
// `crane append` per platform onto the same base, then `crane index append`
// — in the same run, on fresh registries, alternating so machine noise hits
// both alike. crane gets its layer tarballs ready-made (not timed).
// Reported: gantry-ms/op, crane-ms/op and gantry/crane (goal: <= 1).
//
// It needs the crane binary: CRANE=path, or bin/crane from `make tools`.
func BenchmarkBuildPushVsCrane(b *testing.B) {
	crane := os.Getenv("CRANE")
	if crane == "" {
		crane, _ = filepath.Abs("../../bin/crane")
	}
	if _, err := os.Stat(crane); err != nil {
		b.Fatalf("crane CLI not found at %s: run `make tools` or set CRANE", crane)
	}
	ctxDir := b.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", filepath.Join(ctxDir, "dist", "server-"+arch), ".")
		cmd.Dir = "../../testdata/app"
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("building the sample app: %v\n%s", err, out)
		}
	}
	if err := os.CopyFS(filepath.Join(ctxDir, "static"), os.DirFS("../../testdata/demo/static")); err != nil {
		b.Fatal(err)
	}
	// crane append takes tarballs; make the same layers for it up front.
	tars := map[string][]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		server := filepath.Join(ctxDir, "server-"+arch+".tar")
		writeBenchTar(b, server, map[string]string{"app/server": filepath.Join(ctxDir, "dist", "server-"+arch)})
		static := filepath.Join(ctxDir, "static.tar")
		writeBenchTar(b, static, map[string]string{"app/static/index.html": filepath.Join(ctxDir, "static", "index.html")})
		tars[arch] = []string{server, static}
	}

	var gantry, craneTime time.Duration
	for i := 0; i < b.N; i++ {
		// gantry-build
		reg, base := benchRegistry(b)
		in := image.Inputs{
			Image: reg.Host + "/acme/app", Base: base, Platforms: []string{"linux/amd64", "linux/arm64"},
			Context: ctxDir, Layers: []string{"dist/server-{arch}:/app/server", "static:/app/static"},
			Push: true, Tags: []string{"type=raw,value=latest"}, Created: created, Jobs: 4,
		}
		start := time.Now()
		if _, err := image.Run(b.Context(), in); err != nil {
			b.Fatal(err)
		}
		gantry += time.Since(start)
		reg.Close()

		// crane
		reg, base = benchRegistry(b)
		repo := reg.Host + "/acme/app"
		start = time.Now()
		for _, arch := range []string{"amd64", "arm64"} {
			args := []string{"append", "--platform", "linux/" + arch, "-b", base, "-t", repo + ":" + arch}
			for _, t := range tars[arch] {
				args = append(args, "-f", t)
			}
			runCrane(b, crane, args...)
		}
		runCrane(b, crane, "index", "append", "-m", repo+":amd64", "-m", repo+":arm64", "-t", repo+":latest")
		craneTime += time.Since(start)
		reg.Close()
	}
	b.ReportMetric(float64(gantry.Milliseconds())/float64(b.N), "gantry-ms/op")
	b.ReportMetric(float64(craneTime.Milliseconds())/float64(b.N), "crane-ms/op")
	b.ReportMetric(float64(gantry)/float64(craneTime), "gantry/crane")
}

func benchRegistry(b *testing.B) (*ocitest.Registry, string) {
	b.Helper()
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		b.Fatal(err)
	}
	base, _, err := ocitest.PushBase(b.Context(), reg.Host, "library/base:1", []string{"linux/amd64", "linux/arm64"}, ocitest.BaseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return reg, base
}

func runCrane(b *testing.B, crane string, args ...string) {
	b.Helper()
	out, err := exec.Command(crane, args...).CombinedOutput()
	if err != nil {
		b.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeBenchTar(b *testing.B, path string, files map[string]string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for name, src := range files {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		fi, _ := in.Stat()
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(tw, in); err != nil {
			b.Fatal(err)
		}
		in.Close()
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDockerfileVsBuildctl times gantry-build's Dockerfile mode
// against buildctl doing the same build — the Node sample app
// (testdata/node-app) for linux/amd64 and linux/arm64, its npm ci layer
// imported from a warm registry cache, pushed by digest — on one
// buildkitd, alternating, with the daemon's own cache pruned before every
// build so each imports from the registry. Gantry's extra work is its own
// index of the pushed manifests (annotations, tags). Reported:
// gantry-ms/op, buildctl-ms/op and gantry/buildctl (goal: <= 1.05).
func BenchmarkDockerfileVsBuildctl(b *testing.B) {
	buildctl := testproc.Tool(b, "buildctl")
	addr := buildkittest.Daemon(b)
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	node := buildkittest.Node(b, reg.Host+"/library/node:20")
	ctxDir, _ := filepath.Abs("../../testdata/node-app")
	repo := reg.Host + "/acme/api"
	cache := "type=registry,ref=" + reg.Host + "/acme/api:buildcache"
	in := image.Inputs{
		Image: repo, Platforms: []string{"linux/amd64", "linux/arm64"}, Context: ctxDir, Dockerfile: "Dockerfile",
		BuildArgs: []string{"NODE_IMAGE=" + node}, Push: true, Tags: []string{"type=raw,value=latest"}, Created: created,
		BuildKit: addr, CacheFrom: []string{cache}, Getenv: func(string) string { return "" },
	}
	warm := in
	warm.CacheFrom, warm.CacheTo = nil, []string{cache + ",mode=max"}
	if _, err := image.Run(b.Context(), warm); err != nil {
		b.Fatalf("warming the registry cache: %v", err)
	}
	ctl := func(args ...string) {
		b.Helper()
		if out, err := exec.Command(buildctl, append([]string{"--addr", addr}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("buildctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var gantry, bk time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctl("prune", "--all")
		start := time.Now()
		if _, err := image.Run(b.Context(), in); err != nil {
			b.Fatal(err)
		}
		gantry += time.Since(start)

		ctl("prune", "--all")
		start = time.Now()
		ctl("build", "--frontend", "dockerfile.v0", "--local", "context="+ctxDir, "--local", "dockerfile="+ctxDir,
			"--opt", "platform=linux/amd64,linux/arm64", "--opt", "build-arg:NODE_IMAGE="+node,
			"--opt", "build-arg:SOURCE_DATE_EPOCH=1795179791", "--import-cache", cache,
			"--output", "type=image,name="+repo+",push=true,push-by-digest=true,oci-mediatypes=true,rewrite-timestamp=true")
		bk += time.Since(start)
	}
	b.ReportMetric(float64(gantry.Milliseconds())/float64(b.N), "gantry-ms/op")
	b.ReportMetric(float64(bk.Milliseconds())/float64(b.N), "buildctl-ms/op")
	b.ReportMetric(float64(gantry)/float64(bk), "gantry/buildctl")
}
