package traffictest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/testproc"
)

const (
	// ControllerName is Traefik's Gateway API controller name, the
	// GatewayClass's spec.controllerName.
	ControllerName = "traefik.io/gateway-controller"
	// GatewayName names the Gateway StartTraefik creates in the namespace.
	GatewayName = "gateway"
	// ListenerName names its one HTTP listener (an HTTPRoute's sectionName).
	ListenerName = "web"
	// classLabel selects a GatewayClass for one Traefik: parallel tests
	// share the cluster-scoped GatewayClasses, and each Traefik must only
	// claim its own.
	classLabel = "traffictest.gantry.dev/namespace"
	// traefikReadyTimeout bounds the start: process up, then the Gateway
	// Accepted and Programmed.
	traefikReadyTimeout = 60 * time.Second
)

// Gateway is a running Traefik (v3.6, tools/go.mod) acting as the Gateway
// API implementation for one namespace, with the GatewayClass and Gateway
// it serves. Requests to URL go through Traefik's data plane to the
// backends the namespace's HTTPRoutes select.
type Gateway struct {
	// Name and Namespace are the Gateway's (Name is GatewayName).
	Name, Namespace string
	// Class is the GatewayClass, named after the namespace.
	Class string
	// URL is the entry point, http://127.0.0.1:Port.
	URL  string
	Port int

	dyn  dynamic.Interface
	proc *testproc.Proc
}

