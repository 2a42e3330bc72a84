// Package manifests renders the Kubernetes manifests the deploy stage applies:
// it builds a kustomization or reads plain YAML, pins the application's image
// by digest, fills in the target namespace and writes the result out for a
// plan or an artifact. It talks to no cluster; whether a kind is namespaced
// is asked of the caller.
package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Render reads the manifests at path and returns the objects in the order
// they can be applied in (see sortForApply). path is a kustomize directory
// (it holds kustomization.yaml, kustomization.yml or Kustomization), a YAML
// file, or a directory of *.yaml and *.yml files; YAML may hold several
// documents and v1 Lists, and JSON is read too.
func Render(path string) ([]*unstructured.Unstructured, error) {
	if path == "" {
		return nil, errors.New(`input "manifests" is empty; set it to a kustomize directory, a YAML file or a directory of YAML files`)
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf(`input "manifests": %s does not exist; set it to a kustomize directory, a YAML file or a directory of YAML files (relative paths are resolved from the working directory)`, path)
		}
		return nil, fmt.Errorf(`input "manifests": %w`, err)
	}

	var objs []*unstructured.Unstructured
	switch {
	case !fi.IsDir():
		objs, err = decodeFile(path)
	case kustomizationFile(path) != "":
		objs, err = kustomize(path)
	default:
		objs, err = decodeDir(path)
	}
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf(`input "manifests": %s holds no Kubernetes objects; point it at the manifests to deploy`, path)
	}
	if err := checkDuplicates(objs); err != nil {
		return nil, fmt.Errorf(`input "manifests": %s: %w`, path, err)
	}
	sortForApply(objs)
	return objs, nil
}

// kustomizationFile returns the name of dir's kustomization file, or "".
func kustomizationFile(dir string) string {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil && !fi.IsDir() {
			return n
		}
	}
	return ""
}

func kustomize(dir string) ([]*unstructured.Unstructured, error) {
	opts := krusty.MakeDefaultOptions()
	// Unspecified rather than the default None: with None kustomize logs a
	// warning when a kustomization sets sortOptions. The order it picks does
	// not matter, Render sorts afterwards.
	opts.Reorder = krusty.ReorderOptionUnspecified
	// krusty resolves relative paths against the process's directory; an
	// absolute path makes error messages say which directory failed.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf(`input "manifests": %w`, err)
	}
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		return nil, fmt.Errorf(`input "manifests": kustomize build %s: %w; fix the kustomization ("kustomize build %s" shows the same error)`, dir, err, dir)
	}
	var objs []*unstructured.Unstructured
	for _, r := range m.Resources() {
		// Through JSON rather than r.Map(): kyaml's map holds ints, which
		// unstructured's deep copy panics on; JSON gives int64 and float64.
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf(`input "manifests": kustomize build %s: %s: %w`, dir, r.CurId(), err)
		}
		var obj map[string]any
		if err := utiljson.Unmarshal(b, &obj); err != nil {
			return nil, fmt.Errorf(`input "manifests": kustomize build %s: %s: %w`, dir, r.CurId(), err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: obj})
	}
	return objs, nil
}

// decodeDir reads the directory's *.yaml and *.yml files in name order, not
// its subdirectories, as "kubectl apply -f dir" does.
func decodeDir(dir string) ([]*unstructured.Unstructured, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf(`input "manifests": %w`, err)
	}
	var objs []*unstructured.Unstructured
	found := false
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		found = true
		o, err := decodeFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	if !found {
		return nil, fmt.Errorf(`input "manifests": %s has no kustomization file and no *.yaml or *.yml files; point it at a kustomize directory, a YAML file or a directory of YAML files`, dir)
	}
	return objs, nil
}

func decodeFile(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf(`input "manifests": %w`, err)
	}
	objs, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf(`input "manifests": %s: %w`, path, err)
	}
	return objs, nil
}

// decode reads a stream of YAML documents (or JSON objects). Empty
// documents, such as a trailing "---" or one holding only comments, are
// skipped; a v1 List is replaced by its items.
func decode(b []byte) ([]*unstructured.Unstructured, error) {
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			continue
		}
		// utiljson, not encoding/json: it gives whole numbers as int64,
		// as unstructured's accessors and deep copy expect.
		var m map[string]any
		if err := utiljson.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("document %d is not a YAML mapping: %w", doc, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", doc, err)
			}
			for i := range l.Items {
				item := &l.Items[i]
				if err := checkObject(item); err != nil {
					return nil, fmt.Errorf("document %d, item %d: %w", doc, i+1, err)
				}
				objs = append(objs, item)
			}
			continue
		}
		if err := checkObject(u); err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		objs = append(objs, u)
	}
}

