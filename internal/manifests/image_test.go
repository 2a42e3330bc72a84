package manifests

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	digest   = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	appRef   = "ghcr.io/acme/prompt-builder@" + digest
	nginxRef = "nginx@" + digest
)

// workloads holds every kind PinImage looks into, plus a ConfigMap whose
// data mentions the image (left alone: only pod specs are images).
const workloads = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: prod}
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: ghcr.io/acme/prompt-builder:v1.2.3
      containers:
        - name: api
          image: ghcr.io/acme/prompt-builder:latest
        - name: proxy
          image: docker.io/library/nginx:1.27
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: report
              image: GHCR.IO/acme/prompt-builder@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: cache}
spec:
  template:
    spec:
      containers:
        - name: redis
          image: redis:7
---
apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  containers:
    - name: shell
      image: nginx
---
apiVersion: batch/v1
kind: Job
metadata: {name: seed}
spec:
  template:
    spec:
      containers:
        - name: seed
          image: ghcr.io/acme/prompt-builder-seed:v1
---
apiVersion: v1
kind: ConfigMap
metadata: {name: notes}
data:
  image: ghcr.io/acme/prompt-builder:latest
`

func TestPinImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ref  string
		want []string // Change.String() of each change
	}{
		{
			name: "containers, init containers and a CronJob",
			ref:  appRef,
			want: []string{
				"prod Deployment/api container migrate: ghcr.io/acme/prompt-builder:v1.2.3 → " + appRef,
				"prod Deployment/api container api: ghcr.io/acme/prompt-builder:latest → " + appRef,
				"CronJob/nightly container report: GHCR.IO/acme/prompt-builder@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff → " + appRef,
			},
		},
		{
			name: "short Docker Hub name matches the full one",
			ref:  nginxRef,
			want: []string{
				"prod Deployment/api container proxy: docker.io/library/nginx:1.27 → " + nginxRef,
				"Pod/debug container shell: nginx → " + nginxRef,
			},
		},
		{
			name: "full Docker Hub name matches the short one",
			ref:  "docker.io/library/nginx:1.27@" + digest,
			want: []string{
				"prod Deployment/api container proxy: docker.io/library/nginx:1.27 → docker.io/library/nginx:1.27@" + digest,
				"Pod/debug container shell: nginx → docker.io/library/nginx:1.27@" + digest,
			},
		},
		{
			name: "registry host in another case",
			ref:  "Ghcr.io/acme/prompt-builder-seed@" + digest,
			want: []string{
				"Job/seed container seed: ghcr.io/acme/prompt-builder-seed:v1 → Ghcr.io/acme/prompt-builder-seed@" + digest,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := parse(t, workloads)
			before := images(objs)
			changes, err := PinImage(objs, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}

			// The objects say what the changes say, and nothing else moved.
			after := images(objs)
			for k, img := range before {
				want := img
				for _, c := range changes {
					if k == c.Kind+"/"+c.Name+"/"+c.Container {
						want = c.After
					}
				}
				if after[k] != want {
					t.Errorf("%s: image = %q, want %q", k, after[k], want)
				}
			}
			if d, _, _ := unstructured.NestedString(objs[len(objs)-1].Object, "data", "image"); d != "ghcr.io/acme/prompt-builder:latest" {
				t.Errorf("ConfigMap data changed to %q", d)
			}

			// Pinning again finds the images and changes nothing.
			again, err := PinImage(objs, tt.ref)
			if err != nil || len(again) != 0 {
				t.Errorf("second PinImage = %v, %v; want no changes and no error", again, err)
			}
		})
	}
}

func TestPinImageRendered(t *testing.T) {
	t.Parallel()
	objs, err := Render(filepath.Join(k8s, "overlays/production"))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := PinImage(objs, appRef)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{
		Kind: "Deployment", Namespace: "prompt-builder-production", Name: "prompt-builder",
		Container: "api", Before: "ghcr.io/acme/prompt-builder:latest", After: appRef,
	}}
	if !slices.Equal(changes, want) {
		t.Errorf("changes = %+v, want %+v", changes, want)
	}
	if got := container(t, Workloads(objs)[0], "api")["image"]; got != appRef {
		t.Errorf("image = %v, want %s", got, appRef)
	}
}

func TestPinImageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		manifests string
		ref       string
		want      []string
	}{
		{
			name:      "tag reference",
			manifests: workloads,
			ref:       "ghcr.io/acme/prompt-builder:v1.2.3",
			want:      []string{`input "image" must be a digest reference (repo@sha256:…)`, "ghcr.io/acme/prompt-builder:v1.2.3"},
		},
		{
			name:      "repository without tag or digest",
			manifests: workloads,
			ref:       "ghcr.io/acme/prompt-builder",
			want:      []string{`input "image" must be a digest reference (repo@sha256:…)`},
		},
		{
			name:      "malformed digest",
			manifests: workloads,
			ref:       "ghcr.io/acme/prompt-builder@sha256:abc",
			want:      []string{`input "image" must be a digest reference (repo@sha256:…)`},
		},
		{
			name:      "empty",
			manifests: workloads,
			ref:       " ",
			want:      []string{`input "image" is empty`},
		},
		{
			name:      "no container uses the repository",
			manifests: workloads,
			ref:       "ghcr.io/acme/other@" + digest,
			want: []string{
				`input "image": no container in the manifests uses ghcr.io/acme/other (from ghcr.io/acme/other@` + digest + ")",
				// Every image in use, once each, sorted.
				"they use GHCR.IO/acme/prompt-builder@sha256:ffff",
				"docker.io/library/nginx:1.27, ghcr.io/acme/prompt-builder-seed:v1, ghcr.io/acme/prompt-builder:latest, ghcr.io/acme/prompt-builder:v1.2.3, nginx, redis:7;",
				`change the manifests' image to ghcr.io/acme/other`,
			},
		},
		{
			name:      "a prefix of a repository is another repository",
			manifests: workloads,
			ref:       "ghcr.io/acme/prompt@" + digest,
			want:      []string{"no container in the manifests uses ghcr.io/acme/prompt "},
		},
		{
			name:      "no workloads at all",
			manifests: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
			ref:       appRef,
			want:      []string{`input "manifests": no container image to set to ` + appRef},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := parse(t, tt.manifests)
			before := images(objs)
			changes, err := PinImage(objs, tt.ref)
			if err == nil {
				t.Fatalf("PinImage succeeded with %v, want an error", changes)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if after := images(objs); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("images changed despite the error: %v → %v", before, after)
			}
		})
	}
}

// images maps Kind/name/container to the image of every container PinImage
// may touch.
func images(objs []*unstructured.Unstructured) map[string]string {
	m := map[string]string{}
	for _, o := range objs {
		path, ok := podSpecPath[o.GroupVersionKind().Group+"/"+o.GetKind()]
		if !ok {
			continue
		}
		for _, field := range containerFields {
			cs, _, _ := unstructured.NestedSlice(o.Object, append(slices.Clone(path), field)...)
			for _, c := range cs {
				cm := c.(map[string]any)
				m[o.GetKind()+"/"+o.GetName()+"/"+cm["name"].(string)] = cm["image"].(string)
			}
		}
	}
	return m
}
