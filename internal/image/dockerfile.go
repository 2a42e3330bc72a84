package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dockertypes "github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-ci/gantry/internal/metadata"
)

// DockerfileResult is what the job summary shows of a Dockerfile build.
type DockerfileResult struct {
	Dockerfile string     `json:"dockerfile"`
	Target     string     `json:"target,omitempty"`
	Steps      []StepInfo `json:"steps"`
	Cached     int        `json:"cached"`
	CacheFrom  []string   `json:"cacheFrom,omitempty"`
	CacheTo    []string   `json:"cacheTo,omitempty"`
	Duration   time.Duration
}

// StepInfo is one step of BuildKit's build graph.
type StepInfo struct {
	Name     string        `json:"name"`
	Cached   bool          `json:"cached"`
	Duration time.Duration `json:"duration"`
}

// secretLike matches build-arg names whose values end up in the image
// history when they are secrets.
var secretLike = regexp.MustCompile(`(?i)(token|secret|passw(or)?d|api[_-]?key|private[_-]?key|credential|auth)`)

var secretID = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validateDockerfile checks the Dockerfile mode's inputs.
func (in *Inputs) validateDockerfile() []error {
	var errs []error
	// Inputs of the layering mode: in this mode the Dockerfile says them.
	for _, f := range []struct {
		input, instruction string
		given              bool
	}{
		{"base", "FROM", in.Base != ""}, {"layers", "COPY", len(in.Layers) > 0},
		{"entrypoint", "ENTRYPOINT", len(in.Entrypoint) > 0}, {"cmd", "CMD", len(in.Cmd) > 0},
		{"env", "ENV", len(in.Env) > 0}, {"workdir", "WORKDIR", in.Workdir != ""},
		{"user", "USER", in.User != ""}, {"ports", "EXPOSE", len(in.Ports) > 0},
	} {
		if f.given {
			errs = append(errs, fmt.Errorf(`input %q is set with "dockerfile": with a Dockerfile, %s in the Dockerfile says it; move it there, or leave "dockerfile" empty to layer files onto "base"`, f.input, f.instruction))
		}
	}
	if filepath.IsAbs(in.Dockerfile) || strings.HasPrefix(filepath.Clean(in.Dockerfile), "..") {
		errs = append(errs, fmt.Errorf(`input "dockerfile" is %q: give a path relative to "context" that stays inside it, e.g. Dockerfile or docker/api.Dockerfile`, in.Dockerfile))
	}
	for _, kv := range in.BuildArgs {
		if k, _, ok := strings.Cut(kv, "="); !ok || strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf(`input "build-args": %q is not KEY=VALUE`, kv))
		}
	}
	seen := map[string]bool{}
	for _, line := range in.Secrets {
		id, env, ok := strings.Cut(line, "=")
		id, env = strings.TrimSpace(id), strings.TrimSpace(env)
		switch {
		case !ok || !secretID.MatchString(id) || env == "":
			errs = append(errs, fmt.Errorf(`input "secrets": %q is not id=ENV_NAME (the id that RUN --mount=type=secret,id=… names, and the environment variable holding the value, e.g. npm_token=NPM_TOKEN)`, line))
		case seen[id]:
			errs = append(errs, fmt.Errorf(`input "secrets": the id %q is given twice`, id))
		default:
			seen[id] = true
			if in.getenv()(env) == "" {
				errs = append(errs, fmt.Errorf(`input "secrets": %s=%s, but the environment variable %s is empty or unset: set it in the step's env: from a secret (env: %s: ${{ secrets.… }})`, id, env, env, env))
			}
		}
	}
	for _, spec := range in.CacheFrom {
		if _, err := cacheEntry(spec, "cache-from", in.getenv()); err != nil {
			errs = append(errs, err)
		}
	}
	for _, spec := range in.CacheTo {
		if _, err := cacheEntry(spec, "cache-to", in.getenv()); err != nil {
			errs = append(errs, err)
		}
	}
	if in.BuildKit != "" && !slices.ContainsFunc(daemonSchemes, func(p string) bool { return strings.HasPrefix(in.BuildKit, p) }) {
		errs = append(errs, fmt.Errorf(`input "buildkit" is %q: give a daemon address (%s), e.g. unix:///run/buildkit/buildkitd.sock or docker-container://buildx_buildkit_builder0, or leave it empty to start buildkitd`, in.BuildKit, strings.Join(daemonSchemes, " ")))
	}
	return errs
}

