package traffictest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/gantry-ci/gantry/internal/testproc"
)

const (
	// GatewayAPIVersion is the Gateway API release whose standard-channel
	// CRDs InstallGatewayAPI applies, from testdata/gateway-api/<version>.
	GatewayAPIVersion = "v1.6.3"
	// GatewayGroup is the Gateway API's API group; HTTPRoutes are served
	// (and stored) as GatewayGroup/v1.
	GatewayGroup = "gateway.networking.k8s.io"
	// FieldManager is the field manager of the objects this package
	// applies itself (CRDs, GatewayClass, Gateway); a test applies its
	// routes as the product does, e.g. as "gantry".
	FieldManager = "traffictest"
)

// HTTPRouteGVR is the resource a dynamic client writes HTTPRoutes to.
func HTTPRouteGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: GatewayGroup, Version: "v1", Resource: "httproutes"}
}

// GatewayGVR is the resource of Gateways.
func GatewayGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: GatewayGroup, Version: "v1", Resource: "gateways"}
}

// GatewayClassGVR is the resource of GatewayClasses (cluster-scoped).
func GatewayClassGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: GatewayGroup, Version: "v1", Resource: "gatewayclasses"}
}

func crdGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
}

// InstallGatewayAPI applies the Gateway API's standard-channel CRDs that
// Traefik watches (GatewayClass, Gateway, HTTPRoute, GRPCRoute,
// ReferenceGrant, BackendTLSPolicy) to the cluster by server-side apply and
// waits until the API server serves them (Established). The files are
// vendored in testdata/gateway-api/GatewayAPIVersion, so no test needs the
// network. Applying them again is a no-op, so every test may call it; the
// first call on a control plane takes a few seconds.
func InstallGatewayAPI(t testing.TB, cfg *rest.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := installGatewayAPI(ctx, cfg); err != nil {
		t.Fatalf("traffictest: installing the Gateway API %s CRDs: %v", GatewayAPIVersion, err)
	}
}

func installGatewayAPI(ctx context.Context, cfg *rest.Config) error {
	root, err := testproc.RepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "testdata", "gateway-api", GatewayAPIVersion)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRD files in %s", dir)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crds := dyn.Resource(crdGVR())
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(j); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if obj.GetKind() != "CustomResourceDefinition" {
			return fmt.Errorf("%s: kind %q, want one CustomResourceDefinition per file", f, obj.GetKind())
		}
		// Too large for client-side apply's last-applied annotation, and
		// Force: the objects may have been applied by another tool before.
		if _, err := crds.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
			return fmt.Errorf("applying %s: %w", filepath.Base(f), err)
		}
		names = append(names, obj.GetName())
	}
	for _, name := range names {
		err := poll(ctx, 50*time.Millisecond, func() error {
			obj, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, err := conditionsAt(obj.Object, "status", "conditions")
			if err != nil {
				return err
			}
			return conditionsTrue(conds, obj.GetGeneration(), "Established")
		})
		if err != nil {
			return fmt.Errorf("CRD %s: %w", name, err)
		}
	}
	return nil
}

// BackendRef is one weighted backend of a route: a Service made by
// ExposeService, at port ServicePort.
type BackendRef struct {
	Service string
	Weight  int32
}

// HTTPRoute returns an HTTPRoute named name in the gateway's namespace,
// attached to the gateway, with one rule that matches every request and
// splits it between refs by weight, ready for server-side apply:
//
//	route := gw.HTTPRoute("app", traffictest.BackendRef{"app-blue", 90}, traffictest.BackendRef{"app-green", 10})
//	_, err := dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(ns).Apply(ctx, "app", route,
//		metav1.ApplyOptions{FieldManager: "gantry", Force: true})
//
// spec.rules and backendRefs are atomic lists: each apply sends the whole
// rule, and the first apply over another manager's object needs Force.
func (g *Gateway) HTTPRoute(name string, refs ...BackendRef) *unstructured.Unstructured {
	backendRefs := make([]any, 0, len(refs))
	for _, r := range refs {
		backendRefs = append(backendRefs, map[string]any{
			"kind":   "Service",
			"name":   r.Service,
			"port":   int64(ServicePort),
			"weight": int64(r.Weight),
		})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GatewayGroup + "/v1",
		"kind":       "HTTPRoute",
		"metadata":   map[string]any{"name": name, "namespace": g.Namespace},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{
				"group":       GatewayGroup,
				"kind":        "Gateway",
				"name":        g.Name,
				"sectionName": ListenerName,
			}},
			"rules": []any{map[string]any{
				"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}},
				"backendRefs": backendRefs,
			}},
		},
	}}
}

