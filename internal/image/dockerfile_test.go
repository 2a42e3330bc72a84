package image_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/gantry-ci/gantry/internal/buildkittest"
	"github.com/gantry-ci/gantry/internal/image"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// The Dockerfile tests run a real buildkitd (with Debian's runc) that the
// build stage starts itself, as it does on a runner, against a real
// registry on loopback.

// appDockerfile is multi-stage: a $BUILDPLATFORM stage that runs (with a
// build-arg and a secret), a release stage for the target platform that
// only copies, and a debug stage after it that the target leaves out.
const appDockerfile = `ARG BASE
FROM --platform=$BUILDPLATFORM ${BASE} AS build
ARG TARGETOS TARGETARCH GREETING
WORKDIR /src
COPY greeting.txt .
RUN --mount=type=secret,id=api_token mkdir -p /out && echo "$TARGETOS/$TARGETARCH" > /out/arch \
 && echo "$GREETING $(cat greeting.txt)" > /out/greeting \
 && wc -c < /run/secrets/api_token | tr -d ' ' > /out/secret-length

FROM ${BASE} AS release
COPY --from=build /out /app
ENTRYPOINT ["/bin/cat", "/app/greeting"]

FROM release AS debug
COPY debug.txt /app/debug.txt
`

const secretValue = "s3cr3t-npm-token-0f9e8d7c"

// dockerfileContext writes the app's context and returns it.
func dockerfileContext(t *testing.T, dockerfile string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "docker", "app.Dockerfile"), dockerfile, 0o644)
	writeFile(t, filepath.Join(dir, "greeting.txt"), "from the context\n", 0o644)
	writeFile(t, filepath.Join(dir, "debug.txt"), "debug only\n", 0o644)
	return dir
}

// logLines is a Logger that keeps every line.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Infof(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
}
func (l *logLines) Warningf(f string, a ...any) { l.Infof("warning: "+f, a...) }
func (l *logLines) Group(title string) func() {
	l.Infof("group: %s", title)
	return func() { l.Infof("endgroup") }
}
func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func dockerfileInputs(t *testing.T, host, ctxDir string) (image.Inputs, *logLines) {
	t.Helper()
	base := buildkittest.Busybox(t, host+"/library/busybox:1.35")
	in := baseInputs(t, host, "", ctxDir)
	in.Base, in.Layers, in.Entrypoint, in.Env, in.Workdir, in.User, in.Ports = "", nil, nil, nil, "", "", nil
	in.Dockerfile = "docker/app.Dockerfile"
	in.Target = "release"
	in.BuildArgs = []string{"BASE=" + base, "GREETING=hello"}
	in.Secrets = []string{"api_token=NPM_TOKEN"}
	in.Getenv = buildkittest.Getenv(t, map[string]string{"NPM_TOKEN": secretValue})
	in.Timeout = 5 * time.Minute
	log := &logLines{}
	in.Log = log
	return in, log
}

func platformImage(t *testing.T, ref, platform string) v1.Image {
	t.Helper()
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(mustRef(t, ref), remote.WithPlatform(*p))
	if err != nil {
		t.Fatalf("reading %s of %s: %v", platform, ref, err)
	}
	return img
}

