package manifests

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/golden"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// k8s is the sample app's kustomize tree, shared with the deploy stage's
// end-to-end tests.
const k8s = "../../testdata/k8s"

func TestRenderKustomize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dir        string
		namespace  string
		replicas   int64
		env        string // the api container's ENVIRONMENT, "" for none
		envLabel   string // the environment label on every object, "" for none
		wantKinds  []string
		wantNoPDBs bool
	}{
		{
			dir:       "base",
			replicas:  3,
			wantKinds: []string{"ConfigMap", "Service", "Deployment"},
		},
		{
			dir:       "overlays/staging",
			namespace: "prompt-builder-staging",
			replicas:  2,
			env:       "staging",
			envLabel:  "staging",
			wantKinds: []string{"Namespace", "ConfigMap", "Service", "Deployment"},
		},
		{
			dir:       "overlays/production",
			namespace: "prompt-builder-production",
			replicas:  4,
			env:       "production",
			envLabel:  "production",
			wantKinds: []string{"Namespace", "PodDisruptionBudget", "ConfigMap", "Service", "Deployment"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			objs, err := Render(filepath.Join(k8s, tt.dir))
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(objs); !slices.Equal(got, tt.wantKinds) {
				t.Errorf("kinds = %v, want %v (in apply order)", got, tt.wantKinds)
			}
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					// The overlay's own namespace object is cluster-scoped.
					if o.GetName() != tt.namespace {
						t.Errorf("overlay creates namespace %s, want %s", o.GetName(), tt.namespace)
					}
					continue
				}
				if got := o.GetNamespace(); got != tt.namespace {
					t.Errorf("%s: namespace = %q, want %q", describe(o), got, tt.namespace)
				}
				if got := o.GetLabels()["environment"]; got != tt.envLabel {
					t.Errorf("%s: label environment = %q, want %q", describe(o), got, tt.envLabel)
				}
			}

			ws := Workloads(objs)
			if len(ws) != 1 || ws[0].GetName() != "prompt-builder" {
				t.Fatalf("Workloads = %v, want the prompt-builder Deployment", names(ws))
			}
			d := ws[0]
			if got, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); got != tt.replicas {
				t.Errorf("replicas = %d, want %d", got, tt.replicas)
			}
			if got, _, _ := unstructured.NestedString(d.Object, "spec", "template", "metadata", "labels", "environment"); got != tt.envLabel {
				t.Errorf("pod template label environment = %q, want %q", got, tt.envLabel)
			}
			// The label must stay out of the selector: it is immutable, so
			// adding a label there would break every later apply.
			sel, _, _ := unstructured.NestedStringMap(d.Object, "spec", "selector", "matchLabels")
			if want := map[string]string{"app.kubernetes.io/name": "prompt-builder"}; !maps.Equal(sel, want) {
				t.Errorf("selector = %v, want %v", sel, want)
			}

			api := container(t, d, "api")
			if got := envValue(api, "ENVIRONMENT"); got != tt.env {
				t.Errorf("ENVIRONMENT = %q, want %q", got, tt.env)
			}
			if got := api["image"]; got != "ghcr.io/acme/prompt-builder:latest" {
				t.Errorf("image = %v, want the placeholder ghcr.io/acme/prompt-builder:latest", got)
			}

			// The generated ConfigMap's name carries a content hash, and the
			// Deployment must refer to it by that name.
			var cm string
			for _, o := range objs {
				if o.GetKind() == "ConfigMap" {
					cm = o.GetName()
				}
			}
			if !regexp.MustCompile(`^prompt-builder-config-[a-z0-9]{10}$`).MatchString(cm) {
				t.Errorf("ConfigMap name = %q, want prompt-builder-config-<hash>", cm)
			}
			if got := envFromConfigMaps(api); !slices.Equal(got, []string{cm}) {
				t.Errorf("envFrom configMapRefs = %v, want [%s]", got, cm)
			}
		})
	}
}

