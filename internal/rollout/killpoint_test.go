package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/progressive"
	"github.com/gantry-ci/gantry/internal/promtest"
	"github.com/gantry-ci/gantry/internal/rollout"
)

// The kill-point matrix: a runner process deploys and dies (SIGKILL, as
// a cancelled or lost runner does) at each checkpoint a deploy passes
// (rollout.checkpoint lists them); then what a person or the next job
// does — resume, abort, or the same deploy again — runs, and the
// environment must end at a known-good state: every request answered by
// the stable Service, the stable Deployment on a version that passed
// (the one before, or the new one once its steps passed), the canary at
// 0 replicas, no rollout left unfinished, the Lease free.

// dieAt runs a deploy of image in a runner process that kills itself at
// run.KillAt, and returns once it died. A runner that ends any other way
// fails the test.
func (e *bgEnv) dieAt(image string, run helperRun) string {
	t := e.t
	t.Helper()
	return dieAt(t, e.c, image, e.man, e.prom.URL, run)
}

func dieAt(t *testing.T, c *k8stest.Cluster, image, manifests, promURL string, run helperRun) string {
	t.Helper()
	run.Kubeconfig, run.Image, run.PrometheusURL = c.Kubeconfig, image, promURL
	run.Manifests = or(run.Manifests, manifests)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	output, err := runner(ctx, t, run).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the runner was to die at %s: it ended with %v\n%s", run.KillAt, err, output)
	}
	if !strings.Contains(string(output), "checkpoint "+run.KillAt+": the runner dies") {
		t.Fatalf("the runner died elsewhere than at %s:\n%s", run.KillAt, output)
	}
	return string(output)
}

// leaseHolder is who holds the environment's Lease ("" when free).
func leaseHolder(t *testing.T, c *k8stest.Cluster, ns string) string {
	t.Helper()
	l, err := c.Clientset().CoordinationV1().Leases(ns).Get(t.Context(), rollout.LeaseName("production"), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "" // released: a Lease without rollout state is deleted
	}
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// killCase is one point of the matrix: the runs that die (each at its
// KillAt), what the dead runner left recorded, what is run then, and the
// version the environment must end on ("new": the image deployed,
// "before": the stable version before the case).
type killCase struct {
	runs    []helperRun
	left    progressive.Phase
	then    string // resume, abort, deploy (the same deploy again)
	refused string // resume first, refused with this (then abort)
	ends    string // new or before
	phase   progressive.Phase
}

func (e *bgEnv) killMatrix(t *testing.T, cases []killCase) {
	const steps = "50:6s,100:4s"
	for i, tc := range cases {
		point := tc.runs[len(tc.runs)-1].KillAt
		before := strings.TrimPrefix(currentImage(t, e.c, e.ns), repo+"@")
		image := repo + "@" + digest(fmt.Sprintf("%s-%d", t.Name(), i))
		var outputs []string
		for _, run := range tc.runs {
			run.Strategy, run.Steps = "canary", steps
			if run.Action == "abort" {
				run.Namespace = e.ns
			}
			if run.SmokeExpect != "" {
				run.SmokeURL = e.v2.URL + "/api/version"
			}
			outputs = append(outputs, e.dieAt(image, run))
		}
		runners := strings.Join(outputs, "\n---\n")
		if h := leaseHolder(t, e.c, e.ns); h != helperHolder {
			t.Fatalf("%s: the dead runner's Lease is held by %q\n%s", point, h, runners)
		}
		if st := e.state(t); st.Phase != tc.left {
			t.Fatalf("%s: the dead runner left %s, want phase %s\n%s", point, st.Describe(), tc.left, runners)
		}

		var in rollout.Inputs
		var log *logger
		recover := func(action string) (rollout.Outputs, error) {
			in, log = e.inputs(image)
			in.Strategy, in.Steps, in.Action = "canary", steps, action
			if action != "deploy" {
				in.Image, in.Steps = "", ""
			}
			if action == "abort" {
				in.Manifests, in.Namespace = "", e.ns
			}
			return rollout.Run(t.Context(), in)
		}
		// The first run after the death takes the Lease over.
		var first *logger
		if tc.refused != "" {
			_, err := recover("resume")
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("%s: resume: %v, want it refused with %q\n%s", point, err, tc.refused, log)
			}
			if st := e.state(t); st.Phase != tc.left {
				t.Fatalf("%s: the refused resume changed the rollout: %s", point, st.Describe())
			}
			first = log
		}
		out, err := recover(tc.then)
		if err != nil {
			t.Fatalf("%s: %s after the runner died: %v\n%s\nthe runner:\n%s", point, tc.then, err, log, runners)
		}
		if first == nil {
			first = log
		}
		want := before
		if tc.ends == "new" {
			want = digest(fmt.Sprintf("%s-%d", t.Name(), i))
		}
		wantStatus := map[string]string{"resume": rollout.StatusSuccess, "deploy": rollout.StatusSuccess, "abort": rollout.StatusAborted}[tc.then]
		if out.Status != wantStatus {
			t.Errorf("%s: %s ended %q, want %q\n%s", point, tc.then, out.Status, wantStatus, log)
		}
		if !strings.Contains(first.String(), `taking over the lease of production for `+e.ns+`: its holder "`+helperHolder+`" stopped renewing it`) {
			t.Errorf("%s: the run after it did not take the dead runner's Lease over:\n%s", point, first)
		}
		// Known-good, as a person would check it.
		if got := currentImage(t, e.c, e.ns); got != repo+"@"+want {
			t.Errorf("%s, then %s: Deployment api runs %s, want %s\n%s", point, tc.then, got, want, log)
		}
		if w := e.routeWeights(t); w["api"] != 100 || w["api-canary"] != 0 {
			t.Errorf("%s, then %s: weights %v, want all on api\n%s", point, tc.then, w, log)
		}
		waitVersions(t, e.gw.URL, 10*time.Second, "v1")
		if spec, _ := e.replicas(t, "api-canary"); spec != 0 {
			t.Errorf("%s, then %s: canary left at %d replicas", point, tc.then, spec)
		}
		if st := e.state(t); st.Active() || st.Phase != tc.phase || st.Stable.Digest != want {
			t.Errorf("%s, then %s: state %s, want %s with stable %s", point, tc.then, st.Describe(), tc.phase, want)
		}
		if h := leaseHolder(t, e.c, e.ns); h != "" {
			t.Errorf("%s, then %s: Lease still held by %s", point, tc.then, h)
		}
	}
}

