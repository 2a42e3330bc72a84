package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/gantry-ci/gantry/internal/manifests"
	"github.com/gantry-ci/gantry/internal/progressive"
	"github.com/gantry-ci/gantry/internal/rollout"
	"github.com/gantry-ci/gantry/internal/testproc"
)

// The demo's production: the production overlay of testdata/k8s and an
// Ingress in front of it, rolled out blue-green through the ingress-nginx
// router. The holds are seconds, not the guide's minutes, so the demo
// stays short.
const (
	bgNamespace   = "prompt-builder-production"
	bgDeployment  = "prompt-builder"
	bgEnvironment = "production"
	bgSteps       = "10:5s,50:5s,100:5s"
	// bgRPS is the demo's load, split between blue and green by the
	// canary Ingress's weight.
	bgRPS = 100
	// Pod names of the shape a Deployment's pods have, for the series of
	// the two app instances (see bgPrometheus).
	bgBluePod  = "prompt-builder-7d5c8f9b6-x4k2q"
	bgGreenPod = "prompt-builder-canary-6b9f7d8c5-p2w7z"
)

// demoBlueGreen rolls image (green) out blue-green to a production
// namespace of the local control plane, from the previous release (blue,
// built here as 1.2.2 from the same sources by gantry-build with buildEnv),
// and prints the step table of the job summary. Without a control plane it
// prints the schedule a rollout follows and how to run the real one.
//
// The control plane's pods are kwok's and run nothing, and the demo has
// no ingress controller: two instances of the sample app run on this
// machine as blue and green, a load generator plays ingress-nginx by
// splitting its requests as the canary Ingress's weight says, and a real
// Prometheus scrapes both, so every step's analysis is real. Without
// Prometheus (bin/prometheus, `make tools`) the rollout is shown as a plan.
func demoBlueGreen(ctx context.Context, w io.Writer, root, bin, work string, buildEnv map[string]string, image string) error {
	dir := filepath.Join(work, "bluegreen")
	overlay, err := bgOverlay(root, dir, image)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(bin, "k8s", "kubeconfig")
	if _, err := os.Stat(kubeconfig); err != nil || !clusterUp(ctx, kubeconfig) {
		return bgSchedule(w, overlay, image)
	}

	step(w, "Deploy: blue-green to %s on the local control plane (gantry-deploy, strategy blue-green, traffic-router ingress-nginx)", bgNamespace)
	blue, err := bgBuildBlue(ctx, w, bin, work, dir, buildEnv)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  blue  (the previous release, 1.2.2, built now from the same sources): %s\n", blue)
	fmt.Fprintf(w, "  green (the new release, 1.2.3):                                      %s\n", image)

	cfg, err := rollout.RESTConfigFrom(kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	base := map[string]string{
		"INPUT_ENVIRONMENT":    bgEnvironment,
		"INPUT_MANIFESTS":      overlay,
		"INPUT_KUBECONFIG":     kubeconfig,
		"INPUT_ROUTE":          bgDeployment,
		"INPUT_TRAFFIC-ROUTER": progressive.IngressNginx,
		"GITHUB_REPOSITORY":    "acme/Prompt-Builder",
		"GITHUB_SHA":           "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
	}
	// A rollout left unfinished by an interrupted demo would refuse the
	// next deploy: abort it first, as an operator would.
	if store, err := progressive.NewStore(cs, bgNamespace, bgEnvironment); err == nil {
		if st, err := store.Load(ctx); err == nil && st.Active() {
			fmt.Fprintf(w, "  an earlier demo left a rollout unfinished (%s): action abort (once the dead run's deploy lease expires, up to 60s)\n", st.Describe())
			env := maps.Clone(base)
			env["INPUT_ACTION"], env["INPUT_STRATEGY"] = "abort", "blue-green"
			if _, err := runStage(ctx, io.Discard, filepath.Join(bin, "gantry-deploy"), work, env); err != nil {
				return fmt.Errorf("aborting the unfinished rollout of an earlier demo: %w", err)
			}
		}
	}

	// The two versions, Prometheus and the load start while blue is
	// deployed: Prometheus takes a few seconds to scrape its targets.
	var fleet *bgFleet
	promBin := os.Getenv("PROMETHEUS")
	if promBin == "" {
		promBin = filepath.Join(bin, "prometheus")
	}
	if _, err := os.Stat(promBin); err == nil {
		if fleet, err = startBGFleet(ctx, root, work, dir, promBin); err != nil {
			return err
		}
		defer fleet.stop()
		go fleet.follow(ctx, cs)
	}

	env := maps.Clone(base)
	env["INPUT_IMAGE"], env["INPUT_TIMEOUT"] = blue, "2m"
	out, err := runStage(ctx, io.Discard, filepath.Join(bin, "gantry-deploy"), work, env)
	if err != nil {
		return fmt.Errorf("deploying blue (rolling): %w", err)
	}
	fmt.Fprintf(w, "  blue deployed (rolling): status %s, revision %s\n", out["status"], out["revision"])

	env = maps.Clone(base)
	env["INPUT_IMAGE"] = image
	env["INPUT_STRATEGY"] = "blue-green"
	env["INPUT_STEPS"] = bgSteps
	env["GITHUB_STEP_SUMMARY"] = filepath.Join(dir, "summary.md")
	if fleet == nil {
		// Nothing to analyse against: the plan, which changes nothing.
		step(w, "Deploy: no Prometheus at %s (`make tools` installs it): the blue-green plan instead of the analysed rollout", promBin)
		env["INPUT_ACTION"] = "plan"
		env["INPUT_PLAN-FILE"] = filepath.Join(dir, "plan.json")
		// Only shown in the plan: no query is sent.
		env["INPUT_PROMETHEUS-URL"] = "http://prometheus.monitoring:9090"
		if _, err := runStage(ctx, io.Discard, filepath.Join(bin, "gantry-deploy"), work, env); err != nil {
			return err
		}
		if err := bgPrintSummary(w, env["GITHUB_STEP_SUMMARY"], "| step | canary weight |", "| route |", "| weights now |", "| rollback target |"); err != nil {
			return err
		}
		fmt.Fprintf(w, "  for the rollout itself, analysed step by step: `make tools` (Prometheus), then `bin/gantry-demo` again\n")
		return nil
	}
	if err := fleet.waitScraped(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "  no ingress controller here, and kwok's pods run nothing: the sample app runs on this machine as blue (%s) and green (%s);\n", fleet.blue.url, fleet.green.url)
	fmt.Fprintf(w, "  the demo's load (%d requests/s) plays ingress-nginx, splitting by the canary Ingress's weight; Prometheus (%s)\n", bgRPS, fleet.promURL)
	fmt.Fprintf(w, "  scrapes both, labelled as its Kubernetes discovery labels the pods, so the default selectors and the analysis are the real ones\n")
	fmt.Fprintf(w, "  (holds of seconds; checks error-rate, success-rate, p95 at 90%% confidence — a demo's steps are too short for p99, and kwok has no memory metrics)\n")

	env["INPUT_PROMETHEUS-URL"] = fleet.promURL
	env["INPUT_INTERVAL"], env["INPUT_MAX-HOLD"] = "1s", "20s"
	// No container metrics without a kubelet. A demo's steps see a few
	// hundred requests: too few to bound a 1% share (p99) within a 10%
	// step of seconds, enough for the other checks at 90% confidence.
	env["INPUT_MEMORY"], env["INPUT_P99"] = "off", "off"
	env["INPUT_MIN-SAMPLES"], env["INPUT_CONFIDENCE"] = "20", "0.9"
	// The preview, as the runner reaches it.
	env["INPUT_SMOKE-URL"], env["INPUT_SMOKE-EXPECT"] = fleet.green.url+"/api/version", `200 "version":"1.2.3"`
	env["INPUT_DECISION-LOG"] = filepath.Join(dir, "decisions.jsonl")
	env["INPUT_TIMEOUT"] = "2m"
	logPath := filepath.Join(dir, "deploy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	start := time.Now()
	out, err = runStage(ctx, logf, filepath.Join(bin, "gantry-deploy"), work, env)
	logf.Close()
	took := time.Since(start)
	blueN, greenN, failed := fleet.load.counts()
	if err != nil {
		fmt.Fprintf(w, "  the rollout failed; the end of its log:\n%s", indent(tail(logPath, 30), "    "))
		return fmt.Errorf("blue-green rollout: %w", err)
	}
	if err := bgPrintLog(w, logPath); err != nil {
		return err
	}
	fmt.Fprintf(w, "  status: %s after %v; digest %s, previous-digest %s, revision %s\n", out["status"], took.Round(time.Second), out["digest"], out["previous-digest"], out["revision"])
	fmt.Fprintf(w, "  load: %d requests answered by blue, %d by green, %d failed\n", blueN, greenN, failed)
	if err := bgPrintSummary(w, env["GITHUB_STEP_SUMMARY"], "| step | canary weight |", "**Decision:**"); err != nil {
		return err
	}
	return bgCheck(ctx, w, cs, image)
}

// bgOverlay writes the demo's production overlay: testdata's, with the
// image pointed at the demo registry and the Ingress the environment's
// traffic goes through (a user's overlay would hold it).
func bgOverlay(root, dir, image string) (string, error) {
	overlay := filepath.Join(dir, "overlay")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		return "", err
	}
	base, err := filepath.Rel(overlay, filepath.Join(root, "testdata", "k8s", "overlays", "production"))
	if err != nil {
		return "", err
	}
	repo, _, _ := strings.Cut(image, "@")
	kust := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- %s\n- ingress.yaml\nimages:\n- name: ghcr.io/acme/prompt-builder\n  newName: %s\n", base, repo)
	ing := fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  ingressClassName: nginx
  rules:
  - host: prompt-builder.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: %[1]s
            port: {number: 80}
`, bgDeployment, bgNamespace)
	for name, s := range map[string]string{"kustomization.yaml": kust, "ingress.yaml": ing} {
		if err := os.WriteFile(filepath.Join(overlay, name), []byte(s), 0o644); err != nil {
			return "", err
		}
	}
	return overlay, nil
}

// bgSchedule prints, without a cluster, the schedule a blue-green rollout
// of image to production follows: the guide's steps, with green at the
// production overlay's size from the start.
func bgSchedule(w io.Writer, overlay, image string) error {
	step(w, "Deploy: blue-green to production: no local control plane; the schedule a rollout of the image follows")
	objs, err := manifests.Render(overlay)
	if err != nil {
		return err
	}
	replicas := int64(1)
	for _, o := range manifests.Workloads(objs) {
		if o.GetKind() == "Deployment" && o.GetName() == bgDeployment {
			if n, ok, _ := unstructured.NestedInt64(o.Object, "spec", "replicas"); ok {
				replicas = n
			}
		}
	}
	steps, err := progressive.ParseSteps(progressive.DefaultSteps)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  blue: Deployment %s/%s (%d replicas) keeps running and serving; green: Deployment %s%s with %s, at %d replicas from the start\n",
		bgNamespace, bgDeployment, replicas, bgDeployment, rollout.CanarySuffix, image, replicas)
	fmt.Fprintf(w, "  traffic: the canary Ingress %s%s (ingress-nginx) beside Ingress %s, or an HTTPRoute's weights (gateway-api)\n\n", bgDeployment, rollout.CanarySuffix, bgDeployment)
	fmt.Fprintf(w, "  | step | traffic on green | hold | green replicas |\n  |---|---|---|---|\n")
	for i, s := range steps {
		fmt.Fprintf(w, "  | %d | %d%% | %v | %d |\n", i+1, s.Weight, s.Hold, replicas)
	}
	fmt.Fprintf(w, "\n  each step: success-rate >= 95%%, error-rate <= 5%%, p95 <= 1s, p99 <= 2s, memory <= 90%% of the limit, green against blue in Prometheus;\n")
	fmt.Fprintf(w, "  a failing step sends all traffic back to blue at once; after the last one Deployment %s is updated to the digest and green scaled to 0\n", bgDeployment)
	fmt.Fprintf(w, "  the real thing: `make k8s-up`, then `bin/gantry-demo` again (a rollout analysed against Prometheus, holds of seconds); in a workflow:\n")
	fmt.Fprintf(w, "  actions/deploy with strategy: blue-green (docs/deploy-progressive.md)\n")
	return nil
}

// bgBuildBlue builds the previous release, 1.2.2, from the same sources
// with gantry-build, tagged 1.2.2 only (its tags must not move 1.2 or
// latest away from 1.2.3), and returns it by digest.
func bgBuildBlue(ctx context.Context, w io.Writer, bin, work, dir string, buildEnv map[string]string) (string, error) {
	env := maps.Clone(buildEnv)
	env["INPUT_ENV"] = "LISTEN_ADDR=:8080\nAPP_VERSION=1.2.2"
	env["INPUT_TAGS"] = "type=raw,value=1.2.2\nlatest=false"
	env["INPUT_RELEASE-FILE"] = filepath.Join(dir, "release-1.2.2.json")
	env["INPUT_OCI-LAYOUT"] = filepath.Join(dir, "oci-layout-1.2.2")
	env["GITHUB_REF"], env["GITHUB_REF_NAME"] = "refs/tags/v1.2.2", "v1.2.2"
	env["GITHUB_SHA"] = "4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5"
	out, err := runStage(ctx, io.Discard, filepath.Join(bin, "gantry-build"), work, env)
	if err != nil {
		return "", fmt.Errorf("building the previous release 1.2.2 (blue): %w", err)
	}
	return out["image"], nil
}

// bgProc is one process the demo runs beside the rollout.
type bgProc struct {
	url  string
	proc *testproc.Proc
}

// bgFleet is blue, green, Prometheus and the load between them.
type bgFleet struct {
	blue, green, prom bgProc
	promURL           string
	load              *bgLoad
}

// startBGFleet starts the sample app twice (1.2.2, 1.2.3), Prometheus
// scraping both, and the load, at weight 0: all on blue.
func startBGFleet(ctx context.Context, root, work, dir, promBin string) (f *bgFleet, err error) {
	f = &bgFleet{}
	defer func() {
		if err != nil {
			f.stop()
		}
	}()
	app, err := bgAppBinary(ctx, root, work, dir)
	if err != nil {
		return nil, err
	}
	for _, v := range []struct {
		p       *bgProc
		version string
	}{{&f.blue, "1.2.2"}, {&f.green, "1.2.3"}} {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		if v.p.proc, err = testproc.Start(testproc.Spec{
			Name: "prompt-builder " + v.version, Bin: app,
			Env: []string{"LISTEN_ADDR=" + addr, "APP_VERSION=" + v.version},
			Log: filepath.Join(dir, "app-"+v.version+".log"), Grace: 2 * time.Second,
		}); err != nil {
			return nil, err
		}
		v.p.url = "http://" + addr
		if err := waitHTTP(ctx, v.p.proc, v.p.url+"/readyz"); err != nil {
			return nil, err
		}
	}
	if f.prom, err = bgPrometheus(ctx, dir, promBin, f.blue.url, f.green.url); err != nil {
		return nil, err
	}
	f.promURL = f.prom.url
	f.load = startBGLoad(f.blue.url+"/api/prompts", f.green.url+"/api/prompts")
	return f, nil
}

// bgAppBinary is the sample app for this machine: the demo's own build
// when it made one for this platform, else built now.
func bgAppBinary(ctx context.Context, root, work, dir string) (string, error) {
	p := filepath.Join(work, "dist", "prompt-builder-"+runtime.GOARCH)
	if _, err := os.Stat(p); err == nil && runtime.GOOS == "linux" {
		return p, nil
	}
	p = filepath.Join(dir, "prompt-builder")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", p, ".")
	cmd.Dir = filepath.Join(root, "testdata", "app")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the sample app: %w\n%s", err, out)
	}
	return p, nil
}

// bgPrometheus starts Prometheus scraping blue and green every second,
// labelling their series with the namespace and pod names a Deployment's
// pods would have, as its Kubernetes pod discovery does: the default
// selectors of gantry-deploy then select them.
func bgPrometheus(ctx context.Context, dir, bin, blueURL, greenURL string) (bgProc, error) {
	target := func(u, pod string) map[string]any {
		pu, _ := url.Parse(u)
		return map[string]any{"targets": []string{pu.Host}, "labels": map[string]string{"namespace": bgNamespace, "pod": pod}}
	}
	cfg := map[string]any{
		"global": map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
		"scrape_configs": []any{map[string]any{
			"job_name":       "prompt-builder",
			"static_configs": []any{target(blueURL, bgBluePod), target(greenURL, bgGreenPod)},
		}},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return bgProc{}, err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return bgProc{}, err
	}
	addr, err := freeAddr()
	if err != nil {
		return bgProc{}, err
	}
	p, err := testproc.Start(testproc.Spec{
		Name: "prometheus", Bin: bin,
		Args: []string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "prometheus-data"), "--storage.tsdb.retention.time=1h", "--web.listen-address=" + addr},
		Env:  []string{"HOME=" + dir, "TMPDIR=" + os.TempDir()},
		Log:  filepath.Join(dir, "prometheus.log"), Grace: 2 * time.Second,
	})
	if err != nil {
		return bgProc{}, err
	}
	pr := bgProc{url: "http://" + addr, proc: p}
	if err := waitHTTP(ctx, p, pr.url+"/-/ready"); err != nil {
		p.Stop()
		return bgProc{}, err
	}
	return pr, nil
}

// waitScraped waits until Prometheus has scraped both versions.
func (f *bgFleet) waitScraped(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		n, err := promUp(ctx, client, f.promURL)
		if err == nil && n == 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prometheus at %s has not scraped blue and green after 30s (%d up, %v); its log:\n%s", f.promURL, n, err, f.prom.proc.Tail(10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// promUp counts the targets Prometheus scraped successfully.
func promUp(ctx context.Context, client *http.Client, promURL string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, promURL+"/api/v1/query?query="+url.QueryEscape("up == 1"), nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	return len(r.Data.Result), nil
}

// follow keeps the load's split at the canary Ingress's weight, as
// ingress-nginx would, until ctx ends or the fleet stops.
func (f *bgFleet) follow(ctx context.Context, cs kubernetes.Interface) {
	canary := bgDeployment + rollout.CanarySuffix
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.load.quit:
			return
		case <-time.After(200 * time.Millisecond):
		}
		ing, err := cs.NetworkingV1().Ingresses(bgNamespace).Get(ctx, canary, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			f.load.weight.Store(0)
		case err == nil:
			if n, err := strconv.Atoi(ing.Annotations[progressive.AnnotationCanaryWeight]); err == nil {
				f.load.weight.Store(int64(n))
			}
		}
	}
}

func (f *bgFleet) stop() {
	if f.load != nil {
		f.load.stop()
	}
	for _, p := range []bgProc{f.prom, f.green, f.blue} {
		if p.proc != nil {
			p.proc.Stop()
		}
	}
}

// bgLoad sends bgRPS requests a second, each to green with the
// probability of the canary weight, at most 32 in flight.
type bgLoad struct {
	weight              atomic.Int64
	blue, green, failed atomic.Int64
	quit                chan struct{}
	stop                func()
}

func startBGLoad(blueURL, greenURL string) *bgLoad {
	l := &bgLoad{quit: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	slots := make(chan struct{}, 32)
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second / bgRPS)
		defer tick.Stop()
		for {
			select {
			case <-l.quit:
				return
			case <-tick.C:
			}
			u, n := blueURL, &l.blue
			if rand.IntN(100) < int(l.weight.Load()) {
				u, n = greenURL, &l.green
			}
			select {
			case slots <- struct{}{}:
			default:
				continue // all busy: skip the tick rather than queue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				resp, err := client.Get(u)
				if err != nil {
					l.failed.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.failed.Add(1)
					return
				}
				n.Add(1)
			}()
		}
	}()
	l.stop = sync.OnceFunc(func() {
		close(l.quit)
		<-done
		wg.Wait()
	})
	return l
}

func (l *bgLoad) counts() (blue, green, failed int64) {
	return l.blue.Load(), l.green.Load(), l.failed.Load()
}

// bgLogLine picks the lines of gantry-deploy's log that tell the rollout:
// the canary's size, the smoke test, each move of traffic, each step's
// verdict and the promotion.
var bgLogLine = regexp.MustCompile(`^(::group::(Canary Deployment|Promoting)|smoke test passed|traffic \d+/\d+|(step \d+: \d+%|bake: 100%): [A-Z_]+:)`)

func bgPrintLog(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); bgLogLine.MatchString(l) {
			fmt.Fprintf(w, "  | %s\n", strings.TrimPrefix(l, "::group::"))
		}
	}
	return sc.Err()
}

// bgPrintSummary prints the job summary's table that starts with the line
// starting with table, and the lines starting with any of also.
func bgPrintSummary(w io.Writer, path, table string, also ...string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("the job summary: %w", err)
	}
	in := false
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, table):
			in, found = true, true
		case in && !strings.HasPrefix(l, "|"):
			in = false
		}
		keep := in
		for _, a := range also {
			keep = keep || strings.HasPrefix(l, a)
		}
		if keep {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if !found {
		return fmt.Errorf("the job summary %s has no table %q", path, table)
	}
	return nil
}

// bgCheck reads back from the cluster what a promotion leaves: Deployment
// N on the new digest, green at 0, no traffic on the canary Ingress.
func bgCheck(ctx context.Context, w io.Writer, cs kubernetes.Interface, image string) error {
	dep, err := cs.AppsV1().Deployments(bgNamespace).Get(ctx, bgDeployment, metav1.GetOptions{})
	if err != nil {
		return err
	}
	canary, err := cs.AppsV1().Deployments(bgNamespace).Get(ctx, bgDeployment+rollout.CanarySuffix, metav1.GetOptions{})
	if err != nil {
		return err
	}
	weight := "(no canary Ingress)"
	if ing, err := cs.NetworkingV1().Ingresses(bgNamespace).Get(ctx, bgDeployment+rollout.CanarySuffix, metav1.GetOptions{}); err == nil {
		weight = ing.Annotations[progressive.AnnotationCanaryWeight] + "%"
	}
	img := dep.Spec.Template.Spec.Containers[0].Image
	fmt.Fprintf(w, "  on the cluster: Deployment %s runs %s (%d/%d ready), %s%s at %d replicas, canary Ingress weight %s\n",
		bgDeployment, img, dep.Status.ReadyReplicas, *dep.Spec.Replicas, bgDeployment, rollout.CanarySuffix, *canary.Spec.Replicas, weight)
	if img != image || *canary.Spec.Replicas != 0 {
		return errors.New("the rollout reported success but the cluster does not show a promotion")
	}
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP waits up to 15 s until u answers 200, failing early when the
// process exits.
func waitHTTP(ctx context.Context, p *testproc.Proc, u string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		if p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("%s did not come up: %v; its log:\n%s", p.Name(), err, p.Tail(10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