// RouteConditions reads the conditions Traefik wrote for this gateway in
// the status of HTTPRoute name (its status.parents entry), and the route's
// metadata.generation. Without such an entry conds is empty.
func (g *Gateway) RouteConditions(ctx context.Context, name string) (conds []metav1.Condition, generation int64, err error) {
	obj, err := g.dyn.Resource(HTTPRouteGVR()).Namespace(g.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, 0, err
	}
	parents, _, err := unstructured.NestedSlice(obj.Object, "status", "parents")
	if err != nil {
		return nil, 0, err
	}
	for _, p := range parents {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		ref, _, _ := unstructured.NestedStringMap(pm, "parentRef")
		controller, _, _ := unstructured.NestedString(pm, "controllerName")
		if ref["name"] != g.Name || (ref["namespace"] != "" && ref["namespace"] != g.Namespace) || controller != ControllerName {
			continue
		}
		conds, err := conditionsAt(pm, "conditions")
		return conds, obj.GetGeneration(), err
	}
	return nil, obj.GetGeneration(), nil
}

// WaitRoute waits up to 30 s until Traefik has accepted the current
// generation of HTTPRoute name for this gateway (Accepted and ResolvedRefs
// True, observedGeneration = metadata.generation) and returns those
// conditions. Status is written once Traefik has built the new
// configuration; traffic follows within its provider throttle, so assert
// on traffic, not on status alone. On timeout the test fails with the last
// status seen and the tail of Traefik's log.
func (g *Gateway) WaitRoute(t testing.TB, name string) []metav1.Condition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var conds []metav1.Condition
	err := poll(ctx, 50*time.Millisecond, func() error {
		if g.proc.Exited() {
			return errExited
		}
		var gen int64
		var err error
		if conds, gen, err = g.RouteConditions(ctx, name); err != nil {
			return err
		}
		return conditionsTrue(conds, gen, "Accepted", "ResolvedRefs")
	})
	if err != nil {
		t.Fatalf("traffictest: HTTPRoute %s/%s not accepted by gateway %s: %v\nTraefik log (last lines of %s):\n%s",
			g.Namespace, name, g.Name, err, g.proc.LogPath(), g.proc.Tail(30))
	}
	return conds
}

var errExited = errors.New("traefik exited")

// conditionsAt decodes a list of metav1.Condition at fields of obj.
func conditionsAt(obj map[string]any, fields ...string) ([]metav1.Condition, error) {
	raw, found, err := unstructured.NestedSlice(obj, fields...)
	if err != nil || !found {
		return nil, err
	}
	conds := make([]metav1.Condition, 0, len(raw))
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("condition %v is not an object", r)
		}
		var c metav1.Condition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &c); err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	return conds, nil
}

// conditionsTrue returns nil when every condition type is True; a
// condition that carries an observedGeneration must be of generation
// (when generation > 0). Otherwise the error shows what was seen.
func conditionsTrue(conds []metav1.Condition, generation int64, types ...string) error {
	for _, typ := range types {
		i := slices.IndexFunc(conds, func(c metav1.Condition) bool { return c.Type == typ })
		if i < 0 {
			return fmt.Errorf("no %s condition yet (have %s)", typ, describe(conds))
		}
		c := conds[i]
		if c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%s=%s %s: %s", typ, c.Status, c.Reason, c.Message)
		}
		if generation > 0 && c.ObservedGeneration > 0 && c.ObservedGeneration != generation {
			return fmt.Errorf("%s=True for generation %d, object at %d", typ, c.ObservedGeneration, generation)
		}
	}
	return nil
}

func describe(conds []metav1.Condition) string {
	if len(conds) == 0 {
		return "none"
	}
	s := ""
	for i, c := range conds {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s=%s (%s)", c.Type, c.Status, c.Reason)
	}
	return s
}

// poll calls check every interval until it returns nil or ctx ends; the
// last error explains a timeout.
func poll(ctx context.Context, interval time.Duration, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		if errors.Is(err, errExited) || isFatal(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// isFatal: errors that waiting will not fix (a rejected request).
func isFatal(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsBadRequest(err) || apierrors.IsInvalid(err)
}
