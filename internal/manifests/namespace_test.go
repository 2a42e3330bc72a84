package manifests

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// scope stands in for the cluster's RESTMapper.
func scope(gvk schema.GroupVersionKind) (bool, error) {
	switch gvk.Kind {
	case "Namespace", "ClusterRole", "CustomResourceDefinition":
		return false, nil
	case "Mystery":
		return false, errors.New(`no matches for kind "Mystery" in version "example.com/v1"`)
	}
	return true, nil
}

const mixed = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
`

func TestSetNamespace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		manifests string
		ns        string
		want      []string // namespace of each object, in order
		wantErr   []string // substrings; nil means no error
	}{
		{
			name:      "fills namespaced objects, keeps matching ones, leaves cluster-scoped alone",
			manifests: mixed,
			ns:        "shop",
			want:      []string{"", "", "shop", "shop"},
		},
		{
			name:      "no override changes nothing",
			manifests: mixed,
			ns:        "",
			want:      []string{"", "", "", "shop"},
		},
		{
			name: "objects in another namespace are refused, all of them",
			manifests: mixed + `---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: prompt-builder-staging}
`,
			ns: "prompt-builder-production",
			wantErr: []string{
				`input "namespace" is "prompt-builder-production"`,
				"Service/web in namespace shop, ConfigMap/cfg in namespace prompt-builder-staging",
				"remove metadata.namespace from the manifests",
			},
		},
		{
			name:      "invalid name",
			manifests: mixed,
			ns:        "Prod_1",
			wantErr:   []string{`input "namespace": "Prod_1" is not a valid namespace name`},
		},
		{
			name:      "unknown kind",
			manifests: "apiVersion: example.com/v1\nkind: Mystery\nmetadata: {name: m}\n",
			ns:        "shop",
			wantErr:   []string{"Mystery/m: is Mystery namespaced?", "no matches for kind"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := parse(t, tt.manifests)
			err := SetNamespace(objs, tt.ns, scope)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("SetNamespace succeeded, want an error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetNamespace())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("namespaces = %q, want %q", got, tt.want)
			}
		})
	}
}
