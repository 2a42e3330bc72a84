package traffictest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/promtest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

// TestWeightShift is the scenario the deploy strategies build on: blue and
// green behind one HTTPRoute, weights applied by server-side apply as the
// product does, the split measured at Traefik's entry point, then a full
// shift to green. Afterwards nothing it started may be left.
func TestWeightShift(t *testing.T) {
	t.Parallel()
	var (
		netns, link string
		pids        = map[string]int{}
		class       string
	)
	cp := k8stest.Start(t)
	t.Run("shift", func(t *testing.T) {
		began := time.Now()
		ns := cp.Namespace(t)
		network := NewNetwork(t)
		netns, link = network.Name(), network.Link()
		blue := network.StartApp(t, "blue", nil)
		green := network.StartApp(t, "green", nil)
		pids["blue"], pids["green"] = blue.Pid(), green.Pid()
		ExposeService(t, cp.Clientset(), ns, "app-blue", blue)
		ExposeService(t, cp.Clientset(), ns, "app-green", green)
		t.Logf("network %s (%s), backends %s and %s up after %v", netns, network.Prefix(), blue.Addr, green.Addr, time.Since(began).Round(time.Millisecond))

		// Prometheus scrapes the backends across the veth too: the
		// analysis of a canary counts what each version served.
		prom := promtest.StartPrometheus(t, blue.Target(map[string]string{"track": "blue"}), green.Target(map[string]string{"track": "green"}))
		served := map[string]int{} // every answer of every Tally below

		gw := StartTraefik(t, cp, ns)
		pids["traefik"], class = gw.Pid(), gw.Class
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()

		// What a user checks with kubectl: Traefik owns the Gateway.
		conds, gen, err := gw.Conditions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantConditions(t, "Gateway", conds, gen, "Accepted", "Programmed")
		lconds, err := gw.ListenerConditions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantConditions(t, "listener "+ListenerName, lconds, gen, "Accepted", "Programmed", "ResolvedRefs")

		dyn, err := dynamic.NewForConfig(cp.RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		routes := dyn.Resource(HTTPRouteGVR()).Namespace(ns)
		apply := func(blueWeight, greenWeight int32) int64 {
			t.Helper()
			route := gw.HTTPRoute("app", BackendRef{"app-blue", blueWeight}, BackendRef{"app-green", greenWeight})
			got, err := routes.Apply(ctx, "app", route, metav1.ApplyOptions{FieldManager: "gantry", Force: true})
			if err != nil {
				t.Fatalf("applying HTTPRoute app %d/%d: %v", blueWeight, greenWeight, err)
			}
			return got.GetGeneration()
		}

		// Status is Traefik's verdict, not an echo: a route to a Service
		// that does not exist is accepted with ResolvedRefs=False.
		broken := gw.HTTPRoute("broken", BackendRef{"app-missing", 1})
		if _, err := routes.Apply(ctx, "broken", broken, metav1.ApplyOptions{FieldManager: "gantry", Force: true}); err != nil {
			t.Fatal(err)
		}
		err = poll(ctx, 50*time.Millisecond, func() error {
			conds, _, err := gw.RouteConditions(ctx, "broken")
			if err != nil {
				return err
			}
			i := slices.IndexFunc(conds, func(c metav1.Condition) bool { return c.Type == "ResolvedRefs" })
			if i < 0 || conds[i].Status != metav1.ConditionFalse || conds[i].Reason != "BackendNotFound" {
				return fmt.Errorf("conditions %s, want ResolvedRefs=False (BackendNotFound)", describe(conds))
			}
			return nil
		})
		if err != nil {
			t.Errorf("HTTPRoute broken: %v", err)
		}
		if err := routes.Delete(ctx, "broken", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}

		// 90/10.
		gen = apply(90, 10)
		gw.WaitRoute(t, "app")
		assertManagedBy(t, ctx, dyn, ns, "gantry")
		// Status is written when Traefik has built the configuration; the
		// router switches to it a moment later.
		waitTraffic(t, gw.URL, served, 15*time.Second, func(c map[string]int) bool { return c["blue"]+c["green"] == 20 })
		counts := Tally(t, gw.URL, 400)
		addCounts(served, counts)
		t.Logf("90/10: %v", counts)
		rconds, rgen, err := gw.RouteConditions(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		wantConditions(t, "HTTPRoute app at 90/10", rconds, gen, "Accepted", "ResolvedRefs")
		if rgen != gen {
			t.Errorf("HTTPRoute app at generation %d, applied %d", rgen, gen)
		}
		// Traefik's weighted round robin is deterministic (earliest
		// deadline first): over any run of consecutive requests each
		// backend's count is within one of its exact share, 360/40 here.
		// Random choice would spread green over about 40±18 (3σ); ±1
		// asserts the real scheduler, nothing looser.
		if counts["blue"]+counts["green"] != 400 || absDiff(counts["green"], 40) > 1 {
			t.Errorf("400 requests at 90/10 = %v, want blue 360±1, green 40±1 and nothing else", counts)
		}

		// 0/100: everything on green within a bounded time.
		shifted := time.Now()
		gen = apply(0, 100)
		gw.WaitRoute(t, "app")
		waitTraffic(t, gw.URL, served, 15*time.Second, func(c map[string]int) bool { return c["green"] == 20 })
		t.Logf("0/100 applied (generation %d): all traffic on green after %v", gen, time.Since(shifted).Round(time.Millisecond))
		counts = Tally(t, gw.URL, 400)
		addCounts(served, counts)
		if counts["green"] != 400 {
			t.Errorf("400 requests at 0/100 = %v, want all 400 on green", counts)
		}
		rconds, _, err = gw.RouteConditions(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		wantConditions(t, "HTTPRoute app at 0/100", rconds, gen, "Accepted", "ResolvedRefs")

		// What each backend counted itself, as Prometheus scraped it,
		// matches who answered through the gateway.
		prom.WaitScrape(t)
		for _, track := range []string{"blue", "green"} {
			got, ok, err := promtest.Query(ctx, prom.URL, `sum(http_request_duration_seconds_count{route="/api/version",track="`+track+`"})`)
			if err != nil {
				t.Fatal(err)
			}
			if !ok || int(got) != served[track] {
				t.Errorf("Prometheus: %s served %v /api/version requests (ok=%v), the client saw %d", track, got, ok, served[track])
			}
		}
		t.Logf("answers through the gateway (and in Prometheus): %v", served)
		t.Logf("total %v", time.Since(began).Round(time.Millisecond))
	})

	// The subtest's Cleanups have run: Traefik and the apps are stopped,
	// the veth pair and namespace deleted.
	for name, pid := range pids {
		if processAlive(pid) {
			t.Errorf("%s (pid %d) still running after the test", name, pid)
		}
	}
	assertNetworkGone(t, netns, link)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if class != "" {
		if _, err := dyn.Resource(GatewayClassGVR()).Get(ctx, class, metav1.GetOptions{}); err == nil {
			t.Errorf("GatewayClass %s still exists after the test", class)
		}
	}
}

// TestKilledRunCleanedUp: a test process killed mid-test (a timeout, a
// panic, kill -9) runs no Cleanup. Its backends die with it; its namespace
// and veth pair stay until the next NewNetwork removes them.
//
// Not parallel: any NewNetwork of this process removes the stale network,
// and the parallel tests wait until this one is done.
func TestKilledRunCleanedUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperNetwork$", "-test.count=1")
	child.Env = append(os.Environ(), helperEnv+"=1")
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var netns, link string
	var app int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "helper: network %s %s app %d", &netns, &link, &app); err == nil {
			break
		}
	}
	if app == 0 {
		child.Process.Kill()
		t.Fatalf("the helper process reported no network (%v)", child.Wait())
	}
	child.Process.Kill()
	child.Wait()

	deadline := time.Now().Add(10 * time.Second)
	for processAlive(app) {
		if time.Now().After(deadline) {
			t.Fatalf("the killed process's app (pid %d) still runs after 10 s", app)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat("/run/netns/" + netns); err != nil {
		t.Fatalf("setup: the killed process's namespace %s is gone before any NewNetwork: %v", netns, err)
	}

	n := NewNetwork(t)
	if n.Link() == link {
		// The freed subnet was drawn again; link names are unique, so
		// the old pair is gone. Only the namespace is left to check.
		t.Logf("reused the stale network's subnet %s", n.Prefix())
		link = ""
	}
	assertNetworkGone(t, netns, link)
}

// TestHelperNetwork is TestKilledRunCleanedUp's child process: it creates
// a network with one backend, reports them and waits to be killed. Run
// without helperEnv (the normal test run) it does nothing.
func TestHelperNetwork(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	n := NewNetwork(t)
	b := n.StartApp(t, "v1", nil)
	if got := Tally(t, b.URL, 3); got["v1"] != 3 {
		t.Fatalf("3 requests to %s = %v", b.URL, got)
	}
	fmt.Printf("helper: network %s %s app %d\n", n.Name(), n.Link(), b.Pid())
	time.Sleep(time.Minute)
	t.Error("not killed within a minute")
}

const helperEnv = "TRAFFICTEST_HELPER_PROCESS"

// TestSubnetTaken: a network that draws a subnet another one holds backs
// off without touching the holder, whether the holder is of this process
// (same namespace name) or of another one (same link name).
func TestSubnetTaken(t *testing.T) {
	holder := NewNetwork(t)
	for _, pid := range []int{os.Getpid(), 1} {
		n, err := createNetwork(holder.Prefix(), pid)
		if !errors.Is(err, errTaken) {
			if n != nil {
				n.remove()
			}
			t.Fatalf("createNetwork(%s) as pid %d = %v, want errTaken", holder.Prefix(), pid, err)
		}
		if out, err := exec.Command("ip", "-n", holder.Name(), "link", "show", nsLink).CombinedOutput(); err != nil {
			t.Fatalf("after a lost race as pid %d the holder's veth is gone: %v: %s", pid, err, out)
		}
	}
	if names, _ := netnsNames(); slices.Contains(names, fmt.Sprintf("%s1-%d", netnsPrefix, holder.Prefix().Addr().As4()[2])) {
		t.Error("the loser's namespace was left behind")
	}
}

func TestParseNetnsName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pid, b int
		ok     bool
	}{
		{"gantry-tt-1234-17", 1234, 17, true},
		{"gantry-tt-1234-0", 0, 0, false},
		{"gantry-tt-1234-255", 0, 0, false},
		{"gantry-tt-x-17", 0, 0, false},
		{"gantry-tt-1234", 0, 0, false},
	} {
		pid, b, ok := parseNetnsName(tc.name)
		if ok != tc.ok || (ok && (pid != tc.pid || b != tc.b)) {
			t.Errorf("parseNetnsName(%q) = %d, %d, %v; want %d, %d, %v", tc.name, pid, b, ok, tc.pid, tc.b, tc.ok)
		}
	}
}

