package rollout_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/metadata"
	"github.com/gantry-ci/gantry/internal/rollout"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

const repo = "ghcr.io/acme/prompt-builder"

// digest makes a stable fake digest: kwok starts no containers, so the
// image needs no registry.
func digest(s string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s)))
}

// app writes a Deployment and Service for ns, with an optional kwok fault on
// the pod template, and returns the file.
func app(t *testing.T, ns, fault string) string {
	t.Helper()
	ann := ""
	if fault != "" {
		ann = fmt.Sprintf("\n      annotations:\n        %s: %s", k8stest.FaultAnnotation, fault)
	}
	y := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: %[1]s
spec:
  replicas: 3
  revisionHistoryLimit: 5
  progressDeadlineSeconds: 60
  selector:
    matchLabels: {app: api}
  strategy:
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  template:
    metadata:
      labels: {app: api}%[2]s
    spec:
      containers:
      - name: api
        image: %[3]s:latest
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: %[1]s
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080}]
`, ns, ann, repo)
	p := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// logger records what the stage says, and when.
type logger struct {
	mu    sync.Mutex
	lines []string
	times []time.Time
	echo  bool // print each line as it comes (a runner process that may be killed)
}

func (l *logger) Infof(f string, a ...any)    { l.add(fmt.Sprintf(f, a...)) }
func (l *logger) Warningf(f string, a ...any) { l.add("WARNING " + fmt.Sprintf(f, a...)) }
func (l *logger) Group(title string) func()   { l.add("## " + title); return func() {} }
func (l *logger) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
	l.times = append(l.times, time.Now())
	if l.echo {
		fmt.Println(s)
	}
}

// when returns the time of the first line containing s.
func (l *logger) when(s string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, line := range l.lines {
		if strings.Contains(line, s) {
			return l.times[i]
		}
	}
	return time.Time{}
}
func (l *logger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

var _ ghaction.Logger = (*logger)(nil)

func inputs(c *k8stest.Cluster, env, manifests, image string) (rollout.Inputs, *logger) {
	log := &logger{}
	return rollout.Inputs{
		Environment: env, Image: image, Manifests: manifests,
		Strategy: "rolling", Action: "deploy", RollbackTo: "previous", AutoRollback: true, Lock: "wait", Prune: true, ReleaseHistory: 10,
		Timeout: 90 * time.Second, PlanFile: "",
		RESTConfig: c.RESTConfig(), Log: log, Poll: 200 * time.Millisecond, LeaseDuration: 6 * time.Second,
		Git: metadata.Context{Repository: "acme/prompt-builder", SHA: "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c", RunURL: "https://github.com/acme/prompt-builder/actions/runs/42"},
	}, log
}

func deploy(t *testing.T, in rollout.Inputs) rollout.Outputs {
	t.Helper()
	out, err := rollout.Run(t.Context(), in)
	if err != nil {
		t.Fatalf("deploy %s: %v\nlog:\n%s", in.Image, err, in.Log.(*logger))
	}
	return out
}

func currentImage(t *testing.T, c *k8stest.Cluster, ns string) string {
	t.Helper()
	d, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

func TestRollingDeploySucceedsAndRecordsRevisions(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	a, b := repo+"@"+digest("a"), repo+"@"+digest("b")

	in, _ := inputs(c, "staging", app(t, ns, ""), a)
	out := deploy(t, in)
	if out.Status != rollout.StatusSuccess || out.Revision != "1" || out.Digest != digest("a") || out.PreviousDigest != "" {
		t.Errorf("first deploy outputs %+v", out)
	}
	d, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.AvailableReplicas != 3 || d.Spec.Template.Spec.Containers[0].Image != a {
		t.Errorf("after deploy: %d available, image %s", d.Status.AvailableReplicas, d.Spec.Template.Spec.Containers[0].Image)
	}
	for k, want := range map[string]string{rollout.AnnotationDigest: digest("a"), rollout.AnnotationRevision: in.Git.SHA, rollout.AnnotationRunURL: in.Git.RunURL, rollout.AnnotationEnv: "staging"} {
		if d.Annotations[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, d.Annotations[k], want)
		}
	}
	if mf := d.ManagedFields; len(mf) == 0 || !hasManager(mf, rollout.FieldManager) {
		t.Errorf("no managed fields owned by %s: server-side apply not used", rollout.FieldManager)
	}

	in.Image = b
	out = deploy(t, in)
	if out.Revision != "2" || out.PreviousDigest != digest("a") || out.Digest != digest("b") {
		t.Errorf("second deploy outputs %+v", out)
	}
	if !strings.Contains(out.Summary, "revision:2") || !strings.Contains(out.Summary, digest("a")+"` → `"+digest("b")) {
		t.Errorf("summary lacks the digest change or the rollback command:\n%s", out.Summary)
	}
	// The lease is released after the deploy.
	if _, err := c.Clientset().CoordinationV1().Leases(ns).Get(t.Context(), rollout.LeaseName("staging"), metav1.GetOptions{}); err == nil {
		t.Errorf("the deploy left its lease behind")
	}
}

func hasManager(mf []metav1.ManagedFieldsEntry, name string) bool {
	for _, m := range mf {
		if m.Manager == name && m.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

func TestFailingRolloutIsRolledBackAutomatically(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ fault, reason string }{
		{"crashloop", "CrashLoopBackOff"},
		{"imagepull", "Image"}, // ImagePullBackOff or ErrImagePull
	} {
		t.Run(tc.fault, func(t *testing.T) {
			t.Parallel()
			c := k8stest.Start(t)
			ns := c.Namespace(t)
			good := repo + "@" + digest("good")
			in, _ := inputs(c, "staging", app(t, ns, ""), good)
			deploy(t, in)

			bad, log := inputs(c, "staging", app(t, ns, tc.fault), repo+"@"+digest("bad-"+tc.fault))
			start := time.Now()
			out, err := rollout.Run(t.Context(), bad)
			if err == nil {
				t.Fatalf("a %s rollout succeeded\n%s", tc.fault, log)
			}
			if time.Since(start) > 45*time.Second {
				t.Errorf("failure found after %v: not fast (progress deadline is 60s)", time.Since(start))
			}
			if !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), "in pod api-") || !strings.Contains(err.Error(), "rolled back to revision 3") {
				t.Errorf("error %q does not name the reason, the pod and the rollback", err)
			}
			if out.Status != rollout.StatusRolledBack || out.Failure == nil || !strings.Contains(out.Failure.Reason, tc.reason) {
				t.Errorf("outputs %+v, failure %+v", out, out.Failure)
			}
			if got := currentImage(t, c, ns); got != good {
				t.Errorf("after rollback the Deployment runs %s, want %s", got, good)
			}
			d, _ := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
			if d.Status.AvailableReplicas != 3 || d.Status.UpdatedReplicas != 3 {
				t.Errorf("after rollback %d available, %d updated, want 3/3", d.Status.AvailableReplicas, d.Status.UpdatedReplicas)
			}
		})
	}
}

func TestMissingNamespaceIsRefused(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	in, _ := inputs(c, "staging", app(t, "no-such-namespace", ""), repo+"@"+digest("x"))
	if _, err := rollout.Run(t.Context(), in); err == nil || !strings.Contains(err.Error(), "namespace no-such-namespace does not exist") {
		t.Fatalf("deploy into a missing namespace: %v, want a clear error", err)
	}
}

func TestFirstDeployFailureHasNothingToRollBackTo(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	in, _ := inputs(c, "staging", app(t, ns, "crashloop"), repo+"@"+digest("x"))
	out, err := rollout.Run(t.Context(), in)
	if err == nil || !strings.Contains(err.Error(), "nothing to roll back to") || out.Status != rollout.StatusFailure {
		t.Errorf("err %v, status %q", err, out.Status)
	}
}

func TestManualRollback(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	manifests := app(t, ns, "")
	for _, v := range []string{"v1", "v2", "v3"} {
		in, _ := inputs(c, "staging", manifests, repo+"@"+digest(v))
		deploy(t, in)
	}
	rb := func(to string) (rollout.Outputs, error) {
		in, _ := inputs(c, "staging", "", "")
		in.Action, in.RollbackTo, in.Deployment, in.Namespace = "rollback", to, "api", ns
		return rollout.Run(t.Context(), in)
	}
	out, err := rb("previous")
	if err != nil || currentImage(t, c, ns) != repo+"@"+digest("v2") || out.Status != rollout.StatusRolledBack || out.PreviousDigest != digest("v3") {
		t.Fatalf("rollback previous: %v, outputs %+v, image %s", err, out, currentImage(t, c, ns))
	}
	if out.Revision != "4" {
		t.Errorf("restored revision renumbered to %s, want 4", out.Revision)
	}
	if _, err := rb("revision:1"); err != nil || currentImage(t, c, ns) != repo+"@"+digest("v1") {
		t.Fatalf("rollback revision:1: %v, image %s", err, currentImage(t, c, ns))
	}
	if _, err := rb("digest:" + digest("v3")); err != nil || currentImage(t, c, ns) != repo+"@"+digest("v3") {
		t.Fatalf("rollback digest: %v, image %s", err, currentImage(t, c, ns))
	}
	_, err = rb("revision:99")
	if err == nil || !strings.Contains(err.Error(), "revision 99 is gone") || !strings.Contains(err.Error(), "Available: revision") {
		t.Errorf("rollback to a missing revision: %v, want the list of available revisions", err)
	}
}

func TestPlanChangesNothing(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	manifests := app(t, ns, "")
	old := repo + "@" + digest("old")
	in, _ := inputs(c, "staging", manifests, old)
	deploy(t, in)
	before, _ := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})

	plan, _ := inputs(c, "staging", manifests, repo+"@"+digest("new"))
	plan.Action, plan.PlanFile = "plan", filepath.Join(t.TempDir(), "plan.json")
	out := deploy(t, plan)
	after, _ := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
	if after.ResourceVersion != before.ResourceVersion || currentImage(t, c, ns) != old {
		t.Errorf("plan changed the Deployment (resourceVersion %s → %s)", before.ResourceVersion, after.ResourceVersion)
	}
	if out.Status != rollout.StatusPlanned || out.Plan == nil {
		t.Fatalf("plan outputs %+v", out)
	}
	got := map[string]string{}
	for _, it := range out.Plan.Items {
		got[it.Kind] = it.Action
		if it.Kind == "Deployment" && (len(it.Images) != 1 || it.Images[0].Before != old || it.Images[0].After != repo+"@"+digest("new")) {
			t.Errorf("plan images %+v, want %s → new", it.Images, old)
		}
	}
	if got["Deployment"] != "configure" || got["Service"] != "unchanged" {
		t.Errorf("plan actions %v, want Deployment configure and Service unchanged", got)
	}
	b, err := os.ReadFile(plan.PlanFile)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile rollout.Plan
	if err := json.Unmarshal(b, &fromFile); err != nil || len(fromFile.Items) != 2 {
		t.Errorf("plan file: %v, %s", err, b)
	}

	// A plan into an empty namespace: everything would be created.
	empty := c.Namespace(t)
	plan2, _ := inputs(c, "staging", app(t, empty, ""), repo+"@"+digest("new"))
	plan2.Action = "plan"
	out = deploy(t, plan2)
	for _, it := range out.Plan.Items {
		if it.Action != "create" {
			t.Errorf("%s in an empty namespace planned as %s", it.Kind, it.Action)
		}
	}
	if _, err := c.Clientset().AppsV1().Deployments(empty).Get(t.Context(), "api", metav1.GetOptions{}); err == nil {
		t.Errorf("plan created the Deployment")
	}
}

func TestConcurrentDeploysSerialise(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	manifests := app(t, ns, "")

	// A lease held by a live deploy: lock: fail refuses at once.
	holder, secs := "https://github.com/acme/prompt-builder/actions/runs/7", int32(5)
	now := metav1.NewMicroTime(time.Now())
	_, err := c.Clientset().CoordinationV1().Leases(ns).Create(t.Context(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: rollout.LeaseName("staging")},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, _ := inputs(c, "staging", manifests, repo+"@"+digest("1"))
	in.Lock = "fail"
	if _, err := rollout.Run(t.Context(), in); err == nil || !strings.Contains(err.Error(), "being deployed by "+holder) {
		t.Fatalf("lock: fail with a held lease: %v", err)
	}
	// lock: wait takes the lease over once its holder stopped renewing it.
	in.Lock = "wait"
	start := time.Now()
	out, err := rollout.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 3*time.Second {
		t.Errorf("took over a live lease after %v", waited)
	}
	if !strings.Contains(in.Log.(*logger).String(), "taking over the lease") || out.Status != rollout.StatusSuccess {
		t.Errorf("stale lease takeover not reported:\n%s", in.Log.(*logger))
	}

	// Two deploys at once: one waits for the other; both succeed, and
	// their applies and rollouts do not overlap.
	var wg sync.WaitGroup
	logs := make([]*logger, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, log := inputs(c, "staging", manifests, repo+"@"+digest(fmt.Sprint("par", i)))
			in.Holder = fmt.Sprint("runner-", i)
			logs[i] = log
			_, errs[i] = rollout.Run(context.Background(), in)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent deploy %d: %v\n%s", i, err, logs[i])
		}
	}
	first, second := logs[0], logs[1]
	if second.when("## Applying").Before(first.when("## Applying")) {
		first, second = second, first
	}
	if !strings.Contains(second.String(), "waiting: environment staging is being deployed by") {
		t.Errorf("the second deploy did not wait:\n%s", second)
	}
	if second.when("## Applying").Before(first.when("rolled out revision")) {
		t.Errorf("the second deploy applied at %v, before the first finished its rollout at %v", second.when("## Applying"), first.when("rolled out revision"))
	}
}

// TestDeployWaitsForALiveLeaseUpToItsTimeout: a deploy with lock: wait
// behind a holder that keeps renewing its Lease gives up when its timeout
// ends, naming the holder (its run URL), and changes nothing.
func TestDeployWaitsForALiveLeaseUpToItsTimeout(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	manifests := app(t, ns, "")
	in, _ := inputs(c, "staging", manifests, repo+"@"+digest("held-1"))
	deploy(t, in)

	// The holder: another job's deploy, alive, renewing every second.
	holder, secs := "https://github.com/acme/prompt-builder/actions/runs/99", int32(3)
	leases := c.Clientset().CoordinationV1().Leases(ns)
	now := metav1.NewMicroTime(time.Now())
	if _, err := leases.Create(t.Context(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: rollout.LeaseName("staging")},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	renew := func() error {
		l, err := leases.Get(t.Context(), rollout.LeaseName("staging"), metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime = &now
		_, err = leases.Update(t.Context(), l, metav1.UpdateOptions{})
		return err
	}
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
				renew()
			}
		}
	}()
	defer func() { close(stop); <-renewed }()

	in, log := inputs(c, "staging", manifests, repo+"@"+digest("held-2"))
	in.Timeout = 8 * time.Second
	start := time.Now()
	_, err := rollout.Run(t.Context(), in)
	waited := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "environment staging is still being deployed by "+holder) || !strings.Contains(err.Error(), "gave up waiting") {
		t.Fatalf("deploy behind a live lease: %v\n%s", err, log)
	}
	if waited < 7*time.Second || waited > 20*time.Second {
		t.Errorf("gave up after %v, want its timeout of 8s", waited)
	}
	if !strings.Contains(log.String(), "waiting: environment staging is being deployed by "+holder) {
		t.Errorf("the waiting deploy did not say who it waits for:\n%s", log)
	}
	if got := currentImage(t, c, ns); got != repo+"@"+digest("held-1") {
		t.Errorf("the deploy that gave up changed Deployment api to %s", got)
	}
}

// TestDeploysOfOtherEnvironmentsRunTogether: staging and production
// deploys at once do not wait for each other (one Lease per environment)
// and each ends on its own image.
func TestDeploysOfOtherEnvironmentsRunTogether(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	envs := []string{"staging", "production"}
	nss := []string{c.Namespace(t), c.Namespace(t)}
	logs := make([]*logger, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, log := inputs(c, envs[i], app(t, nss[i], ""), repo+"@"+digest(envs[i]))
			in.Holder = "runner-" + envs[i]
			logs[i] = log
			_, errs[i] = rollout.Run(context.Background(), in)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s deploy: %v\n%s", envs[i], err, logs[i])
		}
		if strings.Contains(logs[i].String(), "waiting: environment") {
			t.Errorf("the %s deploy waited for another environment:\n%s", envs[i], logs[i])
		}
		if got := currentImage(t, c, nss[i]); got != repo+"@"+digest(envs[i]) {
			t.Errorf("%s runs %s", envs[i], got)
		}
	}
	// Their rollouts overlapped: each applied before the other finished.
	for i := range 2 {
		if !logs[i].when("## Applying").Before(logs[1-i].when("rolled out revision")) {
			t.Errorf("the %s deploy applied at %v, after the %s deploy finished at %v: they ran one after the other",
				envs[i], logs[i].when("## Applying"), envs[1-i], logs[1-i].when("rolled out revision"))
		}
	}
}

func TestKustomizeOverlayWithDigestPinned(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	// The overlay names its namespace; this test owns it.
	// The overlay names its namespace and creates it; this test owns it.
	ns := "prompt-builder-staging"
	in, _ := inputs(c, "staging", "../../testdata/k8s/overlays/staging", repo+"@"+digest("overlay"))
	out := deploy(t, in)
	d, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "prompt-builder", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != repo+"@"+digest("overlay") {
		t.Errorf("overlay deployed image %s, want it pinned by digest", img)
	}
	if *d.Spec.Replicas != 2 || d.Status.AvailableReplicas != 2 || out.Status != rollout.StatusSuccess {
		t.Errorf("overlay: %d replicas, %d available, status %s", *d.Spec.Replicas, d.Status.AvailableReplicas, out.Status)
	}
	if _, err := c.Clientset().CoreV1().Services(ns).Get(t.Context(), "prompt-builder", metav1.GetOptions{}); err != nil {
		t.Errorf("service not applied: %v", err)
	}
}

func TestGitHubDeploymentStatuses(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var states []string
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/repos/acme/prompt-builder/deployments"):
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id": 1001, "url": "https://api.github.com/repos/acme/prompt-builder/deployments/1001", "sha": "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c", "ref": "3f1c5a7e9b2d4c6a8e0f1b3d5c7e9a1b3d5f7a9c", "environment": "staging", "task": "deploy"}`)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/deployments/1001/statuses"):
			var s struct {
				State string `json:"state"`
			}
			json.Unmarshal(body, &s)
			mu.Lock()
			states = append(states, s.State)
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id": 1, "state": "`+s.State+`"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer gh.Close()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	in, _ := inputs(c, "staging", app(t, ns, ""), repo+"@"+digest("gh"))
	in.GitHubToken, in.GitHubAPIURL = "ghs_test_token", gh.URL+"/"
	deploy(t, in)
	mu.Lock()
	got := strings.Join(states, ",")
	mu.Unlock()
	if got != "queued,in_progress,success" {
		t.Errorf("deployment statuses %s, want queued,in_progress,success", got)
	}
}
