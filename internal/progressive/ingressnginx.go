package progressive

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// The ingress-nginx canary annotations. Their values are strings, and the
// API server does not check them: the router validates what it writes.
const (
	AnnotationCanary            = "nginx.ingress.kubernetes.io/canary"
	AnnotationCanaryWeight      = "nginx.ingress.kubernetes.io/canary-weight"
	AnnotationCanaryWeightTotal = "nginx.ingress.kubernetes.io/canary-weight-total"
	// LabelCanaryOf marks a canary Ingress with its primary's name.
	LabelCanaryOf = "gantry.dev/canary-of"
)

const canarySuffix = "-canary"

func ingressGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}
}

// Nginx is the ingress-nginx Router: next to the primary Ingress, whose
// paths lead to the stable Service, it keeps a canary Ingress
// "<primary>-canary" with the same hosts and paths leading to the canary
// Service, and moves traffic by its canary-weight annotation (out of a
// canary-weight-total of 100). The primary is never written. At weight 0
// the canary Ingress stays, so moving traffic back and forth is one
// annotation; RemoveCanary deletes it once the rollout is over.
type Nginx struct {
	cfg       Config
	ingresses dynamic.ResourceInterface
	services  dynamic.ResourceInterface
}

// NewIngressNginx returns the router of the primary Ingress cfg.Route.
func NewIngressNginx(dyn dynamic.Interface, cfg Config) (*Nginx, error) {
	if err := cfg.validate(dyn, "Ingress"); err != nil {
		return nil, err
	}
	if n := len(cfg.Route + canarySuffix); n > 253 {
		return nil, fmt.Errorf(`input "route": the canary of Ingress %q would be named %s%s, %d characters, more than 253: use a shorter Ingress name`, cfg.Route, cfg.Route, canarySuffix, n)
	}
	return &Nginx{
		cfg:       cfg,
		ingresses: dyn.Resource(ingressGVR()).Namespace(cfg.Namespace),
		services:  dyn.Resource(servicesGVR()).Namespace(cfg.Namespace),
	}, nil
}

// CanaryName is the name of the canary Ingress.
func (n *Nginx) CanaryName() string { return n.cfg.Route + canarySuffix }

// Describe implements Router.
func (n *Nginx) Describe() string {
	return fmt.Sprintf("Ingress %s/%s (%s canary of Ingress %s)", n.cfg.Namespace, n.CanaryName(), IngressNginx, n.cfg.Route)
}

// Check implements Router: the primary Ingress exists, is not a canary
// itself, and leads to the stable Service, which exists; a "-canary"
// Ingress already there is an ingress-nginx canary.
func (n *Nginx) Check(ctx context.Context) error {
	primary, err := n.primary(ctx)
	if err != nil {
		return err
	}
	if _, err := n.canaryFor(primary, 0); err != nil {
		return err
	}
	if _, err := n.liveCanary(ctx); err != nil {
		return err
	}
	return requireService(ctx, n.services, n.cfg, "stable", -1)
}

// Weights implements Router, from the canary Ingress's annotations; with
// no canary Ingress all traffic is on the stable Service.
func (n *Nginx) Weights(ctx context.Context) (stable, canary int, err error) {
	ing, err := n.liveCanary(ctx)
	if err != nil || ing == nil {
		return 100, 0, err
	}
	ann := ing.GetAnnotations()
	total := int64(100) // ingress-nginx's default
	if s, ok := ann[AnnotationCanaryWeightTotal]; ok {
		total, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || total <= 0 {
			return 0, 0, fmt.Errorf("Ingress %s/%s: annotation %s=%q is not a positive whole number: set the weights again", n.cfg.Namespace, n.CanaryName(), AnnotationCanaryWeightTotal, s)
		}
	}
	s, ok := ann[AnnotationCanaryWeight]
	if !ok {
		// ingress-nginx sends a canary without a weight no traffic.
		return 100, 0, nil
	}
	w, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || w < 0 || w > total {
		return 0, 0, fmt.Errorf("Ingress %s/%s: annotation %s=%q is not a whole number from 0 to %d: set the weights again", n.cfg.Namespace, n.CanaryName(), AnnotationCanaryWeight, s, total)
	}
	stable, canary = percent(total-w, w)
	return stable, canary, nil
}

// SetWeights implements Router: it server-side applies the canary Ingress
// as FieldManager, built from the primary as it is now, with the weight.
func (n *Nginx) SetWeights(ctx context.Context, stable, canary int) error {
	if err := ValidateWeights(stable, canary); err != nil {
		return fmt.Errorf("%s: %w", n.Describe(), err)
	}
	if err := n.apply(ctx, stable, canary); err != nil {
		return fmt.Errorf("setting weights %d/%d (stable/canary) on %s: %w", stable, canary, n.Describe(), err)
	}
	return nil
}

func (n *Nginx) apply(ctx context.Context, stable, canary int) error {
	primary, err := n.primary(ctx)
	if err != nil {
		return err
	}
	if _, err := n.liveCanary(ctx); err != nil {
		return err
	}
	ing, err := n.canaryFor(primary, canary)
	if err != nil {
		return err
	}
	if err := requireServices(ctx, n.services, n.cfg, stable, canary); err != nil {
		return err
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ing)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: obj}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	_, err = n.ingresses.Apply(ctx, ing.Name, u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	return err
}