// TestDockerfileBuildsMultiStageForTwoPlatforms: what a user checks after
// a Dockerfile build: one index of exactly the requested platforms, each
// with its own content from the $BUILDPLATFORM stage, the build-arg and
// target honoured, the secret usable by RUN but absent from every layer,
// the config and the log, tags and labels as in the layering mode, and a
// summary with the steps.
func TestDockerfileBuildsMultiStageForTwoPlatforms(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	in, log := dockerfileInputs(t, reg.Host, dockerfileContext(t, appDockerfile))
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("Dockerfile build: %v\nlog:\n%s", err, log)
	}
	repo := reg.Host + "/acme/prompt-builder"
	if out.Image != repo+"@"+out.Digest {
		t.Errorf("image output %q, want %s@%s", out.Image, repo, out.Digest)
	}
	if got := tagsOf(t, repo); !slices.Equal(got, []string{"1", "1.2", "1.2.3", "latest", "sha-9a8b7c6"}) {
		t.Errorf("tags in the registry %v, want 1 1.2 1.2.3 latest sha-9a8b7c6 (the tag rules of the layering mode)", got)
	}
	idx, err := remote.Index(mustRef(t, out.Image))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("the index does not validate: %v", err)
	}
	im, _ := idx.IndexManifest()
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
		if out.PlatformDigests[d.Platform.String()] != d.Digest.String() {
			t.Errorf("platform-digests[%s] = %q, the index has %s", d.Platform, out.PlatformDigests[d.Platform.String()], d.Digest)
		}
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("index platforms %v, want exactly linux/amd64 linux/arm64 (no attestation entries)", platforms)
	}
	if im.Annotations["org.opencontainers.image.revision"] != in.Git.SHA || im.Annotations["com.example.scope"] != "index-only" {
		t.Errorf("index annotations %v: want the OCI revision and the index-level user annotation", im.Annotations)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		img := platformImage(t, out.Image, p)
		files := imageFiles(t, img)
		arch := strings.TrimPrefix(p, "linux/")
		if got := files["app/arch"].content; got != p+"\n" {
			t.Errorf("%s: /app/arch = %q, want %q (the $BUILDPLATFORM stage ran once per target)", p, got, p+"\n")
		}
		if got := files["app/greeting"].content; got != "hello from the context\n" {
			t.Errorf("%s: /app/greeting = %q: build-arg GREETING or the context's file missing", p, got)
		}
		if got := files["app/secret-length"].content; got != fmt.Sprint(len(secretValue))+"\n" {
			t.Errorf("%s: the RUN step saw a secret of %q bytes, want %d", p, got, len(secretValue))
		}
		if _, ok := files["app/debug.txt"]; ok {
			t.Errorf("%s: /app/debug.txt is in the image: target release was not honoured", p)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != arch || cf.OS != "linux" {
			t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
		}
		if cf.Config.Labels["org.opencontainers.image.revision"] != in.Git.SHA || cf.Config.Labels["org.opencontainers.image.vendor"] != "Acme" {
			t.Errorf("%s: labels %v: want Gantry's OCI labels and the user's", p, cf.Config.Labels)
		}
		if !cf.Created.Time.Equal(created) {
			t.Errorf("%s: config created %s, want the commit time %s (SOURCE_DATE_EPOCH)", p, cf.Created.Time, created)
		}
		m, _ := img.Manifest()
		if m.Annotations["com.example.team"] != "web" {
			t.Errorf("%s: manifest annotations %v: want the user's com.example.team", p, m.Annotations)
		}
		// The secret is nowhere in what anyone can pull.
		raw, _ := img.RawConfigFile()
		if strings.Contains(string(raw), secretValue) {
			t.Errorf("%s: the secret's value is in the image config", p)
		}
		for path, f := range files {
			if strings.Contains(f.content, secretValue) {
				t.Errorf("%s: the secret's value is in the image, in %s", p, path)
			}
		}
	}
	if strings.Contains(log.String(), secretValue) {
		t.Error("the secret's value is in the build log")
	}
	for _, want := range []string{"[linux/amd64 build 4/4] RUN --mount=type=secret", "[linux/amd64->arm64 build 4/4]", "#12 DONE"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log has no %q (BuildKit's progress per step):\n%s", want, log)
		}
	}
	if out.Dockerfile == nil || len(out.Dockerfile.Steps) < 6 {
		t.Fatalf("the result lists no steps: %+v", out.Dockerfile)
	}
	sum := image.Summary(out)
	for _, want := range []string{"**Dockerfile** `docker/app.Dockerfile`, target `release`", "| linux/arm64 | `" + out.PlatformDigests["linux/arm64"], "RUN --mount=type=secret"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	// The release record carries the digest for the next stages.
	b, err := os.ReadFile(out.ReleaseFile)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Digest    string `json:"digest"`
		Platforms []struct{ Platform, Digest string }
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.Digest != out.Digest || len(rec.Platforms) != 2 {
		t.Errorf("release record %s: digest %q and %d platforms, want %s and 2 (%v)", out.ReleaseFile, rec.Digest, len(rec.Platforms), out.Digest, err)
	}
}

// TestDockerfileCacheAndReproducibility: a build that exports its cache to
// the registry; a second build on a fresh daemon that imports it runs no
// step again and gives the same digest; a third, fresh and without the
// cache, gives the same digest too (SOURCE_DATE_EPOCH from the commit,
// timestamps rewritten).
func TestDockerfileCacheAndReproducibility(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	ctxDir := dockerfileContext(t, appDockerfile)
	cache := "type=registry,ref=" + reg.Host + "/acme/prompt-builder:buildcache"
	buildLogged := func(what string, from, to []string) (image.Outputs, *logLines) {
		t.Helper()
		in, log := dockerfileInputs(t, reg.Host, ctxDir)
		in.CacheFrom, in.CacheTo = from, to
		in.ReleaseFile = ""
		out, err := image.Run(t.Context(), in)
		if err != nil {
			t.Fatalf("%s: %v\nlog:\n%s", what, err, log)
		}
		return out, log
	}
	build := func(what string, from, to []string) image.Outputs {
		t.Helper()
		out, _ := buildLogged(what, from, to)
		return out
	}
	first := build("first build, exporting the cache", nil, []string{cache + ",mode=max"})
	ranFirst := 0
	for _, s := range first.Dockerfile.Steps {
		if !s.Cached {
			ranFirst++
		}
	}
	if ranFirst == 0 {
		t.Fatalf("the first build ran no step: %+v", first.Dockerfile.Steps)
	}
	second, secondLog := buildLogged("second build on a fresh daemon, importing the cache", []string{cache}, nil)
	if !strings.Contains(secondLog.String(), " CACHED") {
		t.Errorf("the log of the cached build marks no step CACHED:\n%s", secondLog)
	}
	for _, s := range second.Dockerfile.Steps {
		if strings.Contains(s.Name, "RUN") && !s.Cached {
			t.Errorf("second build ran %q again: the registry cache was not used", s.Name)
		}
	}
	if second.Dockerfile.Cached == 0 {
		t.Errorf("second build: no step cached: %+v", second.Dockerfile.Steps)
	}
	if second.Digest != first.Digest {
		t.Errorf("same commit from the cache: digest %s, first build %s", second.Digest, first.Digest)
	}
	third := build("third build, fresh, no cache", nil, nil)
	if third.Dockerfile.Cached != 0 {
		t.Errorf("third build on a fresh daemon without cache-from has %d cached steps", third.Dockerfile.Cached)
	}
	if third.Digest != first.Digest {
		t.Errorf("same commit built twice from scratch: digests %s and %s, want one (reproducible)", first.Digest, third.Digest)
	}
	sum := image.Summary(second)
	if !strings.Contains(sum, "cache from `"+cache+"`") || !strings.Contains(sum, "| cached |") {
		t.Errorf("summary of the cached build does not show the cache:\n%s", sum)
	}
}

// TestDockerfileErrorsSayWhatToFix: a syntax error names the Dockerfile's
// line and shows it; a platform the base lacks is named; a RUN on a foreign
// architecture says to cross-compile or use native runners and merge; and
// nothing is tagged or written after a failure.
func TestDockerfileErrorsSayWhatToFix(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	foreign := buildkittest.ForeignShell(t, reg.Host+"/library/arm64-only:1")
	cases := []struct {
		name       string
		dockerfile string
		platforms  []string
		want       []string
	}{
		{"syntax error", "ARG BASE\nFROM ${BASE}\nRUNN echo hi\n", nil,
			[]string{"app.Dockerfile:3", "RUNN echo hi", "unknown instruction: RUNN"}},
		{"platform the base lacks", "ARG BASE\nFROM ${BASE}\nCOPY greeting.txt /\n", []string{"linux/amd64", "linux/s390x"},
			[]string{`input "platforms"`, "has no linux/s390x", "/library/busybox:1.35"}},
		{"RUN on a foreign architecture", "FROM " + foreign + "\nRUN echo hi > /x\n", []string{"linux/arm64"},
			[]string{"another architecture", "FROM --platform=$BUILDPLATFORM", "merge"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, log := dockerfileInputs(t, reg.Host, dockerfileContext(t, tc.dockerfile))
			in.Image = reg.Host + "/acme/" + strings.ToLower(strings.ReplaceAll(tc.name, " ", "-"))
			in.Target, in.Secrets = "", nil
			if tc.platforms != nil {
				in.Platforms = tc.platforms
			}
			start := time.Now()
			_, err := image.Run(t.Context(), in)
			if err == nil {
				t.Fatalf("no error\nlog:\n%s", log)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v\nlog:\n%s", w, err, log)
					break
				}
			}
			if d := time.Since(start); d > 2*time.Minute {
				t.Errorf("took %s to fail", d)
			}
			if got := tagsOf(t, in.Image); len(got) != 0 {
				t.Errorf("tags %v after a failed build", got)
			}
			if _, err := os.Stat(in.ReleaseFile); err == nil {
				t.Errorf("a release record was written after a failed build")
			}
		})
	}
}