// dockerfileBuild builds the Dockerfile with BuildKit, which pushes each
// platform's image by digest (or writes an OCI layout); Gantry then makes
// the index of those images, exactly as a merge does, and moves the tags
// only once the index is in the registry.
func dockerfileBuild(ctx context.Context, in Inputs, reg *registries, repo name.Repository, tags []string) (Outputs, error) {
	ctxDir, err := filepath.Abs(in.Context)
	if err != nil {
		return Outputs{}, err
	}
	dfPath := filepath.Join(ctxDir, in.Dockerfile)
	df, err := os.ReadFile(dfPath)
	if err != nil {
		return Outputs{}, fmt.Errorf(`input "dockerfile": %w (the path is relative to "context", here %s)`, err, ctxDir)
	}
	attrs := map[string]string{
		"filename": filepath.Base(dfPath),
		"platform": strings.Join(in.Platforms, ","),
		// Reproducible: every timestamp from the commit (with the
		// exporter's rewrite-timestamp below).
		"build-arg:SOURCE_DATE_EPOCH": strconv.FormatInt(in.Created.Unix(), 10),
	}
	if line, ok := syntaxLine(df); ok {
		if in.AllowSyntax {
			in.Log.Infof("%s has %q: BuildKit pulls that frontend image (allow-syntax: true)", in.Dockerfile, line)
		} else {
			// Any cmdline makes the built-in frontend build the file itself
			// instead of forwarding to the image the line names.
			attrs["cmdline"] = ""
			in.Log.Warningf("%s has %q: building with BuildKit's built-in Dockerfile frontend, not that image (set allow-syntax: true to pull and use it)", in.Dockerfile, line)
		}
	}
	if in.Target != "" {
		attrs["target"] = in.Target
	}
	for _, kv := range in.BuildArgs {
		k, v, _ := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if secretLike.MatchString(k) {
			in.Log.Warningf(`input "build-args": %s looks like a secret, and a build-arg is written into the image's history for anyone who pulls it: pass it with "secrets" (id=ENV_NAME) and RUN --mount=type=secret,id=… instead`, k)
		}
		attrs["build-arg:"+k] = v
	}
	// The OCI labels Gantry sets in every mode, then the user's labels.
	for k, v := range metadata.OCI(in.Git, in.Created, tags, repo.RepositoryStr()) {
		attrs["label:"+k] = v
	}
	for _, kv := range in.Labels {
		k, v, _ := strings.Cut(kv, "=")
		attrs["label:"+k] = v
	}

	secrets := map[string][]byte{}
	var values []string
	for _, line := range in.Secrets {
		id, env, _ := strings.Cut(line, "=")
		v := in.getenv()(strings.TrimSpace(env))
		secrets[strings.TrimSpace(id)] = []byte(v)
		values = append(values, v)
	}
	log := &buildLog{log: in.Log, secrets: values}

	ctxFS, err := fsutil.NewFS(ctxDir)
	if err != nil {
		return Outputs{}, fmt.Errorf(`input "context": %w`, err)
	}
	dfFS, err := fsutil.NewFS(filepath.Dir(dfPath))
	if err != nil {
		return Outputs{}, err
	}
	export := map[string]string{
		"name":              repo.String(),
		"oci-mediatypes":    "true",
		"rewrite-timestamp": "true",
	}
	for _, line := range in.Annotations {
		level, kv, _ := parseAnnotation(line) // validated
		if level == "index" {
			continue // Gantry's index carries them
		}
		k, v, _ := strings.Cut(kv, "=")
		export["annotation-manifest."+k] = v
	}
	entry := bkclient.ExportEntry{Type: bkclient.ExporterImage, Attrs: export}
	var layoutDir string
	if in.Push {
		export["push"] = "true"
		export["push-by-digest"] = "true"
		if reg.insecure[repo.RegistryStr()] {
			export["registry.insecure"] = "true"
		}
	} else {
		if layoutDir, err = os.MkdirTemp("", "gantry-oci-"); err != nil {
			return Outputs{}, err
		}
		defer os.RemoveAll(layoutDir)
		delete(export, "name")
		export["tar"] = "false"
		entry = bkclient.ExportEntry{Type: bkclient.ExporterOCI, Attrs: export, OutputDir: layoutDir}
	}
	opt := bkclient.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
		Session: []session.Attachable{
			authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{AuthConfigProvider: keychainAuth(reg.keychain)}),
			secretsprovider.FromMap(secrets),
		},
		Exports: []bkclient.ExportEntry{entry},
	}
	for _, spec := range in.CacheFrom {
		e, _ := cacheEntry(spec, "cache-from", in.getenv()) // validated
		opt.CacheImports = append(opt.CacheImports, e)
	}
	for _, spec := range in.CacheTo {
		e, _ := cacheEntry(spec, "cache-to", in.getenv())
		opt.CacheExports = append(opt.CacheExports, e)
	}

	addr, stop, err := daemon(ctx, in)
	if err != nil {
		return Outputs{}, err
	}
	defer stop()
	c, err := bkclient.New(ctx, addr)
	if err != nil {
		return Outputs{}, fmt.Errorf(`input "buildkit": connecting to %s: %w`, addr, err)
	}
	defer c.Close()

	started := time.Now()
	end := in.Log.Group(fmt.Sprintf("BuildKit: %s for %s", in.Dockerfile, strings.Join(in.Platforms, ", ")))
	rec := newStepRecorder()
	var resp *bkclient.SolveResponse
	ch := make(chan *bkclient.SolveStatus)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		resp, err = c.Solve(gctx, nil, opt, ch)
		return err
	})
	g.Go(func() error {
		d, err := progressui.NewDisplay(log, progressui.PlainMode)
		if err != nil {
			return err
		}
		tee := make(chan *bkclient.SolveStatus)
		go func() {
			defer close(tee)
			for s := range ch {
				rec.add(s)
				tee <- s
			}
		}()
		// Read until Solve closes the channel, also after a failure, so
		// the failing step's log is shown.
		_, err = d.UpdateFrom(context.WithoutCancel(gctx), tee)
		return err
	})
	err = g.Wait()
	log.flush()
	end()
	if err != nil {
		return Outputs{}, explain(err, in, rec, log)
	}
	result := &DockerfileResult{Dockerfile: in.Dockerfile, Target: in.Target, CacheFrom: in.CacheFrom, CacheTo: in.CacheTo, Duration: time.Since(started)}
	result.Steps, result.Cached = rec.list()
	in.Log.Infof("BuildKit built %s in %s: %d step(s), %d cached", in.Dockerfile, result.Duration.Round(100*time.Millisecond), len(result.Steps), result.Cached)

	var srcs []mergeSource
	mt := types.OCIImageIndex
	if in.Push {
		d := resp.ExporterResponse["containerimage.digest"]
		if d == "" {
			return Outputs{}, errors.New("BuildKit reported no image digest (containerimage.digest)")
		}
		ref := repo.Digest(d)
		if srcs, mt, err = mergeSources(ctx, reg, []name.Digest{ref}); err != nil {
			return Outputs{}, fmt.Errorf("reading what BuildKit pushed (%s): %w", ref, err)
		}
	} else if srcs, err = layoutSources(layoutDir, repo); err != nil {
		return Outputs{}, fmt.Errorf("reading BuildKit's OCI layout: %w", err)
	}
	for i := range srcs {
		srcs[i].from = "BuildKit"
	}
	if err := checkPlatforms(srcs, in.Platforms); err != nil {
		return Outputs{}, err
	}
	out, idx, err := indexOf(in, repo, tags, srcs, mt)
	if err != nil {
		return out, err
	}
	out.Dockerfile = result
	out.ByDigest = in.PushByDigest
	if in.Push {
		return publish(ctx, in, reg, repo, tags, idx, out)
	}
	out.Pushed = false
	if err := writeLayout(in.OCILayout, idx, tags); err != nil {
		return out, fmt.Errorf(`writing the OCI layout to %q (input "oci-layout"): %w`, in.OCILayout, err)
	}
	in.Log.Infof("wrote %s@%s to OCI layout %s (push: false)", repo, out.Digest, in.OCILayout)
	out.Image = repo.Digest(out.Digest).String()
	for _, t := range tags {
		out.Tags = append(out.Tags, repo.Tag(t).String())
	}
	return out, nil
}

