package progressive

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
)

// FieldManager is the name the routers' server-side applies own fields
// under, the same as the deploy stage's.
const FieldManager = "gantry"

// Router moves traffic between the stable and the canary backend of one
// route.
type Router interface {
	// Describe names the route for plans and summaries, e.g.
	// "HTTPRoute prod/prompt-builder (gateway-api)".
	Describe() string
	// Check verifies that the route exists and sends traffic to the
	// stable backend; its error says what is wrong and how to fix it.
	Check(ctx context.Context) error
	// Weights reads the split in force, in percent of the traffic.
	Weights(ctx context.Context) (stable, canary int, err error)
	// SetWeights sends stable percent of the traffic to the stable
	// backend and canary percent to the canary. The two must add up to
	// 100. Setting the weights in force again changes nothing.
	SetWeights(ctx context.Context, stable, canary int) error
}

// Router kinds, the values of the router input.
const (
	GatewayAPI   = "gateway-api"
	IngressNginx = "ingress-nginx"
)

// Config selects and names a route.
type Config struct {
	// Router is GatewayAPI (the default when empty) or IngressNginx.
	Router string
	// Namespace holds the route and both Services.
	Namespace string
	// Route is the HTTPRoute (gateway-api) or the primary Ingress
	// (ingress-nginx) that sends the environment's traffic to Stable.
	Route string
	// Stable and Canary are the Services of the version in production
	// (blue) and of the new one (green).
	Stable, Canary string
}

// New returns the router cfg names, after checking the names (not the
// cluster: see Router.Check).
func New(dyn dynamic.Interface, cfg Config) (Router, error) {
	// Returned one by one: a nil *HTTPRoute in a Router is not a nil Router.
	switch cfg.Router {
	case "", GatewayAPI:
		r, err := NewHTTPRoute(dyn, cfg)
		if err != nil {
			return nil, err
		}
		return r, nil
	case IngressNginx:
		r, err := NewIngressNginx(dyn, cfg)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return nil, fmt.Errorf(`input "router": %q is not a router: use %s (an HTTPRoute's weights) or %s (a canary Ingress)`, cfg.Router, GatewayAPI, IngressNginx)
}

// validate checks the names of cfg; what is the route's kind in messages.
func (cfg Config) validate(dyn dynamic.Interface, what string) error {
	if dyn == nil {
		return fmt.Errorf("%s router: no Kubernetes client", what)
	}
	if cfg.Namespace == "" {
		return fmt.Errorf(`input "namespace" is empty: name the namespace of the %s and its Services`, what)
	}
	if errs := validation.IsDNS1123Label(cfg.Namespace); len(errs) > 0 {
		return fmt.Errorf(`input "namespace": %q is not a namespace name: %s`, cfg.Namespace, strings.Join(errs, "; "))
	}
	for _, s := range []struct{ input, name string }{{"stable-service", cfg.Stable}, {"canary-service", cfg.Canary}} {
		if s.name == "" {
			return fmt.Errorf(`input %q is empty: name the Service of the %s version`, s.input, strings.TrimSuffix(s.input, "-service"))
		}
		if errs := validation.IsDNS1035Label(s.name); len(errs) > 0 {
			return fmt.Errorf(`input %q: %q is not a Service name: %s`, s.input, s.name, strings.Join(errs, "; "))
		}
	}
	if cfg.Route == "" {
		return fmt.Errorf(`input "route" is empty: name the %s that sends the environment's traffic to Service %s`, what, cfg.Stable)
	}
	if errs := validation.IsDNS1123Subdomain(cfg.Route); len(errs) > 0 {
		return fmt.Errorf(`input "route": %q is not a valid %s name: %s`, cfg.Route, what, strings.Join(errs, "; "))
	}
	if cfg.Stable == cfg.Canary {
		return fmt.Errorf(`inputs "stable-service" and "canary-service" are both %q: the canary needs a Service of its own (e.g. %s-green)`, cfg.Stable, cfg.Stable)
	}
	return nil
}

// ValidateWeights checks a split before anything is sent: both weights
// are percentages and they add up to 100.
func ValidateWeights(stable, canary int) error {
	if stable < 0 || stable > 100 || canary < 0 || canary > 100 {
		return fmt.Errorf("weights %d/%d (stable/canary): each must be a percentage from 0 to 100", stable, canary)
	}
	if stable+canary != 100 {
		return fmt.Errorf("weights %d/%d (stable/canary) add up to %d: they must add up to 100", stable, canary, stable+canary)
	}
	return nil
}

func servicesGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Version: "v1", Resource: "services"}
}

// requireService fails when a Service the route is to lead to with weight
// percent (-1: unknown) does not exist: its share of the traffic would
// fail, and even at weight 0 a Gateway reports the reference unresolved.
func requireService(ctx context.Context, services dynamic.ResourceInterface, cfg Config, role string, weight int) error {
	name := cfg.Stable
	if role == "canary" {
		name = cfg.Canary
	}
	_, err := services.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		effect := fmt.Sprintf("its %d%% of the traffic would fail", weight)
		switch {
		case weight == 0:
			effect = "the route would lead to a Service that does not exist"
		case weight < 0: // Check: whatever share it has now fails
			effect = "the route leads to a Service that does not exist"
		}
		return fmt.Errorf("Service %s/%s of the %s version not found: %s; deploy the %s version first, or correct input \"%s-service\"", cfg.Namespace, name, role, effect, role, role)
	}
	if err != nil {
		return fmt.Errorf("reading Service %s/%s: %w", cfg.Namespace, name, err)
	}
	return nil
}

// requireServices: both Services exist (SetWeights leads to both, one
// maybe at weight 0).
func requireServices(ctx context.Context, services dynamic.ResourceInterface, cfg Config, stable, canary int) error {
	if err := requireService(ctx, services, cfg, "stable", stable); err != nil {
		return err
	}
	return requireService(ctx, services, cfg, "canary", canary)
}

// percent turns two relative weights into percentages that add up to 100,
// rounding the canary's share to the nearest whole percent.
func percent(stable, canary int64) (int, int) {
	total := stable + canary
	c := int((canary*100 + total/2) / total)
	return 100 - c, c
}
