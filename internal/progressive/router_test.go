package progressive

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

func TestValidateWeights(t *testing.T) {
	t.Parallel()
	for _, w := range [][2]int{{100, 0}, {90, 10}, {50, 50}, {0, 100}} {
		if err := ValidateWeights(w[0], w[1]); err != nil {
			t.Errorf("ValidateWeights(%d, %d): %v", w[0], w[1], err)
		}
	}
	for _, tc := range []struct {
		stable, canary int
		want           string
	}{
		{90, 20, "weights 90/20 (stable/canary) add up to 110: they must add up to 100"},
		{0, 0, "add up to 0"},
		{110, -10, "weights 110/-10 (stable/canary): each must be a percentage from 0 to 100"},
		{-1, 101, "each must be a percentage"},
	} {
		err := ValidateWeights(tc.stable, tc.canary)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateWeights(%d, %d) = %v, want an error containing %q", tc.stable, tc.canary, err, tc.want)
		}
	}
}

func TestPercent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s, c   int64
		ws, wc int
	}{
		{1, 0, 100, 0}, {9, 1, 90, 10}, {3, 1, 75, 25}, {0, 7, 0, 100}, {2, 1, 67, 33}, {999999, 1, 100, 0},
	} {
		if s, c := percent(tc.s, tc.c); s != tc.ws || c != tc.wc {
			t.Errorf("percent(%d, %d) = %d/%d, want %d/%d", tc.s, tc.c, s, c, tc.ws, tc.wc)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: "http://127.0.0.1:1"}) // never called
	if err != nil {
		t.Fatal(err)
	}
	good := Config{Namespace: "prod", Route: "prompt-builder", Stable: "prompt-builder-blue", Canary: "prompt-builder-green"}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Router = "istio" }, `input "router": "istio" is not a router: use gateway-api`},
		{func(c *Config) { c.Namespace = "" }, `input "namespace" is empty`},
		{func(c *Config) { c.Namespace = "Prod" }, `input "namespace": "Prod" is not a namespace name`},
		{func(c *Config) { c.Route = "" }, `input "route" is empty: name the HTTPRoute that sends the environment's traffic to Service prompt-builder-blue`},
		{func(c *Config) { c.Route = "bad_name" }, `input "route": "bad_name" is not a valid HTTPRoute name`},
		{func(c *Config) { c.Stable = "" }, `input "stable-service" is empty`},
		{func(c *Config) { c.Canary = "Green" }, `input "canary-service": "Green" is not a Service name`},
		{func(c *Config) { c.Canary = c.Stable }, `inputs "stable-service" and "canary-service" are both "prompt-builder-blue"`},
		{func(c *Config) { c.Router = IngressNginx; c.Route = "" }, `name the Ingress that sends`},
		{func(c *Config) { c.Router = IngressNginx; c.Route = strings.Repeat("a", 250) }, `more than 253: use a shorter Ingress name`},
	} {
		cfg := good
		tc.edit(&cfg)
		_, err := New(dyn, cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", cfg, err, tc.want)
		}
	}
	for _, kind := range []string{"", GatewayAPI, IngressNginx} {
		cfg := good
		cfg.Router = kind
		r, err := New(dyn, cfg)
		if err != nil {
			t.Fatalf("New(router %q): %v", kind, err)
		}
		want := map[string]string{
			"":           "HTTPRoute prod/prompt-builder (gateway-api)",
			GatewayAPI:   "HTTPRoute prod/prompt-builder (gateway-api)",
			IngressNginx: "Ingress prod/prompt-builder-canary (ingress-nginx canary of Ingress prompt-builder)",
		}[kind]
		if r.Describe() != want {
			t.Errorf("router %q: Describe() = %q, want %q", kind, r.Describe(), want)
		}
	}
}

// TestBadWeightsSendNothing: a split that does not add up is refused
// before any request reaches the cluster (here a server that counts them).
func TestBadWeightsSendNothing(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{GatewayAPI, IngressNginx} {
		r, err := New(dyn, Config{Router: kind, Namespace: "prod", Route: "web", Stable: "web-blue", Canary: "web-green"})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range [][2]int{{90, 20}, {-10, 110}, {0, 0}, {101, -1}} {
			err := r.SetWeights(t.Context(), w[0], w[1])
			if err == nil || !strings.Contains(err.Error(), r.Describe()) || !strings.Contains(err.Error(), "stable/canary") {
				t.Errorf("%s: SetWeights(%d, %d) = %v, want a weights error naming the route", kind, w[0], w[1], err)
			}
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("bad weights sent %d requests to the API server, want none", n)
	}
	// The server is reachable: a good split does reach it.
	r, _ := New(dyn, Config{Router: IngressNginx, Namespace: "prod", Route: "web", Stable: "web-blue", Canary: "web-green"})
	if err := r.SetWeights(t.Context(), 90, 10); err == nil {
		t.Error("SetWeights(90, 10) against a failing server succeeded")
	}
	if requests.Load() == 0 {
		t.Error("SetWeights(90, 10) sent no request: the counting server is not in the path")
	}
}

// TestNoGatewayAPI: a cluster without the Gateway API CRDs answers like
// kube-apiserver for any unknown group ("404 page not found"); the router
// says what to install rather than that the route is missing.
func TestNoGatewayAPI(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(dyn, Config{Namespace: "prod", Route: "web", Stable: "web-blue", Canary: "web-green"})
	if err != nil {
		t.Fatal(err)
	}
	want := "the cluster serves no Gateway API HTTPRoutes (gateway.networking.k8s.io/v1): install the Gateway API CRDs and a Gateway controller, or use router: ingress-nginx"
	if err := r.Check(t.Context()); err == nil || err.Error() != want {
		t.Errorf("Check = %v\nwant %s", err, want)
	}
}
