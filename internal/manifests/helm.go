package manifests

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	godigest "github.com/opencontainers/go-digest"
	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/repo/v1"
	"helm.sh/helm/v4/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Chart says where a chart comes from and how to render it.
type Chart struct {
	Ref         string   // local chart dir, a packaged .tgz, "oci://host/repo/chart" (version by Version or a ":tag"/"@sha256:..." suffix), or a chart name when RepoURL is set
	RepoURL     string   // classic chart repository (https://.../index.yaml), with Ref the chart name
	Version     string   // chart version (required for RepoURL and for oci:// without tag/digest)
	Values      []string // values files, in order (later ones win), paths as given (relative to the working dir)
	Set         []string // helm --set lines "a.b=c" (strvals syntax), applied after Values
	Release     string   // release name (required)
	Namespace   string   // release namespace ({{ .Release.Namespace }})
	KubeVersion string   // e.g. "v1.37.2"; empty = helm's default
	// APIVersions is what the cluster serves ("apps/v1",
	// "networking.k8s.io/v1/Ingress"), .Capabilities.APIVersions as is;
	// empty = helm's default set (every built-in API), as helm template.
	APIVersions        []string
	IsUpgrade          bool   // .Release.IsUpgrade / IsInstall, and which helm hooks run
	PlainHTTP          bool   // OCI registry over http (tests; real registries use https)
	Username, Password string // registry / repo credentials (optional); otherwise the docker config (DOCKER_CONFIG / ~/.docker/config.json) as helm does
}

// Rendered is a chart rendered for one deploy.
type Rendered struct {
	Objects []*unstructured.Unstructured // the chart's manifests (not hooks), sorted like Render's output
	Hooks   []*unstructured.Unstructured // hook Jobs, each annotated gantry.dev/hook, in helm's hook-weight order
	Chart   string                       // "name-version" of the chart rendered
	Digest  string                       // for oci:// charts, the chart manifest digest pulled (sha256:...), else ""
	Notes   []string                     // things the user should know (hooks dropped or applied as objects)

	// What a Helm release record keeps: the chart loaded, the values the
	// user gave (files and set lines merged), and the rendered manifests
	// as helm writes them ("---\n# Source: <template>\n…").
	Loaded   *chart.Chart
	Config   map[string]any
	Manifest string
}

// The hook annotations rollout reads (rollout.AnnotationHook and its
// points; rollout imports this package, not the other way round).
const (
	annotationHook     = "gantry.dev/hook"
	AnnotationHelmHook = "gantry.dev/helm-hook" // the helm.sh/hook value the hook came from, for the record
	hookPreDeploy      = "pre-deploy"
	hookPostDeploy     = "post-deploy"
	hookOnRollback     = "on-rollback"
)