// RemoveCanary deletes the canary Ingress, after a promotion has made the
// primary lead to the new version (or after a rollback); absent is fine.
func (n *Nginx) RemoveCanary(ctx context.Context) error {
	ing, err := n.liveCanary(ctx)
	if err != nil || ing == nil {
		return err
	}
	rv := ing.GetResourceVersion()
	err = n.ingresses.Delete(ctx, n.CanaryName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", n.Describe(), err)
	}
	return nil
}

func (n *Nginx) primary(ctx context.Context) (*networkingv1.Ingress, error) {
	u, err := n.ingresses.Get(ctx, n.cfg.Route, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("Ingress %s/%s not found: set input \"route\" to the Ingress that sends this environment's traffic to Service %s", n.cfg.Namespace, n.cfg.Route, n.cfg.Stable)
	}
	if err != nil {
		return nil, fmt.Errorf("reading Ingress %s/%s: %w", n.cfg.Namespace, n.cfg.Route, err)
	}
	var ing networkingv1.Ingress
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ing); err != nil {
		return nil, fmt.Errorf("reading Ingress %s/%s: %w", n.cfg.Namespace, n.cfg.Route, err)
	}
	if strings.EqualFold(strings.TrimSpace(ing.Annotations[AnnotationCanary]), "true") {
		return nil, fmt.Errorf("Ingress %s/%s is itself an ingress-nginx canary (%s: \"true\"): set input \"route\" to the primary Ingress", n.cfg.Namespace, n.cfg.Route, AnnotationCanary)
	}
	return &ing, nil
}

// liveCanary returns the canary Ingress, nil when absent. An Ingress of
// that name that is not a canary is someone else's: refused.
func (n *Nginx) liveCanary(ctx context.Context) (*unstructured.Unstructured, error) {
	u, err := n.ingresses.Get(ctx, n.CanaryName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Ingress %s/%s: %w", n.cfg.Namespace, n.CanaryName(), err)
	}
	if v := u.GetAnnotations()[AnnotationCanary]; v != "true" {
		return nil, fmt.Errorf("Ingress %s/%s exists and is not an ingress-nginx canary (%s is %q): Gantry will not take it over; rename or delete it", n.cfg.Namespace, n.CanaryName(), AnnotationCanary, v)
	}
	return u, nil
}

// canaryFor builds the canary Ingress: the primary's class, and each of
// its hosts and paths that lead to the stable Service, leading to the
// canary Service at the same port. Paths to other backends stay the
// primary's alone.
func (n *Nginx) canaryFor(primary *networkingv1.Ingress, weight int) (*networkingv1.Ingress, error) {
	toCanary := func(b *networkingv1.IngressBackend) *networkingv1.IngressBackend {
		if b == nil || b.Service == nil || b.Service.Name != n.cfg.Stable {
			return nil
		}
		return &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: n.cfg.Canary, Port: b.Service.Port}}
	}
	ing := &networkingv1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      n.CanaryName(),
			Namespace: n.cfg.Namespace,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": "gantry", LabelCanaryOf: n.cfg.Route},
			Annotations: map[string]string{
				AnnotationCanary:            "true",
				AnnotationCanaryWeight:      strconv.Itoa(weight),
				AnnotationCanaryWeightTotal: "100",
			},
		},
		Spec: networkingv1.IngressSpec{
			IngressClassName: primary.Spec.IngressClassName,
			DefaultBackend:   toCanary(primary.Spec.DefaultBackend),
		},
	}
	// Before IngressClassName, the class was an annotation; ingress-nginx
	// still reads it.
	if c, ok := primary.Annotations["kubernetes.io/ingress.class"]; ok {
		ing.Annotations["kubernetes.io/ingress.class"] = c
	}
	var others []string
	for _, rule := range primary.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		var paths []networkingv1.HTTPIngressPath
		for _, p := range rule.HTTP.Paths {
			b := toCanary(&p.Backend)
			if b == nil {
				others = append(others, backendName(p.Backend))
				continue
			}
			p.Backend = *b
			paths = append(paths, p)
		}
		if len(paths) > 0 {
			ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{
				Host:             rule.Host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}},
			})
		}
	}
	if len(ing.Spec.Rules) == 0 && ing.Spec.DefaultBackend == nil {
		to := "no backend"
		if b := primary.Spec.DefaultBackend; b != nil {
			others = append(others, backendName(*b))
		}
		if len(others) > 0 {
			to = strings.Join(dedupe(others), ", ")
		}
		return nil, fmt.Errorf("Ingress %s/%s does not send traffic to the stable Service %s (its paths lead to %s): set input \"stable-service\" to the Service the Ingress serves today", n.cfg.Namespace, n.cfg.Route, n.cfg.Stable, to)
	}
	return ing, nil
}

func backendName(b networkingv1.IngressBackend) string {
	switch {
	case b.Service != nil:
		return "Service " + b.Service.Name
	case b.Resource != nil:
		return b.Resource.Kind + " " + b.Resource.Name
	}
	return "nothing"
}