// TestDockerfileMatrixBuildsMerge: the per-platform jobs of a matrix build
// (native runners) push by digest; the merge job makes one index of them,
// tagged; a signature made on a platform digest before the merge verifies
// after it.
func TestDockerfileMatrixBuildsMerge(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	ctxDir := dockerfileContext(t, appDockerfile)
	var digests []string
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		in, log := dockerfileInputs(t, reg.Host, ctxDir)
		in.Platforms, in.PushByDigest, in.ReleaseFile = []string{p}, true, ""
		out, err := image.Run(t.Context(), in)
		if err != nil {
			t.Fatalf("%s: %v\n%s", p, err, log)
		}
		if !out.ByDigest || len(out.Tags) != 0 || len(out.PlatformDigests) != 1 {
			t.Errorf("%s: push-by-digest gave tags %v, platforms %v", p, out.Tags, out.PlatformDigests)
		}
		digests = append(digests, out.Image)
	}
	repo := reg.Host + "/acme/prompt-builder"
	if got := tagsOf(t, repo); len(got) != 0 {
		t.Errorf("push-by-digest builds moved tags %v", got)
	}
	// Each job's output is a one-platform index; sign the amd64 manifest.
	amd := platformImage(t, digests[0], "linux/amd64")
	amdDigest, _ := amd.Digest()
	amdRef := repo + "@" + amdDigest.String()
	pub := signPlatform(t, amdRef, t.TempDir())

	in := baseInputs(t, reg.Host, "", "")
	in.Base, in.Layers, in.Entrypoint, in.Env, in.Workdir, in.User, in.Ports = "", nil, nil, nil, "", "", nil
	in.Merge = digests
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	idx, err := remote.Index(mustRef(t, out.Image))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.Manifests[0].Digest != amdDigest {
		t.Errorf("merged index %+v: want exactly the two platform manifests, amd64's unchanged", im.Manifests)
	}
	if got := tagsOf(t, repo); !slices.Contains(got, "1.2.3") {
		t.Errorf("merge did not tag: %v", got)
	}
	if err := verified(t, repo+"@"+im.Manifests[0].Digest.String(), pub); err != nil {
		t.Errorf("the signature made before the merge does not verify after: %v", err)
	}
}