// RenderChart renders a chart as `helm template` does, with the cluster's
// capabilities given rather than asked for, and returns its objects and
// its hooks mapped onto Gantry's hook points. It talks to no cluster; it
// reaches the network only to fetch an oci:// or repository chart.
func RenderChart(ctx context.Context, c Chart) (*Rendered, error) {
	if c.Release == "" {
		return nil, fmt.Errorf("chart %q: no release name; set one (it names the objects, as helm install's NAME)", c.Ref)
	}
	if err := chartutil.ValidateReleaseName(c.Release); err != nil {
		return nil, fmt.Errorf("chart %q: release name %q: %w", c.Ref, c.Release, err)
	}
	vals, err := userValues(c)
	if err != nil {
		return nil, err
	}
	ch, dgst, err := loadChart(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := checkChartDependencies(ch); err != nil {
		return nil, fmt.Errorf("chart %q: %w; run \"helm dependency build\" in the chart's directory (or vendor the subcharts into charts/)", c.Ref, err)
	}
	files, err := renderTemplates(ch, vals, c)
	if err != nil {
		return nil, fmt.Errorf("chart %q: %w", c.Ref, err)
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("chart %q: %w", c.Ref, err)
	}

	// The values as given, for the release record: rendering coalesces
	// the chart's defaults into vals.
	config, err := userValues(c)
	if err != nil {
		return nil, err
	}
	r := &Rendered{Chart: ch.Name() + "-" + ch.Metadata.Version, Digest: dgst, Loaded: ch, Config: config}
	var manifest strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&manifest, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	r.Manifest = manifest.String()
	// helm install creates crds/ before anything else; here they are
	// objects like the others, which sortForApply puts first.
	for _, crd := range ch.CRDObjects() {
		objs, err := decode(crd.File.Data)
		if err != nil {
			return nil, fmt.Errorf("chart %q: %s: %w", c.Ref, crd.Filename, err)
		}
		r.Objects = append(r.Objects, objs...)
	}
	for _, m := range manifests {
		objs, err := decode([]byte(m.Content))
		if err != nil {
			return nil, fmt.Errorf("chart %q: %s: %w", c.Ref, m.Name, err)
		}
		r.Objects = append(r.Objects, objs...)
	}
	if err := r.addHooks(hooks, c.IsUpgrade); err != nil {
		return nil, fmt.Errorf("chart %q: %w", c.Ref, err)
	}
	if len(r.Objects) == 0 {
		return nil, fmt.Errorf("chart %q: rendered no Kubernetes objects; check the values (a condition may leave every template empty)", c.Ref)
	}
	if err := checkDuplicates(r.Objects); err != nil {
		return nil, fmt.Errorf("chart %q: %w", c.Ref, err)
	}
	sortForApply(r.Objects)
	return r, nil
}

// userValues merges the values files and --set lines as helm template -f
// -f --set does. Read here rather than by helm's values.Options, which
// would also take URLs and stdin, so that an error names the file or line.
func userValues(c Chart) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range c.Values {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("chart %q: values file: %w (relative paths are resolved from the working directory)", c.Ref, err)
		}
		m, err := loader.LoadValues(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("chart %q: values file %s: %w; fix its YAML", c.Ref, f, err)
		}
		vals = loader.MergeMaps(vals, m)
	}
	for _, s := range c.Set {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("chart %q: set %q: %w; write it as helm --set takes it, e.g. image.tag=1.2.3 or hosts[0]=a.example.com", c.Ref, s, err)
		}
	}
	return vals, nil
}

func loadChart(ctx context.Context, c Chart) (*chart.Chart, string, error) {
	switch {
	case c.RepoURL != "":
		ch, err := fetchFromRepo(ctx, c)
		return ch, "", err
	case registry.IsOCI(c.Ref):
		return pullOCI(ctx, c)
	}
	fi, err := os.Stat(c.Ref)
	switch {
	case c.Ref == "":
		return nil, "", errors.New("chart: no reference; set it to a chart directory, a packaged .tgz, an oci:// reference, or a chart name with a repository URL")
	case errors.Is(err, os.ErrNotExist):
		return nil, "", fmt.Errorf("chart %q: no Chart.yaml: %s does not exist; set it to a chart directory, a packaged .tgz, an oci:// reference, or a chart name with a repository URL (relative paths are resolved from the working directory)", c.Ref, c.Ref)
	case err != nil:
		return nil, "", fmt.Errorf("chart %q: %w", c.Ref, err)
	case fi.IsDir():
		if _, err := os.Stat(filepath.Join(c.Ref, "Chart.yaml")); err != nil {
			return nil, "", fmt.Errorf("chart %q: no Chart.yaml in %s; point it at the chart's own directory", c.Ref, c.Ref)
		}
	}
	ch, err := loader.Load(c.Ref)
	if err != nil {
		return nil, "", fmt.Errorf("chart %q: %w", c.Ref, err)
	}
	return ch, "", nil
}

