package progressive

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
)

// httpRouteGVR is the Gateway API resource the gateway-api router writes.
func httpRouteGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
}

// HTTPRoute is the gateway-api Router: it shifts traffic by the
// backendRef weights of an existing HTTPRoute. The route stays the user's
// (parentRefs, hostnames, matches, filters); Gantry takes over spec.rules
// only, which the Gateway API declares an atomic list: every apply sends
// all rules, unchanged except for the backendRefs of the rules that lead
// to the stable or the canary Service.
type HTTPRoute struct {
	cfg      Config
	routes   dynamic.ResourceInterface
	services dynamic.ResourceInterface
	// beforeApply, when set, runs between reading the route and applying
	// the new rules (tests: an edit in that window).
	beforeApply func()
}

// NewHTTPRoute returns the router of HTTPRoute cfg.Route.
func NewHTTPRoute(dyn dynamic.Interface, cfg Config) (*HTTPRoute, error) {
	if err := cfg.validate(dyn, "HTTPRoute"); err != nil {
		return nil, err
	}
	return &HTTPRoute{
		cfg:      cfg,
		routes:   dyn.Resource(httpRouteGVR()).Namespace(cfg.Namespace),
		services: dyn.Resource(servicesGVR()).Namespace(cfg.Namespace),
	}, nil
}

// Describe implements Router.
func (r *HTTPRoute) Describe() string {
	return fmt.Sprintf("HTTPRoute %s/%s (%s)", r.cfg.Namespace, r.cfg.Route, GatewayAPI)
}

func (r *HTTPRoute) key() string { return r.cfg.Namespace + "/" + r.cfg.Route }

// Check implements Router: the route exists, is attached to a Gateway
// that has not rejected it, leads to the stable Service, which exists, and
// each rule that leads to the stable or the canary Service leads to
// nothing else.
func (r *HTTPRoute) Check(ctx context.Context) error {
	obj, err := r.get(ctx)
	if err != nil {
		return err
	}
	if _, err := r.rules(obj); err != nil {
		return err
	}
	if err := r.attached(obj); err != nil {
		return err
	}
	return requireService(ctx, r.services, r.cfg, "stable", -1)
}

// attached fails when the route has no parent, or a Gateway controller
// reports it not Accepted: its weights would move no traffic. Without a
// status (no controller has seen it yet) there is nothing to say.
func (r *HTTPRoute) attached(obj *unstructured.Unstructured) error {
	if refs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "parentRefs"); len(refs) == 0 {
		return fmt.Errorf("HTTPRoute %s is attached to no Gateway (spec.parentRefs is empty): no traffic follows it; add the environment's Gateway to parentRefs", r.key())
	}
	parents, _, _ := unstructured.NestedSlice(obj.Object, "status", "parents")
	for _, p := range parents {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		conds, _, _ := unstructured.NestedSlice(pm, "conditions")
		for _, c := range conds {
			cm, ok := c.(map[string]any)
			if !ok || cm["type"] != "Accepted" || cm["status"] != "False" {
				continue
			}
			gw, _, _ := unstructured.NestedString(pm, "parentRef", "name")
			section, _, _ := unstructured.NestedString(pm, "parentRef", "sectionName")
			if section != "" {
				gw += " listener " + section
			}
			why := fmt.Sprint(cm["reason"])
			if msg, _ := cm["message"].(string); msg != "" {
				why += ": " + msg
			}
			return fmt.Errorf("HTTPRoute %s is not accepted by Gateway %s (%s): no traffic follows it; fix the route's parentRefs or the Gateway", r.key(), gw, why)
		}
	}
	return nil
}

// Weights implements Router, from the live object. All rules that lead to
// the two Services must agree on the split.
func (r *HTTPRoute) Weights(ctx context.Context) (stable, canary int, err error) {
	obj, err := r.get(ctx)
	if err != nil {
		return 0, 0, err
	}
	rules, err := r.rules(obj)
	if err != nil {
		return 0, 0, err
	}
	first := -1
	for _, rr := range rules {
		if !rr.ours {
			continue
		}
		if rr.stableWeight+rr.canaryWeight == 0 {
			return 0, 0, fmt.Errorf("HTTPRoute %s: %s gives both Service %s and %s weight 0, so it serves no traffic: set the weights again (e.g. back to 100/0)", r.key(), rr.label, r.cfg.Stable, r.cfg.Canary)
		}
		s, c := percent(rr.stableWeight, rr.canaryWeight)
		if first < 0 {
			first, stable, canary = rr.index, s, c
			continue
		}
		if s != stable || c != canary {
			return 0, 0, fmt.Errorf("HTTPRoute %s: its rules split traffic differently (%s %d/%d, %s %d/%d stable/canary): someone edited the weights; set them again", r.key(), rules[first].label, stable, canary, rr.label, s, c)
		}
	}
	return stable, canary, nil
}