// TestRenderStaging pins the whole staging rendering, so that a change to the
// sample manifests or to kustomize shows up in review.
func TestRenderStaging(t *testing.T) {
	t.Parallel()
	objs, err := Render(filepath.Join(k8s, "overlays/staging"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, got)
}

func TestRenderPlain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want []string // Kind/name in the returned order
	}{
		{
			path: "testdata/plain/app.yaml",
			want: []string{
				"Namespace/shop",
				"Secret/web-secret",
				"ConfigMap/web-config",
				"Service/web",
				"Deployment/web",
			},
		},
		{
			// 10-crd.yaml and 20-app.yml; not app.json, README.md or sub/.
			path: "testdata/plain/dir",
			want: []string{
				"CustomResourceDefinition/widgets.example.com",
				"Deployment/worker",
				"Widget/gadget",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			objs, err := Render(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(objs); !slices.Equal(got, tt.want) {
				t.Errorf("objects = %v, want %v", got, tt.want)
			}
			// Whole numbers come back as int64, as unstructured's accessors
			// need; encoding/json alone would give float64.
			for _, d := range Workloads(objs) {
				if _, found, err := unstructured.NestedInt64(d.Object, "spec", "replicas"); !found || err != nil {
					t.Errorf("%s: replicas is not an int64: found=%v err=%v", describe(d), found, err)
				}
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string // written into a fresh directory, the path rendered
		path  string            // relative to that directory; "" means the directory
		want  []string          // substrings of the error
	}{
		{
			name:  "kustomization with a missing resource",
			files: map[string]string{"kustomization.yaml": "resources:\n- missing.yaml\n"},
			want:  []string{`input "manifests"`, "kustomize build", "missing.yaml"},
		},
		{
			name:  "kustomization with an unknown field",
			files: map[string]string{"kustomization.yml": "resourcez:\n- app.yaml\n"},
			want:  []string{`input "manifests"`, "kustomize build", `unknown field "resourcez"`},
		},
		{
			name:  "Kustomization that is not YAML",
			files: map[string]string{"Kustomization": "resources: [\n"},
			want:  []string{`input "manifests"`, "kustomize build", "fix the kustomization"},
		},
		{
			name: "missing path",
			path: "nope",
			want: []string{`input "manifests"`, "nope does not exist"},
		},
		{
			name:  "directory without manifests",
			files: map[string]string{"notes.txt": "hello"},
			want:  []string{`input "manifests"`, "no kustomization file and no *.yaml or *.yml files"},
		},
		{
			name:  "only empty documents",
			files: map[string]string{"a.yaml": "---\n# nothing\n---\n"},
			want:  []string{`input "manifests"`, "holds no Kubernetes objects"},
		},
		{
			name:  "document without kind",
			files: map[string]string{"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n"},
			path:  "a.yaml",
			want:  []string{`input "manifests"`, "a.yaml: document 2: not a Kubernetes object: no kind"},
		},
		{
			name:  "document that is a scalar",
			files: map[string]string{"a.yaml": "just text\n"},
			want:  []string{`input "manifests"`, "a.yaml: document 1"},
		},
		{
			name: "same object twice",
			files: map[string]string{
				"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n",
				"b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n",
			},
			want: []string{`input "manifests"`, "ConfigMap/a in namespace x is defined twice"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, tt.path)
			_, err := Render(path)
			if err == nil {
				t.Fatalf("Render(%s) succeeded, want an error", path)
			}
			want := append([]string{path}, tt.want...)
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestYAML(t *testing.T) {
	t.Parallel()
	objs := parse(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b}
`)
	got, err := YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	want := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"
	if string(got) != want {
		t.Errorf("YAML =\n%s\nwant\n%s", got, want)
	}
	// What YAML writes, Render reads back unchanged.
	again, err := decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := names(again), names(objs); !slices.Equal(g, w) {
		t.Errorf("round trip = %v, want %v", g, w)
	}
}

func parse(t *testing.T, s string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func kinds(objs []*unstructured.Unstructured) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.GetKind())
	}
	return ks
}

func names(objs []*unstructured.Unstructured) []string {
	var ns []string
	for _, o := range objs {
		ns = append(ns, o.GetKind()+"/"+o.GetName())
	}
	return ns
}

// container returns the named container of a Deployment's pod template.
func container(t *testing.T, d *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	cs, _, err := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if m, ok := c.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	t.Fatalf("%s has no container %q", describe(d), name)
	return nil
}

func envValue(c map[string]any, name string) string {
	env, _ := c["env"].([]any)
	for _, e := range env {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}

func envFromConfigMaps(c map[string]any) []string {
	var cms []string
	from, _ := c["envFrom"].([]any)
	for _, f := range from {
		if n, found, _ := unstructured.NestedString(f.(map[string]any), "configMapRef", "name"); found {
			cms = append(cms, n)
		}
	}
	return cms
}