// pullOCI pulls the chart with helm's registry client and returns it with
// the manifest digest pulled.
func pullOCI(ctx context.Context, c Chart) (*chart.Chart, string, error) {
	ref := c.Ref
	var want godigest.Digest
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		d, err := godigest.Parse(ref[i+1:])
		if err != nil {
			return nil, "", fmt.Errorf("chart %q: digest: %w; write it as @sha256:<64 hex digits>", c.Ref, err)
		}
		want = d
	}
	tag := ""
	if name := strings.TrimSuffix(ref, "@"+want.String()); strings.Contains(path.Base(name), ":") {
		tag = name[strings.LastIndex(name, ":")+1:]
	}
	switch {
	case tag == "" && want == "" && c.Version == "":
		return nil, "", fmt.Errorf("chart %q: no version; set the version, or add :<version> or @sha256:<digest> to the reference", c.Ref)
	case tag == "" && want == "":
		ref += ":" + c.Version
	case tag != "" && c.Version != "" && tag != c.Version && tag != strings.ReplaceAll(c.Version, "+", "_"):
		return nil, "", fmt.Errorf("chart %q: the reference's tag %s and the version %s differ; give the version once", c.Ref, tag, c.Version)
	}

	// Helm's transport (it retries), bound to ctx: the client makes its
	// requests with a background context.
	hc := &http.Client{Transport: ctxTransport{ctx, registry.NewTransport(false)}}
	opts := []registry.ClientOption{registry.ClientOptHTTPClient(hc)}
	if c.PlainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	if c.Username != "" || c.Password != "" {
		opts = append(opts, registry.ClientOptBasicAuth(c.Username, c.Password))
	}
	rc, err := registry.NewClient(opts...)
	if err != nil {
		return nil, "", fmt.Errorf("chart %q: %w", c.Ref, err)
	}
	res, err := rc.Pull(ref)
	if err != nil {
		return nil, "", ociError(c, ref, err)
	}
	if want != "" && res.Manifest.Digest != want.String() {
		return nil, "", fmt.Errorf("chart %q: the registry served manifest %s, not the %s asked for; the reference's tag may have moved, or the digest is wrong", c.Ref, res.Manifest.Digest, want)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(res.Chart.Data))
	if err != nil {
		return nil, "", fmt.Errorf("chart %q: %w", c.Ref, err)
	}
	if c.Version != "" && ch.Metadata.Version != c.Version {
		return nil, "", fmt.Errorf("chart %q: pulled version %s of %s, not %s", c.Ref, ch.Metadata.Version, ch.Name(), c.Version)
	}
	return ch, res.Manifest.Digest, nil
}

func ociError(c Chart, ref string, err error) error {
	host, _, _ := strings.Cut(strings.TrimPrefix(ref, registry.OCIScheme+"://"), "/")
	how := "log in first (helm registry login " + host + " or docker login " + host + ") or set the username and password"
	if c.Username != "" || c.Password != "" {
		how = "check the username and password, and that they may pull this chart"
	}
	var resp *errcode.ErrorResponse
	switch {
	case errors.As(err, &resp) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		return fmt.Errorf("chart %q: the registry refused the pull (%d %s): %s", c.Ref, resp.StatusCode, http.StatusText(resp.StatusCode), how)
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		// A Basic challenge, and no credentials to answer it with.
		return fmt.Errorf("chart %q: the registry asks for credentials: %s", c.Ref, how)
	case errors.Is(err, errdef.ErrNotFound):
		return fmt.Errorf("chart %q: %s not found in the registry: check the chart's path and version", c.Ref, ref)
	}
	return fmt.Errorf("chart %q: pulling %s: %w", c.Ref, ref, err)
}

type ctxTransport struct {
	ctx context.Context
	rt  http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(r.WithContext(t.ctx))
}