// layoutSources reads the image or index BuildKit's OCI exporter wrote.
func layoutSources(dir string, repo name.Repository) ([]mergeSource, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := root.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("%d entries in index.json, want 1", len(im.Manifests))
	}
	d := im.Manifests[0]
	if d.MediaType.IsIndex() {
		idx, err := root.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		return indexSources("BuildKit", repo, idx)
	}
	img, err := root.Image(d.Digest)
	if err != nil {
		return nil, err
	}
	s, err := imageSource("BuildKit", repo, img, v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}, nil)
	if err != nil {
		return nil, err
	}
	return []mergeSource{s}, nil
}

// explain turns BuildKit's error into one that says what to fix.
func explain(err error, in Inputs, rec *stepRecorder, log *buildLog) error {
	var snippet strings.Builder
	for _, s := range errdefs.Sources(err) {
		_ = s.Print(&snippet) // the Dockerfile's lines, headed file:line
	}
	msg := log.redact(err.Error())
	where := ""
	if snippet.Len() > 0 {
		where = "\n" + log.redact(strings.TrimRight(snippet.String(), "\n"))
	}
	if step, ok := rec.failedWith("exec format error"); ok {
		return fmt.Errorf("%s ran a program built for another architecture (exec format error), and this runner has no emulator for it: %s%s\nRun RUN steps in a stage FROM --platform=$BUILDPLATFORM and cross-compile for $TARGETARCH (COPY --from= the result into the target stage), or build each platform on a native runner (push-by-digest: true) and merge the digests in another job (merge)", step, msg, where)
	}
	switch {
	case strings.Contains(msg, "no match for platform in manifest"):
		// BuildKit's final error does not name the platform; its progress does.
		p, base := rec.missingPlatform()
		if p == "" {
			p = "one of " + strings.Join(in.Platforms, ", ")
		}
		return fmt.Errorf(`input "platforms": the base image %s has no %s (%s); build only the platforms your bases have, or choose bases that have them`, base, p, msg)
	case strings.Contains(msg, "pull access denied") || strings.Contains(msg, "failed to authorize") || strings.Contains(msg, "401 Unauthorized"):
		return fmt.Errorf("%s%s\nCheck the registry credentials (registry-username / registry-password, or docker login before this step)", msg, where)
	}
	if where != "" {
		return fmt.Errorf("%s:%s", msg, where)
	}
	return errors.New(msg)
}