// SetWeights implements Router with one server-side apply of spec.rules
// as FieldManager, forced: the first shift takes the rules over from
// whoever wrote the route (kubectl, a GitOps tool). The apply carries the
// resourceVersion it was computed from, so a concurrent edit of the route
// is read again rather than overwritten.
func (r *HTTPRoute) SetWeights(ctx context.Context, stable, canary int) error {
	if err := ValidateWeights(stable, canary); err != nil {
		return fmt.Errorf("%s: %w", r.Describe(), err)
	}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		obj, err := r.get(ctx)
		if err != nil {
			return err
		}
		rules, err := r.rules(obj)
		if err != nil {
			return err
		}
		if err := requireServices(ctx, r.services, r.cfg, stable, canary); err != nil {
			return err
		}
		out := make([]any, len(rules))
		for i, rr := range rules {
			if !rr.ours {
				out[i] = rr.rule
				continue
			}
			s, c := runtime.DeepCopyJSONValue(rr.stableRef).(map[string]any), runtime.DeepCopyJSONValue(rr.canaryRef).(map[string]any)
			s["weight"], c["weight"] = int64(stable), int64(canary)
			rule := runtime.DeepCopyJSONValue(rr.rule).(map[string]any)
			rule["backendRefs"] = []any{s, c}
			out[i] = rule
		}
		apply := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": httpRouteGVR().GroupVersion().String(),
			"kind":       "HTTPRoute",
			"metadata": map[string]any{
				"name":            r.cfg.Route,
				"namespace":       r.cfg.Namespace,
				"resourceVersion": obj.GetResourceVersion(),
			},
			"spec": map[string]any{"rules": out},
		}}
		if r.beforeApply != nil {
			r.beforeApply()
		}
		_, err = r.routes.Apply(ctx, r.cfg.Route, apply, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		return err
	})
	if err != nil {
		return fmt.Errorf("setting weights %d/%d (stable/canary) on %s: %w", stable, canary, r.Describe(), err)
	}
	return nil
}

func (r *HTTPRoute) get(ctx context.Context) (*unstructured.Unstructured, error) {
	obj, err := r.routes.Get(ctx, r.cfg.Route, metav1.GetOptions{})
	if err == nil {
		return obj, nil
	}
	var status apierrors.APIStatus
	if apierrors.IsNotFound(err) && errors.As(err, &status) {
		if d := status.Status().Details; d == nil || d.Name != r.cfg.Route {
			return nil, fmt.Errorf("the cluster serves no Gateway API HTTPRoutes (%s): install the Gateway API CRDs and a Gateway controller, or use router: %s", httpRouteGVR().GroupVersion(), IngressNginx)
		}
		return nil, fmt.Errorf("HTTPRoute %s not found: create it with a rule whose backendRefs send traffic to Service %s, or set input \"route\" to the HTTPRoute that serves this environment", r.key(), r.cfg.Stable)
	}
	return nil, fmt.Errorf("reading HTTPRoute %s: %w", r.key(), err)
}

// routeRule is one rule of the live route, and what it means for the two
// Services.
type routeRule struct {
	index int
	label string // "rule 2 (PathPrefix /api)", for messages
	rule  map[string]any
	// ours: the rule leads to the stable or the canary Service.
	ours                       bool
	stableRef, canaryRef       map[string]any // the refs to send; canaryRef made from stableRef when absent
	stableWeight, canaryWeight int64          // in force
}