// StartTraefik installs the Gateway API CRDs (InstallGatewayAPI), creates a
// GatewayClass for Traefik and a Gateway in ns with one HTTP listener
// (ListenerName, routes from ns only), and runs Traefik outside the cluster
// against cp, watching ns only. Its entry point listens on 127.0.0.1 at the
// listener's port: Traefik maps a Gateway listener to the entry point of
// the same port. StartTraefik returns once Traefik reports the Gateway
// Accepted and Programmed.
//
// Traefik runs with its defaults otherwise, so as in a cluster it applies
// a changed HTTPRoute within its providers throttle (2 s): about 1.9 s
// from apply to all requests following new weights, measured here.
//
// The binary is $TRAEFIK, else bin/traefik (make tools, from tools/go.mod);
// without it the test fails with the command that builds it. Traefik runs
// with no update check, no telemetry and its log in a t.TempDir(); Cleanup
// stops it (printing the log's tail if the test failed) and deletes the
// Gateway and GatewayClass.
func StartTraefik(t testing.TB, cp *k8stest.Cluster, ns string) *Gateway {
	t.Helper()
	bin, err := testproc.FindTool("traefik")
	if err != nil {
		t.Fatalf("traffictest: %v (build it: make tools)", err)
	}
	cfg := cp.RESTConfig()
	InstallGatewayAPI(t, cfg)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("traffictest: %v", err)
	}
	ports, err := testproc.FreePorts(2)
	if err != nil {
		t.Fatalf("traffictest: finding free ports: %v", err)
	}
	g := &Gateway{
		Name:      GatewayName,
		Namespace: ns,
		Class:     "traffictest-" + ns,
		Port:      ports[0],
		URL:       "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		dyn:       dyn,
	}
	pingURL := "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/ping"

	ctx, cancel := context.WithTimeout(context.Background(), traefikReadyTimeout)
	defer cancel()
	apply := func(res dynamic.ResourceInterface, obj *unstructured.Unstructured) {
		t.Helper()
		if _, err := res.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
			t.Fatalf("traffictest: applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	// Registered before Traefik starts, so they run after it has stopped:
	// nothing rewrites the objects' status while they go.
	classes := dyn.Resource(GatewayClassGVR())
	gateways := dyn.Resource(GatewayGVR()).Namespace(ns)
	t.Cleanup(func() {
		deleteIgnoringNotFound(t, "GatewayClass "+g.Class, func(ctx context.Context) error {
			return classes.Delete(ctx, g.Class, metav1.DeleteOptions{})
		})
	})
	apply(classes, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GatewayGroup + "/v1",
		"kind":       "GatewayClass",
		"metadata":   map[string]any{"name": g.Class, "labels": map[string]any{classLabel: ns}},
		"spec":       map[string]any{"controllerName": ControllerName},
	}})
	t.Cleanup(func() {
		deleteIgnoringNotFound(t, "Gateway "+ns+"/"+g.Name, func(ctx context.Context) error {
			return gateways.Delete(ctx, g.Name, metav1.DeleteOptions{})
		})
	})
	apply(gateways, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GatewayGroup + "/v1",
		"kind":       "Gateway",
		"metadata":   map[string]any{"name": g.Name, "namespace": ns},
		"spec": map[string]any{
			"gatewayClassName": g.Class,
			"listeners": []any{map[string]any{
				"name":          ListenerName,
				"port":          int64(g.Port),
				"protocol":      "HTTP",
				"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "Same"}},
			}},
		},
	}})

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(ca, cfg.CAData, 0o600); err != nil {
		t.Fatalf("traffictest: %v", err)
	}
	// A file, so the token stays out of the process list.
	if err := os.WriteFile(token, []byte(cfg.BearerToken), 0o600); err != nil {
		t.Fatalf("traffictest: %v", err)
	}
	logPath := filepath.Join(dir, "traefik.log")
	args := []string{
		"--global.checkNewVersion=false",
		"--global.sendAnonymousUsage=false",
		"--log.level=INFO",
		"--entryPoints." + ListenerName + ".address=127.0.0.1:" + strconv.Itoa(g.Port),
		"--entryPoints.traefik.address=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--ping=true",
		// Stopping a test's gateway need not wait for idle keep-alive
		// connections (default 10 s).
		"--entryPoints." + ListenerName + ".transport.lifeCycle.graceTimeOut=1s",
		"--entryPoints.traefik.transport.lifeCycle.graceTimeOut=1s",
		"--providers.kubernetesGateway=true",
		"--providers.kubernetesGateway.endpoint=" + cfg.Host,
		"--providers.kubernetesGateway.token=" + token,
		"--providers.kubernetesGateway.certAuthFilePath=" + ca,
		"--providers.kubernetesGateway.namespaces=" + ns,
		"--providers.kubernetesGateway.labelSelector=" + classLabel + "=" + ns,
		"--providers.kubernetesGateway.statusAddress.ip=127.0.0.1",
	}
	p, err := testproc.Start(testproc.Spec{
		Name:  "traefik",
		Bin:   bin,
		Args:  args,
		Env:   []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir},
		Dir:   dir,
		Log:   logPath,
		Grace: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("traffictest: %v", err)
	}
	g.proc = p
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("traffictest: Traefik log (last lines of %s):\n%s", logPath, p.Tail(40))
		}
	})

	began := time.Now()
	client := directClient(2 * time.Second)
	defer client.CloseIdleConnections()
	err = poll(ctx, 50*time.Millisecond, func() error {
		if p.Exited() {
			return fmt.Errorf("%w (%v)", errExited, p.Wait())
		}
		resp, err := client.Get(pingURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", pingURL, resp.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("traffictest: Traefik did not come up: %v", err)
	}
	err = poll(ctx, 50*time.Millisecond, func() error {
		if p.Exited() {
			return fmt.Errorf("%w (%v)", errExited, p.Wait())
		}
		conds, gen, err := g.Conditions(ctx)
		if err != nil {
			return err
		}
		return conditionsTrue(conds, gen, "Accepted", "Programmed")
	})
	if err != nil {
		t.Fatalf("traffictest: Gateway %s/%s not programmed by Traefik: %v", ns, g.Name, err)
	}
	t.Logf("traffictest: Traefik serving gateway %s/%s at %s after %v", ns, g.Name, g.URL, time.Since(began).Round(time.Millisecond))
	return g
}

// Conditions reads the Gateway's status conditions as Traefik wrote them,
// and its metadata.generation.
func (g *Gateway) Conditions(ctx context.Context) (conds []metav1.Condition, generation int64, err error) {
	obj, err := g.dyn.Resource(GatewayGVR()).Namespace(g.Namespace).Get(ctx, g.Name, metav1.GetOptions{})
	if err != nil {
		return nil, 0, err
	}
	conds, err = conditionsAt(obj.Object, "status", "conditions")
	return conds, obj.GetGeneration(), err
}

// ListenerConditions reads the status conditions of the Gateway's listener
// (Accepted, Programmed, ResolvedRefs, ...).
func (g *Gateway) ListenerConditions(ctx context.Context) ([]metav1.Condition, error) {
	obj, err := g.dyn.Resource(GatewayGVR()).Namespace(g.Namespace).Get(ctx, g.Name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	listeners, _, err := unstructured.NestedSlice(obj.Object, "status", "listeners")
	if err != nil {
		return nil, err
	}
	for _, l := range listeners {
		if m, ok := l.(map[string]any); ok && m["name"] == ListenerName {
			return conditionsAt(m, "conditions")
		}
	}
	return nil, nil
}

// Pid is Traefik's process id, for tests that check it is gone.
func (g *Gateway) Pid() int { return g.proc.Pid() }

// LogTail returns the last n lines of Traefik's log.
func (g *Gateway) LogTail(n int) string { return g.proc.Tail(n) }

// Stop stops Traefik now; Cleanup calls it too.
func (g *Gateway) Stop() { g.proc.Stop() }