// syntaxLine finds a "# syntax=" directive among the Dockerfile's leading
// comments.
func syntaxLine(df []byte) (string, bool) {
	for _, l := range strings.Split(string(df), "\n") {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		if !strings.HasPrefix(t, "#") {
			return "", false
		}
		k, _, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(t, "#")), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "syntax") {
			return t, true
		}
	}
	return "", false
}

// cacheEntry parses a BuildKit cache spec, e.g.
// type=registry,ref=ghcr.io/acme/app:buildcache,mode=max.
func cacheEntry(spec, input string, getenv func(string) string) (bkclient.CacheOptionsEntry, error) {
	e := bkclient.CacheOptionsEntry{Attrs: map[string]string{}}
	for _, f := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || k == "" {
			return e, fmt.Errorf(`input %q: in %q, %q is not key=value (a BuildKit cache spec, e.g. type=registry,ref=ghcr.io/acme/app:buildcache,mode=max)`, input, spec, f)
		}
		if k == "type" {
			e.Type = v
		} else {
			e.Attrs[k] = v
		}
	}
	switch e.Type {
	case "registry":
		if e.Attrs["ref"] == "" {
			return e, fmt.Errorf(`input %q: %q has no ref=: name the cache image, e.g. type=registry,ref=ghcr.io/acme/app:buildcache`, input, spec)
		}
	case "inline", "local", "s3", "azblob":
	case "gha":
		// The cache service's address and token are given to JavaScript
		// actions only; a composite action's steps see them when an
		// earlier step exported them (crazy-max/ghaction-github-runtime).
		token := getenv("ACTIONS_RUNTIME_TOKEN")
		if token == "" {
			return e, fmt.Errorf(`input %q: type=gha needs the Actions cache service's token (ACTIONS_RUNTIME_TOKEN), which steps of a composite action do not get: export it in an earlier step (crazy-max/ghaction-github-runtime), or use type=registry,ref=… (no 10 GB limit, shared across branches)`, input)
		}
		if _, ok := e.Attrs["token"]; !ok {
			e.Attrs["token"] = token
		}
		if u := getenv("ACTIONS_RESULTS_URL"); u != "" {
			if _, ok := e.Attrs["url_v2"]; !ok {
				e.Attrs["url_v2"] = u
			}
		}
		if u := getenv("ACTIONS_CACHE_URL"); u != "" {
			if _, ok := e.Attrs["url"]; !ok {
				e.Attrs["url"] = u
			}
		}
	case "":
		return e, fmt.Errorf(`input %q: %q has no type=: use type=registry,ref=… (preferred), gha, local, inline, s3 or azblob`, input, spec)
	default:
		return e, fmt.Errorf(`input %q: %q has type %q: use registry (preferred), gha, local, inline, s3 or azblob`, input, spec, e.Type)
	}
	return e, nil
}