// TestKilledMidRollout: a canary rollout's runner dies before, while and
// after traffic moves to the canary.
func TestKilledMidRollout(t *testing.T) {
	t.Parallel()
	e := startBlueGreen(t, nil)
	stop := promtest.Load(t, e.gw.URL+"/api/prompts", 60)
	defer stop()
	e.killMatrix(t, []killCase{
		// Nothing recorded yet (the environment's first deploy was
		// rolling): the job run again deploys over it.
		{runs: []helperRun{{KillAt: "lease-taken"}}, left: progressive.PhaseNone, then: "deploy", ends: "new", phase: progressive.PhasePromoted},
		{runs: []helperRun{{KillAt: "rollout-recorded"}}, left: progressive.PhaseProgressing, then: "abort", ends: "before", phase: progressive.PhaseAborted},
		{runs: []helperRun{{KillAt: "canary-started"}}, left: progressive.PhaseProgressing, then: "resume", ends: "new", phase: progressive.PhasePromoted},
		{runs: []helperRun{{KillAt: "weights-set:step-1"}}, left: progressive.PhaseProgressing, then: "abort", ends: "before", phase: progressive.PhaseAborted},
		{runs: []helperRun{{KillAt: "weights-set:step-2", KillAfter: 2 * time.Second}}, left: progressive.PhaseProgressing, then: "resume", ends: "new", phase: progressive.PhasePromoted},
	})
}

// TestKilledMidPromotionOrRollback: the runner dies while the stable
// Deployment is being promoted, and while traffic goes back to stable
// (a rollback after a failed smoke test, an abort of a rollout left at
// 50 %).
func TestKilledMidPromotionOrRollback(t *testing.T) {
	t.Parallel()
	e := startBlueGreen(t, nil)
	stop := promtest.Load(t, e.gw.URL+"/api/prompts", 60)
	defer stop()
	const rollingBack = "was being rolled back when its run stopped"
	e.killMatrix(t, []killCase{
		// Stable already runs the new version, traffic still split: abort
		// must put stable back on the version before it.
		{runs: []helperRun{{KillAt: "promotion-applied"}}, left: progressive.PhaseProgressing, then: "abort", ends: "before", phase: progressive.PhaseAborted},
		{runs: []helperRun{{KillAt: "promotion-traffic"}}, left: progressive.PhaseProgressing, then: "resume", ends: "new", phase: progressive.PhasePromoted},
		// The smoke test fails (the canary answers 200, 418 is expected):
		// the rollback is recorded, then the runner dies.
		{runs: []helperRun{{KillAt: "rolling-back", SmokeExpect: "418"}}, left: progressive.PhaseRollingBack, then: "abort", refused: rollingBack, ends: "before", phase: progressive.PhaseAborted},
		// Left at 50 %, then an abort whose runner dies with traffic back
		// on stable and the canary still up.
		{runs: []helperRun{{KillAt: "weights-set:step-1"}, {Action: "abort", KillAt: "rollback-traffic"}}, left: progressive.PhaseRollingBack, then: "abort", refused: rollingBack, ends: "before", phase: progressive.PhaseAborted},
	})
}