// TestDockerfileWithoutPushWritesALayout: push false writes the index to
// the OCI layout and sends nothing to the registry; the daemon is one the
// user runs (input buildkit), which the stage leaves running.
func TestDockerfileWithoutPushWritesALayout(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	in, log := dockerfileInputs(t, reg.Host, dockerfileContext(t, appDockerfile))
	in.BuildKit = buildkittest.Daemon(t)
	in.Getenv = func(k string) string { // no buildkitd to start: only the daemon given
		if k == "NPM_TOKEN" {
			return secretValue
		}
		return ""
	}
	in.Push = false
	in.OCILayout = filepath.Join(t.TempDir(), "oci")
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if out.Pushed {
		t.Error("Pushed is true with push: false")
	}
	p, err := layout.FromPath(in.OCILayout)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := p.ImageIndex()
	rm, _ := root.IndexManifest()
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest.String() != out.Digest {
		t.Fatalf("layout index %+v, want one entry %s", rm.Manifests, out.Digest)
	}
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("the layout's index does not validate: %v", err)
	}
	if got := tagsOf(t, reg.Host+"/acme/prompt-builder"); len(got) != 0 {
		t.Errorf("push: false moved tags %v", got)
	}
	if _, err := remote.Head(mustRef(t, reg.Host+"/acme/prompt-builder@"+out.Digest)); err == nil {
		t.Error("push: false pushed the index")
	}
	if strings.Contains(log.String(), "buildkitd started") {
		t.Errorf("a buildkitd was started although the buildkit input names one:\n%s", log)
	}
	if err := exec.Command(testproc.Tool(t, "buildctl"), "--addr", in.BuildKit, "debug", "workers").Run(); err != nil {
		t.Errorf("the daemon given by the buildkit input is gone after the build: %v", err)
	}
}