func checkObject(u *unstructured.Unstructured) error {
	var missing []string
	if u.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if u.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if u.GetName() == "" && u.GetGenerateName() == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		return fmt.Errorf("not a Kubernetes object: no %s", strings.Join(missing, ", "))
	}
	return nil
}

// checkDuplicates refuses two objects with the same identity: the second
// apply would silently replace the first.
func checkDuplicates(objs []*unstructured.Unstructured) error {
	seen := map[string]bool{}
	for _, o := range objs {
		if o.GetName() == "" {
			continue // generateName: a new object each time
		}
		id := o.GroupVersionKind().GroupKind().String() + " " + o.GetNamespace() + "/" + o.GetName()
		if seen[id] {
			return fmt.Errorf("%s is defined twice; remove one of them", describe(o))
		}
		seen[id] = true
	}
	return nil
}

// applyOrder ranks kinds so that what others depend on is created first:
// namespaces and CRDs before anything that lives in them or uses them,
// then policy, identity and configuration before the workloads that mount
// or run under them, and admission webhooks last, so that their service
// exists before they intercept anything. It follows Helm's install order.
var applyOrder = []string{
	"Namespace",
	"CustomResourceDefinition",
	"PriorityClass",
	"NetworkPolicy",
	"ResourceQuota",
	"LimitRange",
	"PodDisruptionBudget",
	"ServiceAccount",
	"Secret",
	"ConfigMap",
	"StorageClass",
	"PersistentVolume",
	"PersistentVolumeClaim",
	"ClusterRole",
	"ClusterRoleBinding",
	"Role",
	"RoleBinding",
	"Service",
	"DaemonSet",
	"Pod",
	"ReplicationController",
	"ReplicaSet",
	"Deployment",
	"HorizontalPodAutoscaler",
	"StatefulSet",
	"Job",
	"CronJob",
	"IngressClass",
	"Ingress",
	"APIService",
}

// applyLast are kinds that change how the API server treats everything
// else; unknown kinds (custom resources) go before them.
var applyLast = []string{
	"MutatingWebhookConfiguration",
	"ValidatingWebhookConfiguration",
	"ValidatingAdmissionPolicy",
	"ValidatingAdmissionPolicyBinding",
}

func kindRank(kind string) int {
	if i := slices.Index(applyOrder, kind); i >= 0 {
		return i
	}
	if i := slices.Index(applyLast, kind); i >= 0 {
		return len(applyOrder) + 1 + i
	}
	return len(applyOrder)
}

// sortForApply orders objects by kind rank, then kind, group, namespace and
// name, so that the same manifests always give the same plan.
func sortForApply(objs []*unstructured.Unstructured) {
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		ga, gb := a.GroupVersionKind(), b.GroupVersionKind()
		if c := kindRank(ga.Kind) - kindRank(gb.Kind); c != 0 {
			return c
		}
		for _, c := range []int{
			strings.Compare(ga.Kind, gb.Kind),
			strings.Compare(ga.Group, gb.Group),
			strings.Compare(a.GetNamespace(), b.GetNamespace()),
			strings.Compare(a.GetName(), b.GetName()),
		} {
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

// YAML writes objects as one multi-document YAML stream, as a plan or an
// artifact shows them. Keys are sorted, so equal objects give equal bytes.
func YAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("writing %s as YAML: %w", describe(o), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Workloads returns the Deployments among objs, in their order. These are
// what the deploy stage rolls out and watches; every other object is
// applied as it is.
func Workloads(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var ds []*unstructured.Unstructured
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if gvk.Group == "apps" && gvk.Kind == "Deployment" {
			ds = append(ds, o)
		}
	}
	return ds
}

// RollingWorkloads returns the workloads a rolling deploy rolls out and
// waits for, in the manifests' order: Deployments, StatefulSets,
// DaemonSets and Argo Rollouts' Rollouts.
func RollingWorkloads(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var ws []*unstructured.Unstructured
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if gvk.Group == "apps" && (gvk.Kind == "Deployment" || gvk.Kind == "StatefulSet" || gvk.Kind == "DaemonSet") ||
			gvk.Group == "argoproj.io" && gvk.Kind == "Rollout" {
			ws = append(ws, o)
		}
	}
	return ws
}

// describe names an object the way kubectl does: Kind/name, with the
// namespace when there is one.
func describe(o *unstructured.Unstructured) string {
	s := o.GetKind() + "/" + o.GetName()
	if ns := o.GetNamespace(); ns != "" {
		s += " in namespace " + ns
	}
	return s
}