// githubDeployments answers the GitHub Deployments API as documented,
// numbering deployments from 1, and records each one's statuses.
func githubDeployments(t *testing.T) (url string, statuses func(id int) []string) {
	var mu sync.Mutex
	got := map[int][]string{}
	next := 0
	statusPath := regexp.MustCompile(`/repos/acme/prompt-builder/deployments/(\d+)/statuses$`)
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			State       string `json:"state"`
			Description string `json:"description"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		mu.Lock()
		defer mu.Unlock()
		m := statusPath.FindStringSubmatch(r.URL.Path)
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/repos/acme/prompt-builder/deployments"):
			next++
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id": %d, "url": "https://api.github.com/repos/acme/prompt-builder/deployments/%d", "environment": "production"}`, next, next)
		case r.Method == http.MethodPost && m != nil:
			id, _ := strconv.Atoi(m[1])
			got[id] = append(got[id], body.State+": "+body.Description)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id": 1, "state": %q}`, body.State)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(gh.Close)
	return gh.URL + "/", func(id int) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got[id])
	}
}

// TestKilledMidRollingDeploy: a rolling deploy's runner dies after the
// apply, before anything waited for the rollout, of a version that
// crash-loops. Running the job again must not leave the environment on
// that version: its automatic rollback returns to the version before,
// although the Deployment already runs the new one when it starts. The
// dead run's GitHub deployment, left "in progress", is closed as an
// error by the run that takes its Lease over.
func TestKilledMidRollingDeploy(t *testing.T) {
	t.Parallel()
	c := k8stest.Start(t)
	ns := c.Namespace(t)
	ghURL, statuses := githubDeployments(t)
	good, bad := repo+"@"+digest("rolling-good"), repo+"@"+digest("rolling-bad")
	in, _ := inputs(c, "production", app(t, ns, ""), good)
	deploy(t, in)

	crashing := app(t, ns, k8stest.FaultCrashLoop)
	runner := dieAt(t, c, bad, crashing, "", helperRun{Strategy: "rolling", KillAt: "applied", GitHubAPIURL: ghURL})
	if got := currentImage(t, c, ns); got != bad {
		t.Fatalf("the dead runner's apply: Deployment api runs %s\n%s", got, runner)
	}
	if h := leaseHolder(t, c, ns); h != helperHolder {
		t.Fatalf("the dead runner's Lease is held by %q", h)
	}

	again, log := inputs(c, "production", crashing, bad)
	again.GitHubToken, again.GitHubAPIURL = "ghs_kill_matrix_token", ghURL
	out, err := rollout.Run(t.Context(), again)
	if err == nil || out.Status != rollout.StatusRolledBack {
		t.Fatalf("the deploy run again: %v, status %q, want a failure rolled back\n%s", err, out.Status, log)
	}
	for _, want := range []string{
		"taking over the lease of production",
		"GitHub deployment 1 of the run that died (" + helperHolder + ") closed as error",
		"already runs " + digest("rolling-bad") + " (revision 2, applied by an earlier run): an automatic rollback returns to revision 1",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the deploy run again: the log lacks %q\n%s", want, log)
		}
	}
	if got := currentImage(t, c, ns); got != good {
		t.Errorf("after the run again: Deployment api runs %s, want %s\n%s", got, good, log)
	}
	if out.PreviousDigest != digest("rolling-good") {
		t.Errorf("previous digest %q, want the good one", out.PreviousDigest)
	}
	if h := leaseHolder(t, c, ns); h != "" {
		t.Errorf("Lease still held by %s", h)
	}
	dead, rerun := strings.Join(statuses(1), "\n"), strings.Join(statuses(2), "\n")
	if !strings.HasPrefix(dead, "queued: ") || !strings.Contains(dead, "\nin_progress: ") ||
		!strings.HasSuffix(dead, "error: its run stopped holding the deploy lease (runner lost?); taken over by https://github.com/acme/prompt-builder/actions/runs/42") {
		t.Errorf("the dead run's GitHub deployment:\n%s", dead)
	}
	if !strings.Contains(rerun, "\nfailure: ") {
		t.Errorf("the run again's GitHub deployment:\n%s", rerun)
	}
}
