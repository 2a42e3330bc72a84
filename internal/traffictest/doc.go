// Package traffictest gives tests a real Gateway API data plane on the
// test control plane of k8stest: Traefik v3.6 (tools/go.mod) as the
// Gateway implementation, and real HTTP servers behind it, so that traffic
// shifting (blue-green, canary weights on an HTTPRoute) can be tested by
// sending requests and counting who answered.
//
// The parts:
//
//   - NewNetwork: a network namespace with a veth pair to the host. kwok's
//     pods have no reachable address and EndpointSlices reject loopback
//     ones, so backends listen on addresses of their own inside the
//     namespace (10.231.B.2, .3, ...), reachable from the host.
//   - Network.StartApp: the sample app (testdata/app) in that namespace,
//     reporting its version at /api/version and exporting Prometheus
//     metrics, with the app's fault injection (ERROR_RATE, EXTRA_LATENCY);
//     Backend.Target makes it a target for promtest.StartPrometheus.
//   - ExposeService: a Service without selector plus an EndpointSlice
//     listing backends, what an HTTPRoute's backendRefs point at.
//   - StartTraefik: the Gateway API CRDs (vendored in
//     testdata/gateway-api), a GatewayClass, a Gateway and Traefik serving
//     it at Gateway.URL; Gateway.HTTPRoute builds weighted routes and
//     Gateway.WaitRoute waits for Traefik's Accepted/ResolvedRefs status.
//   - Tally: who answered n requests.
//
// A test:
//
//	func TestMain(m *testing.M) { k8stest.Main(m) }
//
//	func TestCanary(t *testing.T) {
//		cp := k8stest.Start(t)
//		ns := cp.Namespace(t)
//		network := traffictest.NewNetwork(t)
//		traffictest.ExposeService(t, cp.Clientset(), ns, "app-blue", network.StartApp(t, "blue", nil))
//		traffictest.ExposeService(t, cp.Clientset(), ns, "app-green", network.StartApp(t, "green", nil))
//		gw := traffictest.StartTraefik(t, cp, ns)
//		route := gw.HTTPRoute("app", traffictest.BackendRef{"app-blue", 90}, traffictest.BackendRef{"app-green", 10})
//		dyn, _ := dynamic.NewForConfig(cp.RESTConfig())
//		_, err := dyn.Resource(traffictest.HTTPRouteGVR()).Namespace(ns).Apply(ctx, "app", route,
//			metav1.ApplyOptions{FieldManager: "gantry", Force: true})
//		gw.WaitRoute(t, "app") // Accepted, ResolvedRefs for this generation
//		// Traffic follows the status within Traefik's provider throttle (~2 s):
//		// poll Tally until the answers are what the route says, then
//		counts := traffictest.Tally(t, gw.URL, 400) // map[blue:360 green:40]
//	}
//
// Everything is real and local: it needs root (network namespaces), `ip`
// (iproute2), bin/traefik and the k8stest binaries. Anything missing fails
// the test with the fix; nothing is skipped. Every helper undoes what it
// did in t.Cleanup, in reverse order (Traefik and the apps stop before the
// namespace goes); namespaces of killed test processes are removed by the
// next NewNetwork.
//
// It is for tests only; nothing in the product imports it.
package traffictest