// wantConditions checks what `kubectl get -o yaml` shows a user: each
// type True with the reason of the same name (the Gateway API's reason
// for success) for the object's current generation.
func wantConditions(t *testing.T, what string, conds []metav1.Condition, generation int64, types ...string) {
	t.Helper()
	for _, typ := range types {
		i := slices.IndexFunc(conds, func(c metav1.Condition) bool { return c.Type == typ })
		if i < 0 {
			t.Errorf("%s: no %s condition (have %s)", what, typ, describe(conds))
			continue
		}
		if c := conds[i]; c.Status != metav1.ConditionTrue || c.Reason != typ || c.ObservedGeneration != generation {
			t.Errorf("%s: %s=%s reason %s observedGeneration %d, want True, reason %s, generation %d (%s)",
				what, typ, c.Status, c.Reason, c.ObservedGeneration, typ, generation, c.Message)
		}
	}
}

// assertNetworkGone: no namespace netns, and no link named link (unless
// empty).
func assertNetworkGone(t *testing.T, netns, link string) {
	t.Helper()
	if netns == "" {
		t.Error("no network was created")
		return
	}
	if _, err := os.Stat("/run/netns/" + netns); err == nil {
		t.Errorf("network namespace %s still exists", netns)
	}
	if link == "" {
		return
	}
	if out, err := exec.Command("ip", "link", "show", link).CombinedOutput(); err == nil {
		t.Errorf("link %s still exists: %s", link, out)
	}
}

// assertManagedBy: the route's spec belongs to the manager that applied it.
func assertManagedBy(t *testing.T, ctx context.Context, dyn dynamic.Interface, ns, manager string) {
	t.Helper()
	obj, err := dyn.Resource(HTTPRouteGVR()).Namespace(ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Subresource == "" {
			return
		}
	}
	var got []string
	for _, mf := range obj.GetManagedFields() {
		got = append(got, mf.Manager+"/"+string(mf.Operation)+"/"+mf.Subresource)
	}
	t.Errorf("HTTPRoute app managed by %v, want an Apply entry of %q", got, manager)
}

// waitTraffic tallies 20 requests every 100 ms, adding them to total,
// until ok accepts the counts; it fails the test after timeout with the
// last counts.
func waitTraffic(t *testing.T, url string, total map[string]int, timeout time.Duration, ok func(map[string]int) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := Tally(t, url, 20)
		addCounts(total, c)
		if ok(c) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("traffic through %s after %v: last 20 requests %v", url, timeout, c)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func addCounts(total, c map[string]int) {
	for k, v := range c {
		total[k] += v
	}
}

func absDiff(a, b int) int {
	if a > b {
		return a - b
	}
	return b - a
}