// fetchFromRepo finds the chart in a classic repository's index.yaml and
// downloads it, with helm's repository code and HTTP getter. Helm's index
// cache goes to a temporary directory, removed on return.
func fetchFromRepo(ctx context.Context, c Chart) (*chart.Chart, error) {
	if c.Version == "" {
		return nil, fmt.Errorf("chart %q in %s: no version; set the chart version to deploy", c.Ref, c.RepoURL)
	}
	cache, err := os.MkdirTemp("", "gantry-helm-repo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cache)

	getters := getter.Getters()
	cr, err := repo.NewChartRepository(&repo.Entry{Name: "gantry", URL: c.RepoURL, Username: c.Username, Password: c.Password}, getters)
	if err != nil {
		return nil, fmt.Errorf("chart %q: repository %s: %w", c.Ref, c.RepoURL, err)
	}
	cr.CachePath = cache
	idxFile, err := cr.DownloadIndexFile()
	if err != nil {
		return nil, fmt.Errorf("chart %q: reading the index of %s: %w; check the repository URL (it serves index.yaml) and its credentials", c.Ref, c.RepoURL, err)
	}
	idx, err := repo.LoadIndexFile(idxFile)
	if err != nil {
		return nil, fmt.Errorf("chart %q: the index of %s: %w", c.Ref, c.RepoURL, err)
	}
	// An exact match: helm's IndexFile.Get falls back to the "closest"
	// version, and a deploy must get the version it names.
	var cv *repo.ChartVersion
	var have []string
	for _, v := range idx.Entries[c.Ref] {
		if v.Version == c.Version {
			cv = v
		}
		have = append(have, v.Version)
	}
	switch {
	case len(have) == 0:
		return nil, fmt.Errorf("chart %q not found in %s: its index.yaml has no chart of that name", c.Ref, c.RepoURL)
	case cv == nil:
		return nil, fmt.Errorf("chart %q version %s not found in %s; it has %s", c.Ref, c.Version, c.RepoURL, strings.Join(have, ", "))
	case len(cv.URLs) == 0:
		return nil, fmt.Errorf("chart %q version %s in %s has no download URL in index.yaml", c.Ref, c.Version, c.RepoURL)
	}
	u, err := repo.ResolveReferenceURL(c.RepoURL, cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("chart %q: %w", c.Ref, err)
	}
	pu, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("chart %q: %w", c.Ref, err)
	}
	g, err := getters.ByScheme(pu.Scheme)
	if err != nil {
		return nil, fmt.Errorf("chart %q: download URL %s: %w", c.Ref, u, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// WithURL: the getter sends the credentials only to the repository's
	// own host, as helm does.
	data, err := g.Get(u, getter.WithURL(c.RepoURL), getter.WithBasicAuth(c.Username, c.Password))
	if err != nil {
		return nil, fmt.Errorf("chart %q: downloading %s: %w", c.Ref, u, err)
	}
	if want := strings.TrimPrefix(cv.Digest, "sha256:"); want != "" {
		if sum := sha256.Sum256(data.Bytes()); hex.EncodeToString(sum[:]) != want {
			return nil, fmt.Errorf("chart %q: %s does not match the digest in index.yaml (sha256:%s); the repository is inconsistent", c.Ref, u, want)
		}
	}
	ch, err := loader.LoadArchive(data)
	if err != nil {
		return nil, fmt.Errorf("chart %q: %s: %w", c.Ref, u, err)
	}
	return ch, nil
}

// checkChartDependencies refuses a chart whose Chart.yaml lists a
// dependency that charts/ does not hold, as helm install does: rendering
// without it would silently leave its objects out.
func checkChartDependencies(ch *chart.Chart) error {
	var missing []string
	for _, d := range ch.Metadata.Dependencies {
		if !slices.ContainsFunc(ch.Dependencies(), func(sub *chart.Chart) bool { return sub.Name() == d.Name }) {
			missing = append(missing, d.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("found in Chart.yaml, but missing in charts/: %s", strings.Join(missing, ", "))
	}
	return nil
}

// renderTemplates does what helm install's client-only dry run does up
// to the sorting, with the capabilities given: helm's action would add
// every built-in API to them, and a chart must see what the cluster
// serves.
func renderTemplates(ch *chart.Chart, vals map[string]any, c Chart) (map[string]string, error) {
	caps := common.DefaultCapabilities.Copy()
	if c.KubeVersion != "" {
		kv, err := common.ParseKubeVersion(c.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("kubernetes version %q: %w", c.KubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	if len(c.APIVersions) > 0 {
		caps.APIVersions = slices.Clone(c.APIVersions)
	}
	if kv := ch.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("the chart requires kubeVersion %s, which Kubernetes %s does not satisfy", kv, caps.KubeVersion.Version)
	}
	if err := chartutil.ProcessDependencies(ch, vals); err != nil {
		return nil, fmt.Errorf("processing the chart's dependencies: %w", err)
	}
	opts := common.ReleaseOptions{Name: c.Release, Namespace: c.Namespace, Revision: 1, IsInstall: !c.IsUpgrade, IsUpgrade: c.IsUpgrade}
	rv, err := commonutil.ToRenderValuesWithSchemaValidation(ch, vals, opts, caps, false)
	if err != nil {
		return nil, err
	}
	files, err := engine.Engine{}.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	// NOTES.txt is text for the user, not a manifest.
	for f := range files {
		if strings.HasSuffix(f, "NOTES.txt") {
			delete(files, f)
		}
	}
	return files, nil
}

// helmHookPoints maps a helm hook event onto Gantry's hook point, on an
// install ([0]) and on an upgrade ([1]); "" where it does not run. Events
// not here (test, pre-delete, post-delete) are never run.
var helmHookPoints = map[release.HookEvent][2]string{
	release.HookPreInstall:   {hookPreDeploy, ""},
	release.HookPreUpgrade:   {"", hookPreDeploy},
	release.HookPostInstall:  {hookPostDeploy, ""},
	release.HookPostUpgrade:  {"", hookPostDeploy},
	release.HookPreRollback:  {hookOnRollback, hookOnRollback},
	release.HookPostRollback: {hookOnRollback, hookOnRollback},
}

// addHooks turns helm's hooks into Gantry's: a Job becomes a hook Job for
// each point its events map onto; another kind that helm creates on
// install or upgrade (a ConfigMap or Secret a Job hook reads) is applied
// as a plain object, as Gantry runs only Jobs; the rest is noted.
func (r *Rendered) addHooks(hs []*release.Hook, upgrade bool) error {
	mode := 0
	if upgrade {
		mode = 1
	}
	slices.SortStableFunc(hs, func(a, b *release.Hook) int {
		return cmp.Or(cmp.Compare(a.Weight, b.Weight), strings.Compare(a.Name, b.Name))
	})
	for _, h := range hs {
		objs, err := decode([]byte(h.Manifest))
		if err != nil {
			return fmt.Errorf("%s: %w", h.Path, err)
		}
		var points, never, all []string // never: events Gantry never runs (test, delete)
		deploys := false                // some event is an install or upgrade one
		for _, e := range h.Events {
			all = append(all, e.String())
			p, ok := helmHookPoints[e]
			if !ok {
				never = append(never, e.String())
				continue
			}
			deploys = deploys || p != [2]string{hookOnRollback, hookOnRollback}
			if p[mode] != "" && !slices.Contains(points, p[mode]) {
				points = append(points, p[mode])
			}
		}
		for _, o := range objs {
			hook := func(events []string) string {
				return fmt.Sprintf("helm %s hook %s %s", strings.Join(events, ","), o.GetKind(), o.GetName())
			}
			gvk := o.GroupVersionKind()
			switch {
			case gvk.Group == "batch" && gvk.Kind == "Job":
				if len(never) > 0 {
					r.Notes = append(r.Notes, "not run by gantry-deploy: "+hook(never))
				}
				for _, p := range points {
					j := o.DeepCopy()
					unhook(j, p)
					r.Hooks = append(r.Hooks, j)
				}
			case deploys:
				// On install and upgrade alike, whichever its events
				// say: an object left out of a deploy is pruned by it.
				r.Notes = append(r.Notes, "applied as a normal object, before the pre-deploy hooks (gantry-deploy runs only Job hooks): "+hook(all))
				unhook(o, "")
				r.Objects = append(r.Objects, o)
			case len(never) == len(all):
				r.Notes = append(r.Notes, "not run by gantry-deploy: "+hook(all))
			default:
				r.Notes = append(r.Notes, "not run by gantry-deploy (it runs only Job hooks): "+hook(all))
			}
		}
	}
	return nil
}

// unhook removes helm's hook annotations, so that gantry.dev/hook (set to
// point unless "") is the only one a tool reads, and records the original
// in gantry.dev/helm-hook.
func unhook(o *unstructured.Unstructured, point string) {
	ann := o.GetAnnotations()
	ann[AnnotationHelmHook] = ann[release.HookAnnotation]
	for k := range ann {
		if strings.HasPrefix(k, release.HookAnnotation) {
			delete(ann, k)
		}
	}
	if point != "" {
		ann[annotationHook] = point
	}
	o.SetAnnotations(ann)
}