// TestDockerfileWarnsAndUsesTheBuiltInFrontend: a "# syntax=" line would
// pull a frontend image (from Docker Hub, offline here): it is reported
// and the built-in frontend builds the file; a build-arg named like a
// secret is warned about, since it lands in the image history.
func TestDockerfileWarnsAndUsesTheBuiltInFrontend(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	in, log := dockerfileInputs(t, reg.Host, dockerfileContext(t, "# syntax=docker/dockerfile:1.7\nARG BASE\nFROM ${BASE}\nARG API_TOKEN\nCOPY greeting.txt /\n"))
	in.Target, in.Secrets = "", nil
	in.BuildArgs = append(in.BuildArgs, "API_TOKEN=not-a-good-idea")
	if _, err := image.Run(t.Context(), in); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for _, want := range []string{
		`warning: docker/app.Dockerfile has "# syntax=docker/dockerfile:1.7": building with BuildKit's built-in Dockerfile frontend`,
		`warning: input "build-args": API_TOKEN looks like a secret`,
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// TestDockerfileInputsAreChecked: bad input fails before any daemon
// starts, naming the input and the fix; an input of one mode is refused
// in the other instead of being dropped.
func TestDockerfileInputsAreChecked(t *testing.T) {
	t.Parallel()
	env := map[string]string{"NPM_TOKEN": "x"}
	getenv := func(k string) string { return env[k] }
	cases := []struct {
		name string
		edit func(in *image.Inputs)
		want string
	}{
		{"base with a Dockerfile", func(in *image.Inputs) { in.Base = "alpine" }, `input "base" is set with "dockerfile": with a Dockerfile, FROM in the Dockerfile says it`},
		{"layers with a Dockerfile", func(in *image.Inputs) { in.Layers = []string{"dist:/app"} }, `input "layers" is set with "dockerfile"`},
		{"Dockerfile outside the context", func(in *image.Inputs) { in.Dockerfile = "../Dockerfile" }, `input "dockerfile" is "../Dockerfile"`},
		{"build-arg without =", func(in *image.Inputs) { in.BuildArgs = []string{"GREETING"} }, `input "build-args": "GREETING" is not KEY=VALUE`},
		{"secret without env", func(in *image.Inputs) { in.Secrets = []string{"api_token"} }, `input "secrets": "api_token" is not id=ENV_NAME`},
		{"secret from an empty variable", func(in *image.Inputs) { in.Secrets = []string{"api_token=MISSING"} }, `the environment variable MISSING is empty or unset`},
		{"secret id twice", func(in *image.Inputs) { in.Secrets = []string{"a=NPM_TOKEN", "a=NPM_TOKEN"} }, `the id "a" is given twice`},
		{"cache of an unknown type", func(in *image.Inputs) { in.CacheTo = []string{"type=s4,ref=x"} }, `input "cache-to": "type=s4,ref=x" has type "s4"`},
		{"registry cache without ref", func(in *image.Inputs) { in.CacheFrom = []string{"type=registry"} }, `has no ref=`},
		{"gha cache without the token", func(in *image.Inputs) { in.CacheFrom = []string{"type=gha"} }, `type=gha needs the Actions cache service's token`},
		{"daemon address", func(in *image.Inputs) { in.BuildKit = "/run/buildkit/buildkitd.sock" }, `input "buildkit" is "/run/buildkit/buildkitd.sock": give a daemon address`},
		{"merge with a Dockerfile", func(in *image.Inputs) { in.Merge = []string{"r@sha256:" + strings.Repeat("a", 64)} }, `inputs "merge" and "dockerfile" are both set`},
		{"target without a Dockerfile", func(in *image.Inputs) { in.Dockerfile, in.Base = "", "alpine" }, `input "target" is set but "dockerfile" is not`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := image.Inputs{Image: "ghcr.io/acme/app", Dockerfile: "Dockerfile", Target: "release", Platforms: []string{"linux/amd64"},
				Push: true, Secrets: []string{"npm=NPM_TOKEN"}, Getenv: getenv}
			tc.edit(&in)
			err := in.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	in := image.Inputs{Image: "ghcr.io/acme/app", Dockerfile: "Dockerfile", Platforms: []string{"linux/amd64"}, Push: true,
		Secrets: []string{"npm=NPM_TOKEN"}, CacheFrom: []string{"type=registry,ref=ghcr.io/acme/app:buildcache"}, Getenv: getenv}
	if err := in.Validate(); err != nil {
		t.Errorf("good Dockerfile inputs refused: %v", err)
	}
}

// TestDockerfileUsesTheRegistryCredentials: on a registry that wants a
// login for everything, the registry-username/-password inputs reach
// BuildKit for the FROM pull, the push and the registry cache; without
// them the build fails and says to check the credentials.
func TestDockerfileUsesTheRegistryCredentials(t *testing.T) {
	t.Parallel()
	var locked atomic.Bool
	reg := startRegistry(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); locked.Load() && (!ok || u != "ci" || p != "hunter2-registry") {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	ctxDir := dockerfileContext(t, appDockerfile)
	in, log := dockerfileInputs(t, reg.Host, ctxDir) // pushes the base before the lock
	locked.Store(true)
	in.CacheTo = []string{"type=registry,ref=" + reg.Host + "/acme/prompt-builder:buildcache"}
	in.Keychain = authn.NewMultiKeychain() // not the machine's Docker config
	if _, err := image.Run(t.Context(), in); err == nil {
		t.Fatalf("built without credentials on a registry that wants them\n%s", log)
	} else if !strings.Contains(err.Error(), "Check the registry credentials") {
		t.Errorf("error without credentials does not point at them: %v", err)
	}
	locked.Store(false)
	in, log = dockerfileInputs(t, reg.Host, ctxDir)
	locked.Store(true)
	in.Keychain = authn.NewMultiKeychain()
	in.CacheTo = []string{"type=registry,ref=" + reg.Host + "/acme/prompt-builder:buildcache"}
	in.RegistryUsername, in.RegistryPassword = "ci", "hunter2-registry"
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("with credentials: %v\n%s", err, log)
	}
	if strings.Contains(log.String(), "hunter2-registry") {
		t.Error("the registry password is in the log")
	}
	locked.Store(false)
	if _, err := remote.Head(mustRef(t, reg.Host+"/acme/prompt-builder:buildcache")); err != nil {
		t.Errorf("no registry cache exported with the credentials: %v", err)
	}
	if _, err := remote.Head(mustRef(t, out.Image)); err != nil {
		t.Errorf("the index is not in the registry: %v", err)
	}
}

// TestDockerfileNodeApp builds testdata/node-app from its Dockerfile as a
// team's Node API would be: npm ci in a build stage (from the npm
// registry, as on a runner), only node_modules and the server in the
// release image, .dockerignore honoured. The Node base is a stand-in made
// from this machine's node and npm (no Docker Hub here).
func TestDockerfileNodeApp(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, nil)
	node := buildkittest.Node(t, reg.Host+"/library/node:20")
	root, err := filepath.Abs("../../testdata/node-app")
	if err != nil {
		t.Fatal(err)
	}
	in, log := dockerfileInputs(t, reg.Host, root)
	in.Image = reg.Host + "/acme/prompt-builder-api"
	in.Dockerfile, in.Target, in.Secrets = "Dockerfile", "", nil
	in.BuildArgs = []string{"NODE_IMAGE=" + node}
	out, err := image.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		img := platformImage(t, out.Image, p)
		files := imageFiles(t, img)
		for _, want := range []string{"app/server.js", "app/package.json", "app/node_modules/express/package.json", "app/node_modules/prom-client/package.json", "app/node_modules/express-prom-bundle/package.json"} {
			if _, ok := files[want]; !ok {
				t.Errorf("%s: /%s is not in the image", p, want)
			}
		}
		for _, not := range []string{"app/README.md", "app/Dockerfile", "app/package-lock.json"} {
			if _, ok := files[not]; ok {
				t.Errorf("%s: /%s is in the image (.dockerignore or the release stage's COPY not honoured)", p, not)
			}
		}
		cf, _ := img.ConfigFile()
		if !slices.Equal(cf.Config.Cmd, []string{"node", "server.js"}) || cf.Config.WorkingDir != "/app" {
			t.Errorf("%s: cmd %v workdir %q", p, cf.Config.Cmd, cf.Config.WorkingDir)
		}
	}
	if !strings.Contains(log.String(), "npm ci") {
		t.Errorf("the log does not show the npm ci step:\n%s", log)
	}
}