// keychainAuth serves BuildKit's registry logins from the same keychain as
// the other modes (the registry-username/-password inputs, then the Docker
// config and credential helpers).
func keychainAuth(kc authn.Keychain) authprovider.AuthConfigProvider {
	return func(ctx context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (dockertypes.AuthConfig, error) {
		if host == "registry-1.docker.io" {
			host = name.DefaultRegistry
		}
		reg, err := name.NewRegistry(host, name.WeakValidation)
		if err != nil {
			return dockertypes.AuthConfig{}, nil // anonymous
		}
		a, err := authn.Resolve(ctx, kc, reg)
		if err != nil {
			return dockertypes.AuthConfig{}, err
		}
		cfg, err := authn.Authorization(ctx, a)
		if err != nil {
			return dockertypes.AuthConfig{}, err
		}
		return dockertypes.AuthConfig{Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth,
			IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken, ServerAddress: host}, nil
	}
}

// buildLog turns BuildKit's progress output into log lines, with every
// secret value hidden (a RUN step may print one).
type buildLog struct {
	log     interface{ Infof(string, ...any) }
	secrets []string
	mu      sync.Mutex
	partial string
}

func (w *buildLog) redact(s string) string {
	for _, v := range w.secrets {
		if strings.TrimSpace(v) != "" {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}

func (w *buildLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.partial + string(p)
	lines := strings.Split(s, "\n")
	w.partial = lines[len(lines)-1]
	for _, l := range lines[:len(lines)-1] {
		w.log.Infof("%s", w.redact(l))
	}
	return len(p), nil
}

func (w *buildLog) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.partial != "" {
		w.log.Infof("%s", w.redact(w.partial))
		w.partial = ""
	}
}

var _ io.Writer = (*buildLog)(nil)

// stepRecorder keeps what the summary and the errors need from BuildKit's
// status stream: each step's name, whether it was cached, how long it took
// and its error.
type stepRecorder struct {
	mu    sync.Mutex
	order []string
	steps map[string]*bkclient.Vertex
	logs  map[string][]byte // the last 4 KiB each step printed
}

func newStepRecorder() *stepRecorder {
	return &stepRecorder{steps: map[string]*bkclient.Vertex{}, logs: map[string][]byte{}}
}

func (r *stepRecorder) add(s *bkclient.SolveStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range s.Vertexes {
		k := v.Digest.String()
		if _, ok := r.steps[k]; !ok {
			r.order = append(r.order, k)
		}
		c := *v
		r.steps[k] = &c
	}
	for _, l := range s.Logs {
		k := l.Vertex.String()
		b := append(r.logs[k], l.Data...)
		if len(b) > 4096 {
			b = b[len(b)-4096:]
		}
		r.logs[k] = b
	}
}

// failedWith names the failed step whose output has text in it.
func (r *stepRecorder) failedWith(text string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.order {
		if v := r.steps[k]; v.Error != "" && strings.Contains(string(r.logs[k]), text) {
			return v.Name, true
		}
	}
	return "", false
}

// list gives the Dockerfile's own steps (BuildKit's "[stage n/m] …"
// vertices, not its internal loading), in the order they started.
func (r *stepRecorder) list() ([]StepInfo, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []StepInfo
	cached := 0
	for _, k := range r.order {
		v := r.steps[k]
		if !strings.HasPrefix(v.Name, "[") || strings.Contains(v.Name, " internal]") {
			continue
		}
		si := StepInfo{Name: v.Name, Cached: v.Cached}
		if v.Started != nil && v.Completed != nil {
			si.Duration = v.Completed.Sub(*v.Started)
		}
		if v.Cached {
			cached++
		}
		out = append(out, si)
	}
	return out, cached
}

var platformStep = regexp.MustCompile(`^\[([a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?) internal\] load metadata for (\S+)`)

// missingPlatform finds the "[linux/s390x internal] load metadata for REF"
// step that failed: the platform and the base it is missing from.
func (r *stepRecorder) missingPlatform() (platform, base string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.order {
		v := r.steps[k]
		if !strings.Contains(v.Error, "no match for platform") {
			continue // not it, or cancelled when the other failed
		}
		if m := platformStep.FindStringSubmatch(v.Name); m != nil {
			return m[1], m[2]
		}
	}
	return "", ""
}
