package rollout

import (
	"context"
	"fmt"
	"os"
	"strings"

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

// apply server-side applies obj as Gantry. Force takes over fields another
// manager (kubectl, a previous tool) set: the manifests are the truth for
// the fields they name.
func (c *cluster) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	ri, err := c.resource(obj)
	if err != nil {
		return nil, err
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Apply(ctx, obj.GetName(), obj, opts)
	if err != nil {
		return nil, fmt.Errorf("applying %s %s: %w", obj.GetKind(), key(obj), err)
	}
	return out, nil
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
