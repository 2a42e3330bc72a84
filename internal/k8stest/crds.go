package k8stest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// CRDResource is the resource CustomResourceDefinitions are served as.
var CRDResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// ReadCRD reads one CustomResourceDefinition from a YAML file.
func ReadCRD(file string) (*unstructured.Unstructured, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(j); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if obj.GetKind() != "CustomResourceDefinition" {
		return nil, fmt.Errorf("%s: kind %q, want one CustomResourceDefinition per file", file, obj.GetKind())
	}
	return obj, nil
}

// ApplyCRDs applies the CRDs in files by server-side apply as
// fieldManager, forced (they may have been applied before, by another test
// tool or run; large CRDs do not fit client-side apply's annotation), and
// waits until the API server serves each (Established).
func ApplyCRDs(ctx context.Context, dyn dynamic.Interface, fieldManager string, files []string) error {
	crds := dyn.Resource(CRDResource)
	var names []string
	for _, f := range files {
		obj, err := ReadCRD(f)
		if err != nil {
			return err
		}
		if _, err := crds.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("applying %s: %w", filepath.Base(f), err)
		}
		names = append(names, obj.GetName())
	}
	for _, name := range names {
		err := poll(ctx, 50*time.Millisecond, nil, func() (bool, error) {
			obj, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, fmt.Errorf("CRD %s not Established yet", name)
		})
		if err != nil {
			return fmt.Errorf("CRD %s: %w", name, err)
		}
	}
	return nil
}
