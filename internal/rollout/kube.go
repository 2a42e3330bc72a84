package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the name Gantry's server-side applies own fields under.
const FieldManager = "gantry"

// cluster bundles the clients one deploy needs.
type cluster struct {
	typed   kubernetes.Interface
	dynamic dynamic.Interface
	mapper  meta.RESTMapper
	// forceConflicts takes over fields other managers own (input
	// force-conflicts); warn reports it.
	forceConflicts bool
	warn           func(format string, args ...any)
}

// RESTConfigFrom reads a kubeconfig given as a file path or as its content
// (what a secret holds). Empty means in-cluster config, then ~/.kube/config.
func RESTConfigFrom(kubeconfig string) (*rest.Config, error) {
	k := strings.TrimSpace(kubeconfig)
	switch {
	case k == "":
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf(`input "kubeconfig" is empty and there is no in-cluster or default kubeconfig: pass the kubeconfig file path or content (from a secret): %w`, err)
		}
		return cfg, nil
	case strings.Contains(k, "\n") || strings.HasPrefix(k, "apiVersion"):
		cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(k))
		if err != nil {
			return nil, fmt.Errorf(`input "kubeconfig": the content is not a valid kubeconfig: %w`, err)
		}
		return cfg, nil
	}
	if _, err := os.Stat(k); err != nil {
		return nil, fmt.Errorf(`input "kubeconfig": %s: give a kubeconfig file path or the file's content`, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", k)
	if err != nil {
		return nil, fmt.Errorf(`input "kubeconfig": %s: %w`, k, err)
	}
	return cfg, nil
}

// KubeconfigSecrets returns the credential values inside a kubeconfig's
// content (tokens, keys, passwords), which must be masked in logs. The rest
// of the file (server names, "apiVersion: v1") is not secret, and masking it
// would blank ordinary log lines.
func KubeconfigSecrets(content string) []string {
	cfg, err := clientcmd.Load([]byte(content))
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range cfg.AuthInfos {
		for _, s := range []string{a.Token, a.Password, string(a.ClientKeyData), string(a.ClientCertificateData)} {
			if s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func newCluster(cfg *rest.Config) (*cluster, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "gantry-deploy"
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &cluster{typed: typed, dynamic: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// namespaced reports whether objects of a kind live in a namespace.
func (c *cluster) namespaced(gvk schema.GroupVersionKind) (bool, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, fmt.Errorf("%s is not a kind this cluster knows (install its CRD first): %w", gvk, err)
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

func (c *cluster) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s %s: kind unknown to the cluster: %w", gvk.Kind, obj.GetName(), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dynamic.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return c.dynamic.Resource(m.Resource), nil
}

// apply server-side applies obj as Gantry, without force: a field another
// tool (kubectl edit, an operator, an autoscaler) set to another value is
// a conflict, reported by ConflictError naming the tool and the fields,
// unless force-conflicts is on (then taken over, with a warning). Fields
// of Gantry's own other writes (a rollback's update, a canary's scale)
// are taken back without asking.
func (c *cluster) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	ri, err := c.resource(obj)
	if err != nil {
		return nil, err
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Apply(ctx, obj.GetName(), obj, opts)
	if apierrors.IsConflict(err) {
		conflicts := applyConflicts(err)
		own := len(conflicts) > 0
		for _, cf := range conflicts {
			own = own && strings.HasPrefix(cf.Manager, FieldManager)
		}
		switch {
		case own:
		case c.forceConflicts:
			if c.warn != nil {
				c.warn("%s %s: taking over %s (force-conflicts)", obj.GetKind(), key(obj), describeConflicts(conflicts))
			}
		default:
			return nil, &ConflictError{Kind: obj.GetKind(), Object: key(obj), Conflicts: conflicts}
		}
		opts.Force = true
		out, err = ri.Apply(ctx, obj.GetName(), obj, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("applying %s %s: %w", obj.GetKind(), key(obj), err)
	}
	return out, nil
}

// preflight server-side dry-runs the apply of every object but
// Namespaces (applied already) and reports every conflict with another
// field manager, and the first object the API server refuses. Objects of
// a kind the cluster does not know yet (a CRD of the same release) are
// left to the apply.
func (d *deployer) preflight(ctx context.Context, objs []*unstructured.Unstructured) error {
	var conflicts []error
	for _, o := range objs {
		if isNamespace(o) || isCRD(o) {
			continue
		}
		if _, err := d.c.resource(o); err != nil {
			continue
		}
		_, err := d.c.apply(ctx, o, true)
		var ce *ConflictError
		switch {
		case errors.As(err, &ce):
			conflicts = append(conflicts, err)
		case err != nil:
			return fmt.Errorf("server-side dry run: %w", err)
		}
	}
	return errors.Join(conflicts...)
}

func isNamespace(o *unstructured.Unstructured) bool {
	return o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1"
}

func isCRD(o *unstructured.Unstructured) bool {
	return o.GetKind() == "CustomResourceDefinition" && o.GroupVersionKind().Group == "apiextensions.k8s.io"
}

// crdScope finds the CRD of gvk's kind among objs and returns its scope
// (Namespaced or Cluster).
func crdScope(objs []*unstructured.Unstructured, gvk schema.GroupVersionKind) (string, bool) {
	for _, o := range objs {
		if !isCRD(o) {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		if group == gvk.Group && kind == gvk.Kind {
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			return scope, true
		}
	}
	return "", false
}

// applyCRDs applies the manifests' CustomResourceDefinitions and waits
// until the API server serves them (condition Established), then forgets
// what it knew of the cluster's kinds, so custom resources of the same
// release can be applied.
func (d *deployer) applyCRDs(ctx context.Context, objs []*unstructured.Unstructured) error {
	var crds []*unstructured.Unstructured
	for _, o := range objs {
		if isCRD(o) {
			crds = append(crds, o)
		}
	}
	if len(crds) == 0 {
		return nil
	}
	end := d.log.Group(fmt.Sprintf("Applying %d CustomResourceDefinition(s) first", len(crds)))
	defer end()
	for _, o := range crds {
		if _, err := d.c.apply(ctx, o, false); err != nil {
			return err
		}
		d.log.Infof("applied CustomResourceDefinition %s", o.GetName())
	}
	for _, o := range crds {
		ri, err := d.c.resource(o)
		if err != nil {
			return err
		}
		for {
			live, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("reading CustomResourceDefinition %s: %w", o.GetName(), err)
			}
			conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
			established := false
			for _, c := range conds {
				m, _ := c.(map[string]any)
				established = established || (m["type"] == "Established" && m["status"] == "True")
			}
			if established {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for CustomResourceDefinition %s to be established: %w", o.GetName(), ctx.Err())
			case <-time.After(d.in.Poll):
			}
		}
	}
	if r, ok := d.c.mapper.(interface{ Reset() }); ok {
		r.Reset()
	}
	return nil
}

// FieldConflict is one field of an apply that another field manager owns
// with another value.
type FieldConflict struct {
	Manager string // e.g. kubectl-edit
	Field   string // e.g. .spec.replicas
}

// ConflictError is a server-side apply refused because other tools manage
// fields the manifests set to other values.
type ConflictError struct {
	Kind, Object string
	Conflicts    []FieldConflict
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("applying %s %s: the manifests set fields another tool manages with other values: %s. Gantry does not take fields over silently: set input \"force-conflicts\" to true to take them over (Gantry becomes their manager), or stop the other tool setting them (e.g. leave replicas out of the manifests when something scales the workload)",
		e.Kind, e.Object, describeConflicts(e.Conflicts))
}

var conflictManager = regexp.MustCompile(`conflict with "([^"]+)"`)

// applyConflicts reads the fields and managers of an apply conflict.
func applyConflicts(err error) []FieldConflict {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return nil
	}
	var out []FieldConflict
	for _, c := range status.Status().Details.Causes {
		if c.Type != metav1.CauseTypeFieldManagerConflict {
			continue
		}
		m := conflictManager.FindStringSubmatch(c.Message)
		if m == nil {
			continue
		}
		out = append(out, FieldConflict{Manager: m[1], Field: c.Field})
	}
	return out
}

func describeConflicts(cs []FieldConflict) string {
	byManager := map[string][]string{}
	var managers []string
	for _, c := range cs {
		if _, ok := byManager[c.Manager]; !ok {
			managers = append(managers, c.Manager)
		}
		byManager[c.Manager] = append(byManager[c.Manager], c.Field)
	}
	var parts []string
	for _, m := range managers {
		parts = append(parts, fmt.Sprintf("%s (managed by %q)", strings.Join(byManager[m], ", "), m))
	}
	return strings.Join(parts, "; ")
}

// live returns the object as it is in the cluster, or nil when absent.
func (c *cluster) live(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := c.resource(obj)
	if err != nil {
		return nil, err
	}
	got, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return got, err
}

func key(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}
