package progressive

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/k8stest"
)

// TestIngressNginx writes the canary Ingress on the real API server (no
// controller runs: what ingress-nginx would read is checked on the
// objects) and reads the weights back.
func TestIngressNginx(t *testing.T) {
	t.Parallel()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cs := cp.Clientset()
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ingresses := cs.NetworkingV1().Ingresses(ns)

	// The primary as a user keeps it: two hosts, TLS, a path to another
	// Service, the class both as field and as the old annotation.
	prefix := networkingv1.PathTypePrefix
	exact := networkingv1.PathTypeExact
	backend := func(svc string, port networkingv1.ServiceBackendPort) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: port}}
	}
	byNumber, byName := networkingv1.ServiceBackendPort{Number: 80}, networkingv1.ServiceBackendPort{Name: "http"}
	primary := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{
			"kubernetes.io/ingress.class":                 "nginx",
			"nginx.ingress.kubernetes.io/proxy-body-size": "8m",
		}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: new("nginx"),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"app.example.com"}, SecretName: "app-tls"}},
			Rules: []networkingv1.IngressRule{
				{Host: "app.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: &prefix, Backend: backend("web-blue", byNumber)},
					{Path: "/static", PathType: &prefix, Backend: backend("cdn", byNumber)},
				}}}},
				{Host: "api.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
					{Path: "/v1/render", PathType: &exact, Backend: backend("web-blue", byName)},
				}}}},
				{Host: "docs.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: &prefix, Backend: backend("docs", byNumber)},
				}}}},
			},
		},
	}
	if _, err := ingresses.Create(ctx, primary, metav1.CreateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	primaryBefore, err := ingresses.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	r, err := New(dyn, Config{Router: IngressNginx, Namespace: ns, Route: "web", Stable: "web-blue", Canary: "web-green"})
	if err != nil {
		t.Fatal(err)
	}
	if err, want := r.Check(ctx), "Service "+ns+"/web-blue of the stable version not found"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Check without Service web-blue = %v, want it to contain %q", err, want)
	}
	createServices(t, cs, ns, "web-blue")
	if err := r.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// No canary Ingress yet: everything on stable.
	wantWeights(t, ctx, r, 100, 0)
	if _, err := ingresses.Get(ctx, "web-canary", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Check or Weights created the canary Ingress (%v)", err)
	}

	// Without the canary's Service its share would fail: refused.
	want := "Service " + ns + "/web-green of the canary version not found: its 10% of the traffic would fail"
	if err := r.SetWeights(ctx, 90, 10); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("SetWeights(90, 10) without Service web-green = %v, want it to contain %q", err, want)
	}
	if _, err := ingresses.Get(ctx, "web-canary", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused SetWeights created the canary Ingress (%v)", err)
	}
	createServices(t, cs, ns, "web-green")

	if err := r.SetWeights(ctx, 90, 10); err != nil {
		t.Fatal(err)
	}
	canary, err := ingresses.Get(ctx, "web-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantAnnotations := map[string]string{
		"nginx.ingress.kubernetes.io/canary":              "true",
		"nginx.ingress.kubernetes.io/canary-weight":       "10",
		"nginx.ingress.kubernetes.io/canary-weight-total": "100",
		"kubernetes.io/ingress.class":                     "nginx",
	}
	if !equalMaps(canary.Annotations, wantAnnotations) {
		t.Errorf("canary Ingress annotations %v, want %v", canary.Annotations, wantAnnotations)
	}
	if canary.Labels[LabelCanaryOf] != "web" || canary.Labels["app.kubernetes.io/managed-by"] != "gantry" {
		t.Errorf("canary Ingress labels %v, want %s=web and managed-by gantry", canary.Labels, LabelCanaryOf)
	}
	if c := canary.Spec.IngressClassName; c == nil || *c != "nginx" {
		t.Errorf("canary Ingress class %v, want nginx (the primary's)", c)
	}
	// Only the hosts and paths that lead to the stable Service, now to
	// the canary at the same port.
	wantPaths := []string{
		"app.example.com Prefix / → web-green:80",
		"api.example.com Exact /v1/render → web-green:http",
	}
	if got := describePaths(canary); strings.Join(got, "\n") != strings.Join(wantPaths, "\n") {
		t.Errorf("canary Ingress paths:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantPaths, "\n"))
	}
	wantWeights(t, ctx, r, 90, 10)

	// Weight 0 keeps the canary Ingress, so a flip back is one annotation.
	if err := r.SetWeights(ctx, 100, 0); err != nil {
		t.Fatal(err)
	}
	canary, err = ingresses.Get(ctx, "web-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("after SetWeights(100, 0): %v, want the canary Ingress kept", err)
	}
	if w := canary.Annotations[AnnotationCanaryWeight]; w != "0" {
		t.Errorf("canary-weight %q at 100/0, want \"0\"", w)
	}
	wantWeights(t, ctx, r, 100, 0)
	// Setting the split in force again writes nothing.
	if err := r.SetWeights(ctx, 100, 0); err != nil {
		t.Fatal(err)
	}
	if again, err := ingresses.Get(ctx, "web-canary", metav1.GetOptions{}); err != nil || again.ResourceVersion != canary.ResourceVersion {
		t.Errorf("SetWeights(100, 0) twice: resourceVersion %s → %s (%v), want unchanged", canary.ResourceVersion, again.ResourceVersion, err)
	}
	if err := r.SetWeights(ctx, 0, 100); err != nil {
		t.Fatal(err)
	}
	wantWeights(t, ctx, r, 0, 100)

	// Someone edits the annotation by hand (the API server takes any
	// string): Weights says so rather than guessing.
	canary, err = ingresses.Get(ctx, "web-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	canary.Annotations[AnnotationCanaryWeight] = "-7"
	if _, err := ingresses.Update(ctx, canary, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Weights(ctx); err == nil || !strings.Contains(err.Error(), `annotation nginx.ingress.kubernetes.io/canary-weight="-7" is not a whole number from 0 to 100`) {
		t.Errorf("Weights with canary-weight -7 = %v, want an error naming the annotation", err)
	}
	// SetWeights repairs it (taking the field back from kubectl-edit).
	if err := r.SetWeights(ctx, 50, 50); err != nil {
		t.Fatal(err)
	}
	wantWeights(t, ctx, r, 50, 50)

	// The primary was never written.
	primaryAfter, err := ingresses.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if primaryAfter.ResourceVersion != primaryBefore.ResourceVersion {
		t.Errorf("the primary Ingress changed (resourceVersion %s → %s)", primaryBefore.ResourceVersion, primaryAfter.ResourceVersion)
	}

	// After promotion the canary Ingress goes; removing twice is fine.
	nginx := r.(*Nginx)
	for range 2 {
		if err := nginx.RemoveCanary(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ingresses.Get(ctx, "web-canary", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after RemoveCanary: %v, want the canary Ingress gone", err)
	}
	wantWeights(t, ctx, r, 100, 0)
}

// TestIngressNginxRefusals: what the router must not write on.
func TestIngressNginxRefusals(t *testing.T) {
	t.Parallel()
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cs := cp.Clientset()
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	create := func(name, svc string, annotations map[string]string) {
		t.Helper()
		prefix := networkingv1.PathTypePrefix
		ing := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: name + ".example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}},
			}}}}}},
		}
		if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create("shop", "shop", nil)
	create("web", "web-blue", nil)
	create("web-canary", "web-legacy", nil) // a name clash, not a canary
	create("old", "web-blue", map[string]string{AnnotationCanary: "true"})

	for _, tc := range []struct{ route, want string }{
		{"shop", `Ingress ` + ns + `/shop does not send traffic to the stable Service web-blue (its paths lead to Service shop): set input "stable-service" to the Service the Ingress serves today`},
		{"absent", `Ingress ` + ns + `/absent not found: set input "route" to the Ingress that sends this environment's traffic to Service web-blue`},
		{"web", `Ingress ` + ns + `/web-canary exists and is not an ingress-nginx canary (nginx.ingress.kubernetes.io/canary is ""): Gantry will not take it over; rename or delete it`},
		{"old", `Ingress ` + ns + `/old is itself an ingress-nginx canary (nginx.ingress.kubernetes.io/canary: "true"): set input "route" to the primary Ingress`},
	} {
		r, err := New(dyn, Config{Router: IngressNginx, Namespace: ns, Route: tc.route, Stable: "web-blue", Canary: "web-green"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Check(ctx); err == nil || err.Error() != tc.want {
			t.Errorf("Check(%s) = %v\nwant %s", tc.route, err, tc.want)
		}
		if err := r.SetWeights(ctx, 90, 10); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetWeights(%s) = %v, want the Check error", tc.route, err)
		}
	}
	// Nothing was written: the clash is still the user's.
	clash, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, "web-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(clash.Annotations) != 0 || clash.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name != "web-legacy" {
		t.Errorf("the Ingress web-canary of another owner was changed: %v %v", clash.Annotations, clash.Spec.Rules)
	}
	list, err := cs.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 4 {
		t.Errorf("%d Ingresses after refusals, want the 4 created", len(list.Items))
	}
}

func describePaths(ing *networkingv1.Ingress) []string {
	var out []string
	for _, rule := range ing.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			port := p.Backend.Service.Port.Name
			if port == "" {
				port = strconv.Itoa(int(p.Backend.Service.Port.Number))
			}
			out = append(out, rule.Host+" "+string(*p.PathType)+" "+p.Path+" → "+p.Backend.Service.Name+":"+port)
		}
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
