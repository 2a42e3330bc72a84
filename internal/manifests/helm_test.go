package manifests

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"
	"helm.sh/helm/v4/pkg/repo/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	testChart  = "testdata/charts/app"
	testValues = "testdata/charts/values"
)

// helmHome is where helm's config, cache and data and the docker config
// point during the tests: nothing is read from or written to $HOME.
var helmHome string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gantry-helm-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helmHome = dir
	for _, v := range []string{"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME", "DOCKER_CONFIG"} {
		os.Setenv(v, filepath.Join(dir, strings.ToLower(v)))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func renderChart(t *testing.T, c Chart) *Rendered {
	t.Helper()
	r, err := RenderChart(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func TestHelmRenderValues(t *testing.T) {
	t.Parallel()
	r := renderChart(t, Chart{
		Ref:         testChart,
		Values:      []string{testValues + "/staging.yaml", testValues + "/digest.yaml"},
		Set:         []string{"logLevel=warn", "web.replicas=5"},
		Release:     "shop",
		Namespace:   "shop-staging",
		KubeVersion: "v1.37.2",
	})
	if r.Chart != "app-0.1.0" || r.Digest != "" {
		t.Errorf("Chart, Digest = %q, %q, want app-0.1.0 and none", r.Chart, r.Digest)
	}
	// The subchart's Deployment is there; the test Pod and NOTES.txt are not.
	// In apply order; the hook ConfigMap has no namespace, so it sorts first.
	want := []string{"ConfigMap/shop-migrate", "ConfigMap/shop-config", "Service/shop-api", "Deployment/shop-api", "Deployment/shop-fixture-redis", "Deployment/shop-web", "Deployment/shop-worker", "HorizontalPodAutoscaler/shop-api"}
	if got := names(r.Objects); !slices.Equal(got, want) {
		t.Errorf("objects = %v, want %v", got, want)
	}

	api := find(r.Objects, "Deployment", "shop-api")
	// digest.yaml comes after staging.yaml: its replicas win.
	if n, _, _ := unstructured.NestedInt64(api.Object, "spec", "replicas"); n != 4 {
		t.Errorf("api replicas = %d, want 4 (the last values file)", n)
	}
	if got, want := container(t, api, "api")["image"], "ghcr.io/gantry-ci/fixture-app@sha256:1111111111111111111111111111111111111111111111111111111111111111"; got != want {
		t.Errorf("api image = %v, want %s", got, want)
	}
	if n, _, _ := unstructured.NestedInt64(find(r.Objects, "Deployment", "shop-web").Object, "spec", "replicas"); n != 5 {
		t.Errorf("web replicas = %d, want 5 (--set)", n)
	}
	if api.GetNamespace() != "shop-staging" {
		t.Errorf("api namespace = %q, want the release namespace", api.GetNamespace())
	}
	cm := find(r.Objects, "ConfigMap", "shop-config")
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	// --set comes after the values files.
	if data["LOG_LEVEL"] != "warn" || data["KUBE_VERSION"] != "v1.37.2" || data["IS_UPGRADE"] != "false" {
		t.Errorf("config data = %v, want LOG_LEVEL warn (--set), KUBE_VERSION v1.37.2, IS_UPGRADE false", data)
	}

	// The ConfigMap hook the migration reads is a plain object now.
	mig := find(r.Objects, "ConfigMap", "shop-migrate")
	ann := mig.GetAnnotations()
	if ann["gantry.dev/helm-hook"] != "pre-install,pre-upgrade" || ann["helm.sh/hook"] != "" || ann["helm.sh/hook-weight"] != "" || ann["gantry.dev/hook"] != "" {
		t.Errorf("ConfigMap hook annotations = %v, want only gantry.dev/helm-hook", ann)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool {
		return strings.HasPrefix(n, "applied as a normal object") && strings.HasSuffix(n, "helm pre-install,pre-upgrade hook ConfigMap shop-migrate")
	}) {
		t.Errorf("notes %q do not say the ConfigMap hook is applied as an object", r.Notes)
	}
}

func TestHelmRenderHooks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		upgrade bool
		want    []string // name point, in the order to run
	}{
		{false, []string{"r-migrate pre-deploy", "r-migrate-down on-rollback", "r-smoke post-deploy"}},
		// The backup (pre-upgrade only, weight -5) first.
		{true, []string{"r-backup pre-deploy", "r-migrate pre-deploy", "r-migrate-down on-rollback", "r-smoke post-deploy"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("upgrade=", tt.upgrade), func(t *testing.T) {
			t.Parallel()
			r := renderChart(t, Chart{Ref: testChart, Release: "r", IsUpgrade: tt.upgrade})
			var got []string
			for _, h := range r.Hooks {
				if h.GetKind() != "Job" {
					t.Errorf("hook %s is a %s", h.GetName(), h.GetKind())
				}
				got = append(got, h.GetName()+" "+h.GetAnnotations()["gantry.dev/hook"])
				for k := range h.GetAnnotations() {
					if strings.HasPrefix(k, "helm.sh/") {
						t.Errorf("hook %s keeps annotation %s", h.GetName(), k)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("hooks = %q, want %q", got, tt.want)
			}
			if ann := find(r.Hooks, "Job", "r-migrate").GetAnnotations(); ann["gantry.dev/helm-hook"] != "pre-upgrade,pre-install" {
				t.Errorf("migrate's gantry.dev/helm-hook = %q, want helm's annotation as written", ann["gantry.dev/helm-hook"])
			}
			if find(r.Objects, "Job", "r-migrate") != nil || find(r.Objects, "Pod", "r-test-connection") != nil || find(r.Hooks, "Pod", "r-test-connection") != nil {
				t.Error("a hook Job or the test Pod is among the objects")
			}
			if !slices.Contains(r.Notes, "not run by gantry-deploy: helm test hook Pod r-test-connection") {
				t.Errorf("notes %q do not list the test hook", r.Notes)
			}
			data, _, _ := unstructured.NestedStringMap(find(r.Objects, "ConfigMap", "r-config").Object, "data")
			if data["IS_UPGRADE"] != fmt.Sprint(tt.upgrade) {
				t.Errorf(".Release.IsUpgrade = %s, want %v", data["IS_UPGRADE"], tt.upgrade)
			}
		})
	}
}

func TestHelmRenderCapabilities(t *testing.T) {
	t.Parallel()
	served := []string{"v1", "apps/v1", "batch/v1"}
	for _, tt := range []struct {
		apis    []string
		wantHPA bool
	}{
		{nil, true}, // helm's default set has every built-in API
		{served, false},
		{append(slices.Clone(served), "autoscaling/v2"), true},
	} {
		r := renderChart(t, Chart{Ref: testChart, Release: "r", APIVersions: tt.apis})
		if got := find(r.Objects, "HorizontalPodAutoscaler", "r-api") != nil; got != tt.wantHPA {
			t.Errorf("APIVersions %v: HPA rendered = %v, want %v", tt.apis, got, tt.wantHPA)
		}
	}
}

func TestHelmRenderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    Chart
		want []string
	}{
		{"no such dir", Chart{Ref: "testdata/charts/nope", Release: "r"},
			[]string{`chart "testdata/charts/nope": no Chart.yaml`, "does not exist"}},
		{"not a chart", Chart{Ref: testValues, Release: "r"},
			[]string{`chart "testdata/charts/values": no Chart.yaml in testdata/charts/values`}},
		{"no release", Chart{Ref: testChart},
			[]string{"no release name"}},
		{"template error", Chart{Ref: "testdata/charts/broken", Release: "r"},
			[]string{"broken/templates/configmap.yaml:6", "nil pointer"}},
		{"bad values file", Chart{Ref: testChart, Release: "r", Values: []string{testValues + "/staging.yaml", testValues + "/bad.yaml"}},
			[]string{"values file testdata/charts/values/bad.yaml", "yaml: line 3"}},
		{"no values file", Chart{Ref: testChart, Release: "r", Values: []string{testValues + "/prod.yaml"}},
			[]string{"testdata/charts/values/prod.yaml", "no such file"}},
		{"bad set", Chart{Ref: testChart, Release: "r", Set: []string{"image.tag=1", "replicas[x]=3"}},
			[]string{`set "replicas[x]=3"`}},
		{"missing dependency", Chart{Ref: "testdata/charts/missing-dep", Release: "r"},
			[]string{"missing in charts/: postgresql", "helm dependency build"}},
		{"bad kube version", Chart{Ref: testChart, Release: "r", KubeVersion: "latest"},
			[]string{`kubernetes version "latest"`}},
		{"oci without version", Chart{Ref: "oci://127.0.0.1:1/charts/app", Release: "r"},
			[]string{"no version"}},
		{"repo without version", Chart{Ref: "app", RepoURL: "http://127.0.0.1:1", Release: "r"},
			[]string{"no version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := RenderChart(t.Context(), tt.c)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// packageChart packages the test chart as helm package does and returns
// the .tgz's path.
func packageChart(t *testing.T, dir string) string {
	t.Helper()
	ch, err := loader.Load(testChart)
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatal(err)
	}
	return tgz
}

// pushChart pushes the packaged test chart to host/charts/app:0.1.0 with
// helm's registry client and returns the manifest digest.
func pushChart(t *testing.T, host string, opts ...registry.ClientOption) string {
	t.Helper()
	b, err := os.ReadFile(packageChart(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registry.NewClient(append(opts, registry.ClientOptPlainHTTP())...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rc.Push(b, host+"/charts/app:0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	return res.Manifest.Digest
}

func startRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	reg, err := ocitest.StartRegistry(wrap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg.Host
}

func TestHelmRenderOCI(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, nil)
	dgst := pushChart(t, host)
	ref := "oci://" + host + "/charts/app"
	wrong := "sha256:" + strings.Repeat("0", 64)

	for _, c := range []Chart{
		{Ref: ref, Version: "0.1.0"},
		{Ref: ref + ":0.1.0"},
		{Ref: ref + "@" + dgst},
		{Ref: ref + ":0.1.0@" + dgst, Version: "0.1.0"},
	} {
		c.Release, c.PlainHTTP = "r", true
		r, err := RenderChart(t.Context(), c)
		if err != nil {
			t.Errorf("%s (version %q): %v", c.Ref, c.Version, err)
			continue
		}
		if r.Chart != "app-0.1.0" || r.Digest != dgst || len(Workloads(r.Objects)) != 4 || len(r.Hooks) != 3 {
			t.Errorf("%s: chart %s, digest %s, %d Deployments, %d hooks; want app-0.1.0, %s, 4 and 3", c.Ref, r.Chart, r.Digest, len(Workloads(r.Objects)), len(r.Hooks), dgst)
		}
	}

	for _, tt := range []struct {
		c    Chart
		want string
	}{
		{Chart{Ref: ref + ":0.1.0@" + wrong}, "the registry served manifest " + dgst + ", not the " + wrong},
		{Chart{Ref: ref + "@" + wrong}, "not found in the registry"},
		{Chart{Ref: ref, Version: "0.2.0"}, host + "/charts/app:0.2.0 not found in the registry"},
		{Chart{Ref: ref + ":0.1.0", Version: "0.2.0"}, "the reference's tag 0.1.0 and the version 0.2.0 differ"},
		{Chart{Ref: ref + "@sha256:abc"}, "digest"},
	} {
		tt.c.Release, tt.c.PlainHTTP = "r", true
		_, err := RenderChart(t.Context(), tt.c)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s (version %q): error %v, want one containing %q", tt.c.Ref, tt.c.Version, err, tt.want)
		}
	}
}

func TestHelmRenderOCIAuth(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, ocitest.BasicAuth("ci", "s3cret"))
	dgst := pushChart(t, host, registry.ClientOptBasicAuth("ci", "s3cret"))
	c := Chart{Ref: "oci://" + host + "/charts/app", Version: "0.1.0", Release: "r", PlainHTTP: true}

	_, err := RenderChart(t.Context(), c)
	if err == nil || !strings.Contains(err.Error(), "asks for credentials: log in first") {
		t.Errorf("without credentials: error %v, want one saying to log in", err)
	}
	c.Username, c.Password = "ci", "wrong"
	if _, err := RenderChart(t.Context(), c); err == nil || !strings.Contains(err.Error(), "check the username and password") {
		t.Errorf("with a wrong password: error %v, want one saying to check the credentials", err)
	}
	c.Password = "s3cret"
	r := renderChart(t, c)
	if r.Digest != dgst {
		t.Errorf("digest = %s, want %s", r.Digest, dgst)
	}
}

func TestHelmRenderRepo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tgz := packageChart(t, dir)
	// The packaged chart renders as its directory does.
	if r := renderChart(t, Chart{Ref: tgz, Release: "r"}); r.Chart != "app-0.1.0" || len(Workloads(r.Objects)) != 4 {
		t.Errorf("%s: chart %s with %d Deployments, want app-0.1.0 with 4", tgz, r.Chart, len(Workloads(r.Objects)))
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	idx, err := repo.IndexDirectory(dir, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := renderChart(t, Chart{Ref: "app", RepoURL: srv.URL, Version: "0.1.0", Release: "r", Set: []string{"replicas=7"}})
	if r.Chart != "app-0.1.0" || r.Digest != "" {
		t.Errorf("Chart, Digest = %q, %q, want app-0.1.0 and none", r.Chart, r.Digest)
	}
	if n, _, _ := unstructured.NestedInt64(find(r.Objects, "Deployment", "r-api").Object, "spec", "replicas"); n != 7 {
		t.Errorf("api replicas = %d, want 7", n)
	}

	for _, tt := range []struct{ ref, version, want string }{
		{"app", "0.2.0", `chart "app" version 0.2.0 not found in ` + srv.URL + "; it has 0.1.0"},
		{"web", "0.1.0", `chart "web" not found in ` + srv.URL},
	} {
		_, err := RenderChart(t.Context(), Chart{Ref: tt.ref, RepoURL: srv.URL, Version: tt.version, Release: "r"})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %s: error %v, want one containing %q", tt.ref, tt.version, err, tt.want)
		}
	}
	_, err = RenderChart(t.Context(), Chart{Ref: "app", RepoURL: srv.URL + "/nope", Version: "0.1.0", Release: "r"})
	if err == nil || !strings.Contains(err.Error(), "reading the index of "+srv.URL+"/nope") {
		t.Errorf("a URL without index.yaml: error %v", err)
	}

	// Helm's repository cache went to a directory of RenderChart's own.
	if entries, _ := os.ReadDir(filepath.Join(helmHome, "helm_cache_home")); len(entries) > 0 {
		t.Errorf("helm's cache home has %v", entries)
	}
}