// rules reads the live route's rules. It fails when no rule leads to the
// stable Service, or when a rule mixes the two Services with another
// backend: shifting that rule would drop the other backend's traffic.
func (r *HTTPRoute) rules(obj *unstructured.Unstructured) ([]routeRule, error) {
	raw, _, err := unstructured.NestedSlice(obj.Object, "spec", "rules")
	if err != nil {
		return nil, fmt.Errorf("HTTPRoute %s: spec.rules: %w", r.key(), err)
	}
	rules := make([]routeRule, 0, len(raw))
	var others []string
	stableSeen := false
	for i, x := range raw {
		rule, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("HTTPRoute %s: rule %d is not an object", r.key(), i+1)
		}
		rr := routeRule{index: i, label: ruleLabel(i, rule), rule: rule}
		refs, _, _ := unstructured.NestedSlice(rule, "backendRefs")
		var foreign []string
		for _, y := range refs {
			ref, ok := y.(map[string]any)
			if !ok {
				continue
			}
			name, isService := r.service(ref)
			switch {
			case isService && name == r.cfg.Stable:
				if rr.stableRef == nil {
					rr.stableRef = ref
				}
				rr.stableWeight += refWeight(ref)
			case isService && name == r.cfg.Canary:
				if rr.canaryRef == nil {
					rr.canaryRef = ref
				}
				rr.canaryWeight += refWeight(ref)
			default:
				foreign = append(foreign, refName(ref))
			}
		}
		rr.ours = rr.stableRef != nil || rr.canaryRef != nil
		switch {
		case !rr.ours:
			others = append(others, foreign...)
		case len(foreign) > 0:
			return nil, fmt.Errorf("HTTPRoute %s: %s sends traffic to %s besides Service %s: Gantry would drop that backend when it shifts the rule; move it to a rule of its own", r.key(), rr.label, strings.Join(foreign, ", "), r.cfg.Stable)
		}
		if rr.stableRef != nil {
			stableSeen = true
		}
		// Each shifted rule gets both refs; one made from the other keeps
		// its port and filters.
		if rr.stableRef == nil && rr.canaryRef != nil {
			rr.stableRef = renamed(rr.canaryRef, r.cfg.Stable)
		}
		if rr.canaryRef == nil && rr.stableRef != nil {
			rr.canaryRef = renamed(rr.stableRef, r.cfg.Canary)
		}
		rules = append(rules, rr)
	}
	if !stableSeen {
		to := "no backend"
		if len(others) > 0 {
			to = strings.Join(dedupe(others), ", ")
		}
		return nil, fmt.Errorf("HTTPRoute %s does not send traffic to the stable Service %s (its rules lead to %s): set input \"stable-service\" to the Service the route serves today, or add a backendRef to Service %s", r.key(), r.cfg.Stable, to, r.cfg.Stable)
	}
	return rules, nil
}

// service returns the Service name a backendRef points at, if it is a
// Service of the route's namespace (group "", kind Service, the defaults).
func (r *HTTPRoute) service(ref map[string]any) (string, bool) {
	group, _, _ := unstructured.NestedString(ref, "group")
	kind, _, _ := unstructured.NestedString(ref, "kind")
	ns, _, _ := unstructured.NestedString(ref, "namespace")
	name, _, _ := unstructured.NestedString(ref, "name")
	return name, group == "" && (kind == "" || kind == "Service") && (ns == "" || ns == r.cfg.Namespace)
}

// refWeight is a backendRef's weight; the Gateway API's default is 1.
func refWeight(ref map[string]any) int64 {
	w, found, err := unstructured.NestedInt64(ref, "weight")
	if !found || err != nil {
		return 1
	}
	return w
}

func refName(ref map[string]any) string {
	kind, _, _ := unstructured.NestedString(ref, "kind")
	ns, _, _ := unstructured.NestedString(ref, "namespace")
	name, _, _ := unstructured.NestedString(ref, "name")
	if kind == "" {
		kind = "Service"
	}
	if ns != "" {
		name = ns + "/" + name
	}
	return kind + " " + name
}

func renamed(ref map[string]any, name string) map[string]any {
	out := runtime.DeepCopyJSONValue(ref).(map[string]any)
	out["name"] = name
	return out
}

// ruleLabel names a rule for people: its name, else its first match.
func ruleLabel(i int, rule map[string]any) string {
	label := fmt.Sprintf("rule %d", i+1)
	if name, _, _ := unstructured.NestedString(rule, "name"); name != "" {
		return label + " (" + name + ")"
	}
	matches, _, _ := unstructured.NestedSlice(rule, "matches")
	if len(matches) > 0 {
		if m, ok := matches[0].(map[string]any); ok {
			typ, _, _ := unstructured.NestedString(m, "path", "type")
			val, _, _ := unstructured.NestedString(m, "path", "value")
			if val != "" {
				return label + " (" + strings.TrimSpace(typ+" "+val) + ")"
			}
		}
	}
	return label
}

func dedupe(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := s[:0:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
