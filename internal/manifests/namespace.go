package manifests

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// SetNamespace puts every namespaced object without a namespace into ns,
// as "kubectl apply -n ns" would. namespaced tells namespaced kinds from
// cluster-scoped ones; the deploy stage asks the cluster's discovery (a
// RESTMapper), so custom resources are judged right too.
//
// An object that names another namespace is refused rather than moved: the
// manifests and the "namespace" input disagree, and guessing which one is
// meant could deploy to the wrong environment. All such objects are listed
// in one error. An empty ns leaves objs as they are.
func SetNamespace(objs []*unstructured.Unstructured, ns string, namespaced func(gvk schema.GroupVersionKind) (bool, error)) error {
	if ns == "" {
		return nil
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return fmt.Errorf(`input "namespace": %q is not a valid namespace name (%s)`, ns, strings.Join(errs, "; "))
	}
	var conflicts []string
	var errs []error
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		ok, err := namespaced(gvk)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: is %s namespaced? %w", describe(o), gvk.Kind, err))
			continue
		}
		if !ok {
			continue
		}
		switch o.GetNamespace() {
		case "":
			o.SetNamespace(ns)
		case ns:
		default:
			conflicts = append(conflicts, describe(o))
		}
	}
	if len(conflicts) > 0 {
		errs = append(errs, fmt.Errorf(`input "namespace" is %q, but the manifests put %s; remove metadata.namespace from the manifests (or the kustomization's namespace), or set "namespace" to match or leave it empty`,
			ns, strings.Join(conflicts, ", ")))
	}
	return errors.Join(errs...)
}
