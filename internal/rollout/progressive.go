package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/manifests"
	"github.com/gantry-ci/gantry/internal/progressive"
)

// Labels Gantry puts on the canary Deployment and its pods. The canary is
// selected by these alone, so the stable Deployment and Service stay as
// the user wrote them.
const (
	LabelTrack    = "gantry.dev/track"
	LabelCanaryOf = "gantry.dev/canary-of"
	// CanarySuffix names the canary Deployment (and, by default, its
	// Service): <deployment>-canary.
	CanarySuffix = "-canary"
	managedByKey = "app.kubernetes.io/managed-by"
)

// validateProgressive checks the inputs of strategies blue-green and
// canary that need no cluster. Resume, promote and abort take the route
// and the schedule from the rollout's record: what depends on them is
// checked once it is read (fromRecord).
func (in *Inputs) validateProgressive() []error {
	if in.TrafficRouter == ArgoRollouts {
		return in.validateArgo()
	}
	var errs []error
	fresh := in.Action == "deploy" || in.Action == "plan"
	if fresh && strings.TrimSpace(in.Route) == "" {
		errs = append(errs, fmt.Errorf(`input "route" is required for strategy %s: the HTTPRoute (traffic-router gateway-api) or Ingress (ingress-nginx) that sends the environment's traffic to the stable Service`, in.Strategy))
	}
	switch in.TrafficRouter {
	case progressive.GatewayAPI, progressive.IngressNginx:
	default:
		errs = append(errs, fmt.Errorf(`input "traffic-router" is %q: use gateway-api (an HTTPRoute's weights), ingress-nginx (a canary Ingress) or argo-rollouts (an existing Argo Rollouts Rollout)`, in.TrafficRouter))
	}
	if in.Action == "abort" {
		return errs
	}
	steps, err := in.schedule()
	if err != nil {
		errs = append(errs, err)
	}
	if in.Bake < 0 {
		errs = append(errs, fmt.Errorf(`input "bake" is %v: use a duration such as 5m, or 0s for none`, in.Bake))
	}
	if _, _, err := parseSmokeExpect(in.SmokeExpect); err != nil {
		errs = append(errs, err)
	}
	if in.SmokeURL != "" && !strings.HasPrefix(in.SmokeURL, "http://") && !strings.HasPrefix(in.SmokeURL, "https://") {
		errs = append(errs, fmt.Errorf(`input "smoke-url" is %q: give an http(s) URL, e.g. http://{preview}/healthz ({preview} is the canary Service's in-cluster host:port)`, in.SmokeURL))
	}
	if strings.TrimSpace(in.PrometheusURL) == "" {
		errs = append(errs, fmt.Errorf(`input "prometheus-url" is required for strategy %s: every step is analysed against Prometheus (e.g. http://prometheus.monitoring:9090)`, in.Strategy))
	}
	if in.Interval <= 0 {
		errs = append(errs, fmt.Errorf(`input "interval" is %v: use a positive duration such as 30s`, in.Interval))
	} else if _, err := in.analysisInputs("check", time.Minute, `job="x"`, "").Config(); err != nil {
		errs = append(errs, err)
	}
	if err == nil && fresh {
		if err := in.checkTimeout(steps.Holds()+in.Bake, "the steps' holds and bake"); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// schedule is the steps input; empty, the default schedule.
func (in *Inputs) schedule() (progressive.Steps, error) {
	return progressive.ParseSteps(or(in.Steps, progressive.DefaultSteps))
}

// checkTimeout refuses a timeout shorter than total, the least time the
// analyses of what will run take (what names it).
func (in *Inputs) checkTimeout(total time.Duration, what string) error {
	if in.Timeout <= 0 || in.Timeout >= total {
		return nil
	}
	return fmt.Errorf(`input "timeout" is %v, shorter than %s (%v): raise it, e.g. timeout: %v`, in.Timeout, what, total, (total + total/2 + 10*time.Minute).Round(time.Minute))
}

// analysisInputs are gantry-analyze's inputs for one step of window
// (the step's hold): the same parsing and the same judge.
func (in *Inputs) analysisInputs(step string, window time.Duration, selNew, selStable string) analysis.Inputs {
	interval := in.Interval
	if window <= 0 {
		window = interval
	}
	interval = min(interval, window)
	return analysis.Inputs{
		PrometheusURL: in.PrometheusURL, PrometheusToken: in.PrometheusToken, PrometheusHeaders: in.PrometheusHeaders,
		PrometheusUser: in.PrometheusUser, PrometheusPass: in.PrometheusPass, PrometheusCA: in.PrometheusCA,
		SelectorNew: selNew, SelectorStable: selStable, Step: step,
		Window: window, Interval: interval, MaxHold: max(in.MaxHold, window),
		SuccessRate: in.SuccessRate, P95: in.P95, P99: in.P99, ErrorRate: in.ErrorRate, Memory: in.Memory,
		MinSamples: in.MinSamples, Confidence: in.Confidence, Margin: in.Margin, NoData: in.NoData, Preset: in.Preset, Metric: in.Metric,
	}
}

// parseSmokeExpect reads smoke-expect: "STATUS" or "STATUS TEXT", the
// status the smoke request must get and text its body must contain.
func parseSmokeExpect(s string) (int, string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return http.StatusOK, "", nil
	}
	code, text, _ := strings.Cut(s, " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 599 {
		return 0, "", fmt.Errorf(`input "smoke-expect" is %q: write the expected status, optionally followed by a space and text the body must contain, e.g. 200 or 200 "status":"ok"`, s)
	}
	return n, strings.TrimSpace(text), nil
}

// stepRecord is one analysed step, for the summary.
type stepRecord struct {
	Label   string
	Weight  int
	Hold    time.Duration
	Took    time.Duration
	Verdict analysis.State
	Reason  string
	// Errors is the error-rate check of the step's last evaluation (the
	// canary's and stable's counts), when there was one.
	Errors *analysis.Check
}

// weightEvent is a change of the split, for the chart.
type weightEvent struct {
	At     time.Time
	Canary int
}

// prog is one run of a progressive rollout.
type prog struct {
	d         *deployer
	ns        string
	stable    string // Deployment N
	canary    string // Deployment N-canary
	stableSvc string
	canarySvc string
	// obj is N as rendered from the manifests with the new image; nil for
	// an abort without manifests.
	obj      *unstructured.Unstructured
	replicas int32
	// rewrite lists the pod labels the stable Service selects on; the
	// canary's pods get them with "-canary" appended, so the stable
	// Service never sends traffic to canary pods.
	rewrite []string

	router progressive.Router
	store  *progressive.Store
	st     progressive.State
	// steps and bake are the schedule that runs: the input's for a new
	// rollout, the record's for resume (fromRecord).
	steps   progressive.Steps
	bake    time.Duration
	selNew  string
	selOld  string
	querier analysis.Querier

	// hooks are the manifests' hook Jobs by point: pre-deploy before the
	// canary starts, post-deploy once every step (and the bake) passed,
	// before promotion, on-rollback after traffic went back to stable.
	hooks map[string][]*unstructured.Unstructured

	logFile  io.Writer
	closeLog func() error
	logBuf   bytes.Buffer
	records  []stepRecord
	events   []weightEvent
	// final decision and why, for the summary.
	decision string
	out      Outputs
	// finish reports the run's end to GitHub Deployments.
	finish func(state, description string)
}

// progressive runs the actions of strategies blue-green and canary: what
// they share is here, the rest in one method per action (start, resume,
// promoteNow, abort).
func (d *deployer) progressive(ctx context.Context) (Outputs, error) {
	p := &prog{d: d, out: Outputs{DeploymentURL: d.in.EnvironmentURL}, logFile: io.Discard, closeLog: func() error { return nil }}
	defer func() { p.closeLog() }()
	log := d.log

	if err := d.admit(ctx, &p.out, d.in.Action == "deploy" || d.in.Image != "", d.in.Action == "deploy"); err != nil {
		return p.out, err
	}
	var objs []*unstructured.Unstructured
	if d.in.Manifests != "" || d.in.Chart != "" {
		var err error
		if objs, err = p.renderTarget(ctx); err != nil {
			return p.out, err
		}
	} else {
		p.ns = d.in.Namespace
	}

	// A first deploy has no stable version to move traffic from.
	if d.in.Action == "deploy" {
		_, err := d.c.typed.AppsV1().Deployments(p.ns).Get(ctx, p.stable, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			log.Warningf("Deployment %s/%s does not exist yet: first deploy, nothing to shift traffic from; deploying it directly (rolling). Later deploys are %s.", p.ns, p.stable, d.in.Strategy)
			return d.deploy(ctx)
		}
	}

	p.finish = d.track(ctx)
	if _, err := d.c.typed.CoreV1().Namespaces().Get(ctx, p.ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return p.fail(fmt.Errorf("namespace %s does not exist: create it, or add a Namespace object to the manifests", p.ns))
	}
	end := log.Group(fmt.Sprintf("Taking the deploy lease for %s in %s", d.in.Environment, p.ns))
	lk, err := d.lease(ctx, p.ns)
	end()
	if err != nil {
		return p.fail(err)
	}
	defer lk.release()
	checkpoint("lease-taken")

	if p.store, err = progressive.NewStore(d.c.typed, p.ns, d.in.Environment); err != nil {
		return p.fail(err)
	}
	if p.st, err = p.store.Load(ctx); err != nil {
		return p.fail(err)
	}
	log.Infof("rollout state of %s: %s", d.in.Environment, p.st.Describe())

	switch d.in.Action {
	case "deploy":
		return p.start(ctx, objs)
	case "resume":
		return p.resume(ctx)
	case "promote":
		return p.promoteNow(ctx)
	case "abort":
		return p.abort(ctx)
	}
	return p.fail(fmt.Errorf(`input "action" is %q: strategy %s takes deploy, resume, promote or abort`, d.in.Action, d.in.Strategy))
}

// start is action deploy: a new rollout, recorded before anything moves,
// from the first step of the steps input.
func (p *prog) start(ctx context.Context, objs []*unstructured.Unstructured) (Outputs, error) {
	d, log := p.d, p.d.log
	if p.st.Active() {
		next := "use action resume to continue it, abort to send all traffic back to stable, or promote to finish it now"
		if p.st.Phase == progressive.PhaseRollingBack {
			next = "it was being rolled back when its run stopped: use action abort to finish that"
		}
		return p.fail(fmt.Errorf("environment %s has an unfinished %s rollout (Lease %s): %s; %s",
			d.in.Environment, d.in.Strategy, p.store.Lease(), p.st.Describe(), next))
	}
	route := progressive.Config{
		Router: d.in.TrafficRouter, Namespace: p.ns, Route: d.in.Route,
		Stable: or(d.in.StableService, p.stable), Canary: or(d.in.CanaryService, p.canary),
	}
	if err := p.useRoute(ctx, route); err != nil {
		return p.fail(err)
	}
	live, err := p.stableNow(ctx)
	if err != nil {
		return p.fail(err)
	}
	if p.out.PreviousDigest == d.digest.DigestStr() {
		p.decision = fmt.Sprintf("Deployment %s/%s already runs %s: nothing to roll out", p.ns, p.stable, d.digest.DigestStr())
		log.Infof("%s", p.decision)
		return p.done(StatusSuccess, "success", p.decision)
	}
	if err := p.prepareAnalysis(ctx); err != nil {
		return p.fail(err)
	}
	if p.steps, err = d.in.schedule(); err != nil {
		return p.fail(err)
	}
	p.bake = d.in.Bake
	if err := d.runHooks(ctx, HookPreDeploy, p.hooks[HookPreDeploy]); err != nil {
		return p.fail(fmt.Errorf("%s rollout of %s stopped before anything changed: %w", d.in.Strategy, d.digest, err))
	}
	// A new rollout over the last one's record: derived from the state
	// loaded, so that Save sees no other run wrote meanwhile. What resume,
	// promote and abort take from it is settled in fromRecord.
	st := p.st
	bake := p.bake
	st.Phase, st.Step, st.Steps, st.Bake = progressive.PhaseProgressing, 0, p.steps, &bake
	st.StableWeight, st.CanaryWeight = 100, 0
	st.Stable = progressive.Workload{Name: p.stable, Digest: p.out.PreviousDigest}
	st.Canary = progressive.Workload{Name: p.canary, Digest: d.digest.DigestStr()}
	st.RollbackTarget = rollbackTarget(p.stable, p.out.PreviousDigest, revisionOf(live))
	st.Router, st.Route, st.Analysis = p.router.Describe(), route, d.in.analysisRecord()
	st.RunURL, st.Reason, st.Started = d.in.Git.RunURL, "", time.Time{}
	p.st = st
	if p.st, err = p.store.Save(ctx, p.st); err != nil {
		return p.fail(err)
	}
	checkpoint("rollout-recorded")
	// Everything but the stable Deployment: Services, config, the
	// canary reads them. N itself changes at promotion.
	end := func() {}
	if len(objs) > 1 {
		end = log.Group(fmt.Sprintf("Applying %d objects besides Deployment %s (server-side apply)", len(objs)-1, p.stable))
	}
	for _, o := range objs {
		if o == p.obj {
			continue
		}
		if _, err := d.c.apply(ctx, o, false); err != nil {
			end()
			return p.fail(err)
		}
		log.Infof("applied %s %s", o.GetKind(), key(o))
	}
	end()

	if err := p.startCanary(ctx, 0); err != nil {
		return p.fail(p.failBack(ctx, err))
	}
	checkpoint("canary-started")
	if err := p.smoke(ctx); err != nil {
		return p.fail(p.failBack(ctx, err))
	}
	return p.runSteps(ctx, 0)
}

// reenter is what resume and promote do first: take the recorded rollout
// over, read stable as it is now, and set up its analysis.
func (p *prog) reenter(ctx context.Context) error {
	if err := p.takeOver(ctx); err != nil {
		return err
	}
	if _, err := p.stableNow(ctx); err != nil {
		return err
	}
	return p.prepareAnalysis(ctx)
}

// resume is action resume: the rollout in progress goes on from its
// recorded step with its recorded schedule, that step analysed again
// from the start.
func (p *prog) resume(ctx context.Context) (Outputs, error) {
	if err := p.reenter(ctx); err != nil {
		return p.fail(err)
	}
	first := p.st.Step
	if err := p.startCanary(ctx, first); err != nil {
		return p.fail(p.failBack(ctx, err))
	}
	p.d.log.Infof("resuming at step %d of %d (%d%%)", first+1, len(p.steps), p.steps[first].Weight)
	return p.runSteps(ctx, first)
}

// promoteNow is action promote: the remaining steps are skipped on the
// operator's word.
func (p *prog) promoteNow(ctx context.Context) (Outputs, error) {
	if err := p.reenter(ctx); err != nil {
		return p.fail(err)
	}
	p.d.log.Infof("action promote: skipping the remaining steps (%s) on the operator's word", p.st.Describe())
	if err := p.promote(ctx); err != nil {
		return p.fail(err)
	}
	p.decision = "promoted by action promote (remaining steps skipped)"
	return p.done(StatusSuccess, "success", "promoted "+p.d.digest.String())
}

// abort is action abort: all traffic back to stable, the canary to 0.
func (p *prog) abort(ctx context.Context) (Outputs, error) {
	if err := p.takeOver(ctx); err != nil {
		return p.fail(err)
	}
	reason := "aborted by action abort"
	if p.d.in.Git.RunURL != "" {
		reason += " (" + p.d.in.Git.RunURL + ")"
	}
	if err := p.backToStable(ctx, progressive.PhaseAborted, reason); err != nil {
		return p.fail(err)
	}
	p.out.PreviousDigest, p.out.Digest = p.st.Canary.Digest, p.st.Stable.Digest
	p.decision = reason
	return p.done(StatusAborted, "inactive", reason)
}

// takeOver is how resume, promote and abort begin: a rollout must be in
// progress; what it recorded settles the workloads, route and schedule
// (fromRecord); resume and promote settle the image, and the route is
// checked.
func (p *prog) takeOver(ctx context.Context) error {
	d := p.d
	if !p.st.Active() {
		return fmt.Errorf("action %s: environment %s has no rollout in progress (Lease %s: %s); nothing to %s",
			d.in.Action, d.in.Environment, p.store.Lease(), p.st.Describe(), d.in.Action)
	}
	if p.st.Phase == progressive.PhaseRollingBack && d.in.Action != "abort" {
		return fmt.Errorf("action %s: the rollout of environment %s was being rolled back when its run stopped (Lease %s: %s): run action abort to finish sending all traffic to stable; %s would send traffic to the canary it was taken from",
			d.in.Action, d.in.Environment, p.store.Lease(), p.st.Describe(), d.in.Action)
	}
	route, err := p.fromRecord()
	if err != nil {
		return err
	}
	if d.in.Action != "abort" {
		if err := p.resumeImage(ctx); err != nil {
			return err
		}
		p.out.Digest = d.digest.DigestStr()
	}
	p.st.RunURL = d.in.Git.RunURL
	if err := p.useRoute(ctx, route); err != nil {
		return err
	}
	what := fmt.Sprintf("%s of the rollout in progress: Deployment %s, %s with Services %s and %s", d.in.Action, p.stable, p.router.Describe(), p.stableSvc, p.canarySvc)
	if len(p.steps) > 0 {
		what += fmt.Sprintf(", steps %s, bake %v", p.steps, p.bake)
	}
	d.log.Infof("%s, as recorded on Lease %s", what, p.store.Lease())
	return nil
}

// useRoute builds the router of route and checks the route.
func (p *prog) useRoute(ctx context.Context, route progressive.Config) error {
	p.stableSvc, p.canarySvc = route.Stable, route.Canary
	r, err := progressive.New(p.d.c.dynamic, route)
	if err != nil {
		return err
	}
	p.router = r
	return r.Check(ctx)
}

// stableNow reads the stable Deployment as it runs now: its size, and
// its digest as the previous one.
func (p *prog) stableNow(ctx context.Context) (*appsv1.Deployment, error) {
	live, err := p.d.c.typed.AppsV1().Deployments(p.ns).Get(ctx, p.stable, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the stable Deployment %s/%s: %w", p.ns, p.stable, err)
	}
	p.replicas = 1
	if live.Spec.Replicas != nil {
		p.replicas = *live.Spec.Replicas
	}
	p.out.PreviousDigest = digestOf(live.Spec.Template, p.d.digest.Context().String())
	return live, nil
}

// prepareAnalysis finds the labels the canary's pods must not carry,
// the selectors, and opens the decision log.
func (p *prog) prepareAnalysis(ctx context.Context) error {
	if err := p.labelRewrites(ctx); err != nil {
		return err
	}
	p.selNew = or(p.d.in.SelectorNew, podSelector(p.ns, p.canary))
	p.selOld = or(p.d.in.SelectorStable, podSelector(p.ns, p.stable))
	return p.openLog(&p.out)
}

// startCanary puts the canary at step's size, ready, behind its Service.
func (p *prog) startCanary(ctx context.Context, step int) error {
	if err := p.ensureCanaryService(ctx); err != nil {
		return err
	}
	return p.scaleCanary(ctx, p.canaryReplicas(p.steps[step].Weight))
}

// runSteps analyses the steps from first on, then the bake, and
// promotes: the part deploy and resume share.
func (p *prog) runSteps(ctx context.Context, first int) (Outputs, error) {
	d := p.d
	var err error
	if p.querier, err = p.newQuerier(); err != nil {
		return p.fail(p.failBack(ctx, err))
	}
	for i := first; i < len(p.steps); i++ {
		step := p.steps[i]
		if i > first && d.in.Strategy == "canary" {
			if err := p.scaleCanary(ctx, p.canaryReplicas(step.Weight)); err != nil {
				return p.fail(p.failBack(ctx, err))
			}
		}
		if err := p.setWeights(ctx, i, 100-step.Weight, step.Weight); err != nil {
			return p.fail(p.failBack(ctx, err))
		}
		checkpoint(fmt.Sprintf("weights-set:step-%d", i+1)) // step i+1's analysis follows
		label := fmt.Sprintf("step %d: %d%%", i+1, step.Weight)
		res, err := p.analyse(ctx, label, step.Weight, step.Hold)
		if err != nil {
			return p.fail(p.interrupted(ctx, err))
		}
		if res.Verdict != analysis.Pass {
			return p.verdictStops(ctx, label, res)
		}
	}
	if p.bake > 0 {
		res, err := p.analyse(ctx, "bake: 100%", 100, p.bake)
		if err != nil {
			return p.fail(p.interrupted(ctx, err))
		}
		if res.Verdict != analysis.Pass {
			return p.verdictStops(ctx, "bake", res)
		}
	}
	// The new version serves its full share now: the post-deploy hooks
	// (a smoke test) judge it before it becomes stable.
	if err := d.runHooks(ctx, HookPostDeploy, p.hooks[HookPostDeploy]); err != nil {
		return p.fail(p.failBack(ctx, err))
	}
	if err := p.promote(ctx); err != nil {
		return p.fail(err)
	}
	p.decision = fmt.Sprintf("promoted: every step passed (%s)", p.steps)
	return p.done(StatusSuccess, "success", "promoted "+d.digest.String())
}

// fail ends the run with err: the GitHub Deployment fails, the summary
// says why.
func (p *prog) fail(err error) (Outputs, error) {
	if p.out.Status == "" {
		p.out.Status = StatusFailure
	}
	p.finish("failure", err.Error())
	p.out.Summary = p.summary(p.out, err)
	return p.out, err
}

// done ends the run in status, the GitHub Deployment in state with
// description.
func (p *prog) done(status, state, description string) (Outputs, error) {
	p.out.Status = status
	p.finish(state, description)
	p.out.Summary = p.summary(p.out, nil)
	return p.out, nil
}

// verdictStops ends the rollout on a verdict other than pass: no-data
// under no-data: pause holds where it is; anything else rolls back.
func (p *prog) verdictStops(ctx context.Context, label string, res analysis.Result) (Outputs, error) {
	reason := fmt.Sprintf("%s: %s: %s", label, res.Verdict, res.Reason)
	if res.Verdict == analysis.NoData {
		p.st.Phase, p.st.Reason = progressive.PhasePaused, truncate(reason, 1000)
		st, err := p.store.Save(context.WithoutCancel(ctx), p.st)
		if err != nil {
			return p.fail(err)
		}
		p.st = st
		p.out.Status = StatusPaused
		p.decision = "paused: " + reason
		return p.fail(fmt.Errorf("rollout paused at %s with no data (no-data: pause); traffic stays %d/%d stable/canary: run action resume to analyse again, promote, or abort", label, p.st.StableWeight, p.st.CanaryWeight))
	}
	return p.fail(p.failBack(ctx, errors.New(reason)))
}

// renderTarget renders the manifests and picks the Deployment to roll out.
func (p *prog) renderTarget(ctx context.Context) ([]*unstructured.Unstructured, error) {
	d := p.d
	objs, _, err := d.render(ctx)
	if err != nil {
		return nil, err
	}
	if objs, p.hooks, err = splitHooks(objs); err != nil {
		return nil, err
	}
	var deps []*unstructured.Unstructured
	for _, o := range manifests.Workloads(objs) {
		if o.GetKind() == "Deployment" && (d.in.Deployment == "" || o.GetName() == d.in.Deployment) {
			deps = append(deps, o)
		}
	}
	switch {
	case len(deps) == 0 && d.in.Deployment != "":
		return nil, fmt.Errorf(`input "deployment": %s has no Deployment named %s`, d.in.Manifests, d.in.Deployment)
	case len(deps) == 0:
		return nil, fmt.Errorf("%s has no Deployment to roll out", d.in.source())
	case len(deps) > 1:
		var names []string
		for _, o := range deps {
			names = append(names, o.GetName())
		}
		return nil, fmt.Errorf(`input "deployment": %s has %d Deployments (%s); strategy %s rolls out one: name it in "deployment"`, d.in.Manifests, len(deps), strings.Join(names, ", "), d.in.Strategy)
	}
	p.obj = deps[0]
	p.ns, p.stable = p.obj.GetNamespace(), p.obj.GetName()
	p.canary = p.stable + CanarySuffix
	if errs := validation.IsDNS1123Label(p.canary); len(errs) > 0 || len(p.stable) > validation.LabelValueMaxLength {
		return nil, fmt.Errorf(`Deployment %s: its canary would be named %s, which is not a valid name (%s): use a Deployment name of at most 56 characters`, p.stable, p.canary, strings.Join(errs, "; "))
	}
	if d.digest.String() != "" {
		ann := p.obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationDigest] = d.digest.DigestStr()
		ann[AnnotationEnv] = d.in.Environment
		if d.in.Git.SHA != "" {
			ann[AnnotationRevision] = d.in.Git.CommitSHA()
		}
		if d.in.Git.RunURL != "" {
			ann[AnnotationRunURL] = d.in.Git.RunURL
		}
		p.obj.SetAnnotations(ann)
	}
	return objs, nil
}

// resumeImage settles the image of a resume or promote: the input, which
// must be the rollout's, or the image the canary runs.
func (p *prog) resumeImage(ctx context.Context) error {
	d := p.d
	want := p.st.Canary.Digest
	if d.digest.String() != "" {
		if want != "" && d.digest.DigestStr() != want {
			return fmt.Errorf(`input "image": the rollout in progress deploys %s, not %s: leave "image" empty (or give that digest) to %s it, or abort it and deploy the new image`, want, d.digest.DigestStr(), d.in.Action)
		}
	} else {
		dep, err := d.c.typed.AppsV1().Deployments(p.ns).Get(ctx, p.canary, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading the canary Deployment %s/%s for its image (or set input \"image\"): %w", p.ns, p.canary, err)
		}
		for _, c := range dep.Spec.Template.Spec.Containers {
			if strings.HasSuffix(c.Image, "@"+want) {
				d.in.Image = c.Image
				break
			}
		}
		if d.in.Image == "" {
			return fmt.Errorf(`the canary Deployment %s/%s runs no image with digest %s: set input "image" to the rollout's image by digest`, p.ns, p.canary, want)
		}
		if err := d.resolveImage(ctx); err != nil {
			return err
		}
	}
	// Render again with the image pinned: N is updated from it at
	// promotion, and the canary rebuilt from it.
	if _, err := p.renderTarget(ctx); err != nil {
		return err
	}
	return nil
}

func or(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return strings.TrimSpace(a)
	}
	return b
}

// podSelector is the default PromQL selector of a Deployment's pods:
// Prometheus' Kubernetes discovery labels series with namespace and pod,
// and a Deployment's pods are named <name>-<template hash>-<suffix>.
// The pattern of N does not match N-canary's pods (PromQL regexes are
// anchored).
func podSelector(ns, deployment string) string {
	return fmt.Sprintf(`namespace=%q,pod=~%q`, ns, regexp.QuoteMeta(deployment)+"-[a-z0-9]+-[a-z0-9]+")
}

func rollbackTarget(name, digest string, revision int64) string {
	s := fmt.Sprintf("Deployment %s revision %d", name, revision)
	if digest != "" {
		s += " (" + digest + ")"
	}
	return s
}

// labelRewrites finds the pod labels the stable Service selects on.
func (p *prog) labelRewrites(ctx context.Context) error {
	svc, err := p.d.c.typed.CoreV1().Services(p.ns).Get(ctx, p.stableSvc, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the stable Service %s/%s: %w (set input \"stable-service\" to the Service the route sends traffic to)", p.ns, p.stableSvc, err)
	}
	p.rewrite = nil
	for k := range svc.Spec.Selector {
		p.rewrite = append(p.rewrite, k)
	}
	return nil
}

// canaryLabels are the labels that select the canary's pods.
func (p *prog) canaryLabels() map[string]string {
	return map[string]string{LabelTrack: "canary", LabelCanaryOf: p.stable}
}

// canaryObject is N as rendered, renamed N-canary, selecting its pods by
// the canary labels, at replicas.
func (p *prog) canaryObject(replicas int32) (*unstructured.Unstructured, error) {
	o := p.obj.DeepCopy()
	o.SetName(p.canary)
	labels := o.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	sel := map[string]any{}
	for k, v := range p.canaryLabels() {
		labels[k] = v
		sel[k] = v
	}
	o.SetLabels(labels)
	if err := unstructured.SetNestedField(o.Object, map[string]any{"matchLabels": sel}, "spec", "selector"); err != nil {
		return nil, err
	}
	tl, _, err := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
	if err != nil {
		return nil, fmt.Errorf("Deployment %s: pod template labels: %w", p.stable, err)
	}
	if tl == nil {
		tl = map[string]string{}
	}
	for _, k := range p.rewrite {
		if v, ok := tl[k]; ok {
			nv := v + CanarySuffix
			if len(nv) > validation.LabelValueMaxLength {
				nv = nv[len(nv)-validation.LabelValueMaxLength:]
			}
			tl[k] = strings.TrimLeft(nv, "-_.")
		}
	}
	for k, v := range p.canaryLabels() {
		tl[k] = v
	}
	if err := unstructured.SetNestedStringMap(o.Object, tl, "spec", "template", "metadata", "labels"); err != nil {
		return nil, err
	}
	if err := unstructured.SetNestedField(o.Object, int64(replicas), "spec", "replicas"); err != nil {
		return nil, err
	}
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann["gantry.dev/canary-of"] = p.stable
	o.SetAnnotations(ann)
	return o, nil
}

// canaryReplicas is the canary's size at a weight: blue-green runs green
// at full size from the start, canary in proportion to its traffic.
func (p *prog) canaryReplicas(weight int) int32 {
	if p.d.in.Strategy == "blue-green" {
		return p.replicas
	}
	n := (int64(p.replicas)*int64(weight) + 99) / 100
	return int32(max(n, 1))
}

// scaleCanary applies the canary Deployment at replicas and waits until
// it is ready, failing fast like a rolling deploy.
func (p *prog) scaleCanary(ctx context.Context, replicas int32) error {
	o, err := p.canaryObject(replicas)
	if err != nil {
		return err
	}
	end := p.d.log.Group(fmt.Sprintf("Canary Deployment %s/%s at %d replicas", p.ns, p.canary, replicas))
	defer end()
	if _, err := p.d.c.apply(ctx, o, false); err != nil {
		return err
	}
	if _, err := p.d.c.waitRollout(ctx, p.d.log, p.ns, p.canary, p.d.in.Poll); err != nil {
		return fmt.Errorf("canary Deployment %s/%s did not become ready: %w", p.ns, p.canary, err)
	}
	return nil
}

// scaleCanaryDown scales the canary to 0, keeping it for an instant
// rollback or a later deploy.
func (p *prog) scaleCanaryDown(ctx context.Context) error {
	_, err := p.d.c.typed.AppsV1().Deployments(p.ns).Patch(ctx, p.canary, types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("scaling the canary Deployment %s/%s to 0: %w", p.ns, p.canary, err)
	}
	p.d.log.Infof("canary Deployment %s/%s scaled to 0", p.ns, p.canary)
	return nil
}

// ensureCanaryService creates the canary Service, a copy of the stable
// Service's ports selecting the canary pods. A Service of that name that
// Gantry did not create is the user's, and used as it is.
func (p *prog) ensureCanaryService(ctx context.Context) error {
	svcs := p.d.c.typed.CoreV1().Services(p.ns)
	cur, err := svcs.Get(ctx, p.canarySvc, metav1.GetOptions{})
	if err == nil && cur.Labels[managedByKey] != FieldManager {
		p.d.log.Infof("Service %s/%s exists and is not Gantry's: used as it is (it must lead to the canary pods, labels %s=canary, %s=%s)", p.ns, p.canarySvc, LabelTrack, LabelCanaryOf, p.stable)
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading Service %s/%s: %w", p.ns, p.canarySvc, err)
	}
	stable, err := svcs.Get(ctx, p.stableSvc, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the stable Service %s/%s: %w", p.ns, p.stableSvc, err)
	}
	if len(stable.Spec.Ports) == 0 {
		return fmt.Errorf("the stable Service %s/%s has no ports to copy to the canary Service %s", p.ns, p.stableSvc, p.canarySvc)
	}
	var ports []any
	for _, sp := range stable.Spec.Ports {
		port := map[string]any{"port": int64(sp.Port), "protocol": string(sp.Protocol)}
		if sp.Name != "" {
			port["name"] = sp.Name
		}
		if sp.TargetPort.String() != "" && sp.TargetPort.String() != "0" {
			if sp.TargetPort.StrVal != "" {
				port["targetPort"] = sp.TargetPort.StrVal
			} else {
				port["targetPort"] = int64(sp.TargetPort.IntVal)
			}
		}
		if sp.AppProtocol != nil {
			port["appProtocol"] = *sp.AppProtocol
		}
		ports = append(ports, port)
	}
	sel := map[string]any{}
	for k, v := range p.canaryLabels() {
		sel[k] = v
	}
	o := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{
			"name": p.canarySvc, "namespace": p.ns,
			"labels": map[string]any{managedByKey: FieldManager, LabelCanaryOf: p.stable, LabelTrack: "canary"},
		},
		"spec": map[string]any{"selector": sel, "ports": ports},
	}}
	if _, err := p.d.c.apply(ctx, o, false); err != nil {
		return err
	}
	p.d.log.Infof("applied Service %s/%s (preview of the canary)", p.ns, p.canarySvc)
	return nil
}

// smoke sends one request through the preview Service before any traffic
// moves: smoke-url with {preview} replaced by the canary Service's
// in-cluster host:port.
func (p *prog) smoke(ctx context.Context) error {
	in := p.d.in
	if in.SmokeURL == "" {
		p.d.log.Infof("no smoke-url: no smoke test before traffic moves")
		return nil
	}
	url := in.SmokeURL
	if strings.Contains(url, "{preview}") {
		svc, err := p.d.c.typed.CoreV1().Services(p.ns).Get(ctx, p.canarySvc, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("smoke test: reading Service %s/%s: %w", p.ns, p.canarySvc, err)
		}
		host := fmt.Sprintf("%s.%s.svc.cluster.local", p.canarySvc, p.ns)
		if len(svc.Spec.Ports) > 0 && svc.Spec.Ports[0].Port != 80 {
			host += ":" + strconv.Itoa(int(svc.Spec.Ports[0].Port))
		}
		url = strings.ReplaceAll(url, "{preview}", host)
	}
	code, text, _ := parseSmokeExpect(in.SmokeExpect)
	end := p.d.log.Group("Smoke test of the canary: GET " + url)
	defer end()
	client := &http.Client{Timeout: 10 * time.Second}
	var last error
	for attempt := 1; attempt <= 3; attempt++ {
		last = smokeOnce(ctx, client, url, code, text)
		if last == nil {
			p.d.log.Infof("smoke test passed: %d%s", code, map[bool]string{true: "", false: " with " + strconv.Quote(text)}[text == ""])
			return nil
		}
		p.d.log.Infof("smoke attempt %d: %v", attempt, last)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("smoke test of the canary failed before any traffic moved (smoke-url %s, smoke-expect %q): %w", url, in.SmokeExpect, last)
}

func smokeOnce(ctx context.Context, client *http.Client, url string, code int, text string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != code {
		return fmt.Errorf("got %s, want %d (body: %s)", resp.Status, code, truncate(strings.TrimSpace(string(body)), 200))
	}
	if text != "" && !strings.Contains(string(body), text) {
		return fmt.Errorf("status %d, but the body does not contain %q (body: %s)", code, text, truncate(strings.TrimSpace(string(body)), 200))
	}
	return nil
}

// setWeights moves traffic and records the step in the state.
func (p *prog) setWeights(ctx context.Context, step, stable, canary int) error {
	if err := p.router.SetWeights(ctx, stable, canary); err != nil {
		return err
	}
	p.events = append(p.events, weightEvent{At: time.Now(), Canary: canary})
	p.d.log.Infof("traffic %d/%d stable/canary via %s", stable, canary, p.router.Describe())
	p.st.Step, p.st.StableWeight, p.st.CanaryWeight = step, stable, canary
	p.st.Phase, p.st.Reason = progressive.PhaseProgressing, ""
	st, err := p.store.Save(ctx, p.st)
	if err != nil {
		return err
	}
	p.st = st
	return nil
}

func (p *prog) newQuerier() (analysis.Querier, error) {
	return p.d.in.analysisInputs("", 0, "", "").Connection().Prometheus()
}

// openLog opens the decision log for appending (a resumed rollout adds to
// the same file when it runs on the same machine).
func (p *prog) openLog(out *Outputs) error {
	if p.d.in.DecisionLog == "" {
		return nil
	}
	abs, err := filepath.Abs(p.d.in.DecisionLog)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(abs, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf(`input "decision-log": %w`, err)
	}
	// Each write is one whole JSON line: the file needs no buffering.
	p.logFile, p.closeLog, out.DecisionLog = f, f.Close, abs
	return nil
}

// analyse runs the analysis of one step over hold. An error is the
// context's: the run was cancelled or timed out.
func (p *prog) analyse(ctx context.Context, label string, weight int, hold time.Duration) (analysis.Result, error) {
	ai := p.d.in.analysisInputs(label, hold, p.selNew, p.selOld)
	rec := stepRecord{Label: label, Weight: weight, Hold: hold}
	started := time.Now()
	cfg, err := ai.Config()
	var res analysis.Result
	if err == nil {
		var e *analysis.Engine
		if e, err = analysis.New(cfg, p.querier); err == nil {
			e.Log = io.MultiWriter(p.logFile, &p.logBuf, progressLog{log: p.d.log})
			end := p.d.log.Group(fmt.Sprintf("Analysis of %s: {%s} vs {%s}, hold %v (up to %v)", label, cfg.SelectorNew, cfg.SelectorStable, cfg.Window, cfg.MaxHold))
			res, err = e.Run(ctx)
			end()
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if err != nil {
		res.Verdict, res.Reason = analysis.Error, "analysis stopped: "+err.Error()
	}
	rec.Took, rec.Verdict, rec.Reason = time.Since(started), res.Verdict, res.Reason
	if n := len(res.Evaluations); n > 0 {
		for _, c := range res.Evaluations[n-1].Checks {
			if c.Metric == "error-rate" && c.Verdict != analysis.NoData {
				rec.Errors = &c
			}
		}
	}
	p.records = append(p.records, rec)
	if res.Verdict != analysis.Pass {
		p.out.Why = label + ": " + res.Why()
	}
	p.d.log.Infof("%s: %s: %s", label, strings.ToUpper(string(res.Verdict)), res.Reason)
	return res, nil
}

// progressLog turns the decision log's overall lines into one log line per
// evaluation.
type progressLog struct{ log ghaction.Logger }

func (pl progressLog) Write(b []byte) (int, error) {
	if lines, err := analysis.ReadLog(bytes.NewReader(b)); err == nil {
		for _, l := range lines {
			switch l.Metric {
			case "overall":
				pl.log.Infof("%5.0fs %-12s %s", l.ElapsedS, l.Verdict, l.Reason)
			case "convention":
				pl.log.Infof("metrics: %s", l.Reason)
			}
		}
	}
	return len(b), nil
}

// backToStable sends all traffic to stable at once, scales the canary
// down and records phase: the rollback and the abort. It outlives a
// cancelled context.
func (p *prog) backToStable(ctx context.Context, phase progressive.Phase, reason string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	end := p.d.log.Group(fmt.Sprintf("All traffic back to stable %s: %s", p.stable, reason))
	defer end()
	// Recorded before anything moves: a runner that dies from here on
	// leaves a rollout that only abort finishes (resume would send
	// traffic to the canary this run takes it from).
	p.st.Phase, p.st.Reason = progressive.PhaseRollingBack, truncate(reason, 1000)
	if st, err := p.store.Save(ctx, p.st); err != nil {
		var conflict *progressive.ConflictError
		if errors.As(err, &conflict) {
			return err // another run owns the rollout now: change nothing
		}
		p.d.log.Warningf("recording the rollback on Lease %s: %v (going on: traffic back to stable first)", p.store.Lease(), err)
	} else {
		p.st = st
	}
	checkpoint("rolling-back")
	var errs []error
	if err := p.restoreStable(ctx, reason); err != nil {
		errs = append(errs, err)
	}
	if s, c, err := p.router.Weights(ctx); err == nil && s == 100 && c == 0 {
		// No traffic ever moved (a smoke test failed), or it is back
		// already: the route is left untouched.
		p.d.log.Infof("traffic already 100/0 stable/canary via %s", p.router.Describe())
		p.st.StableWeight, p.st.CanaryWeight = 100, 0
	} else if err := p.router.SetWeights(ctx, 100, 0); err != nil {
		errs = append(errs, err)
	} else {
		p.events = append(p.events, weightEvent{At: time.Now(), Canary: 0})
		p.d.log.Infof("traffic 100/0 stable/canary via %s", p.router.Describe())
		p.st.StableWeight, p.st.CanaryWeight = 100, 0
	}
	checkpoint("rollback-traffic")
	if err := p.scaleCanaryDown(ctx); err != nil {
		errs = append(errs, err)
	}
	p.st.Phase = phase
	if len(errs) > 0 {
		// The state keeps saying rolling back: a later abort must
		// finish the job.
		p.st.Phase = progressive.PhaseRollingBack
	}
	st, err := p.store.Save(ctx, p.st)
	if err != nil {
		errs = append(errs, err)
	} else {
		p.st = st
	}
	return errors.Join(errs...)
}

// restoreStable puts the stable Deployment back on the version the
// rollout recorded as stable when it runs the canary's instead: a
// promotion updated it and its runner died before the promotion ended.
// All traffic is about to go to stable, which must be the version that
// was in production. Otherwise it does nothing.
func (p *prog) restoreStable(ctx context.Context, reason string) error {
	want, canary := p.st.Stable.Digest, p.st.Canary.Digest
	if want == "" || canary == "" || want == canary || p.stable == "" {
		return nil
	}
	live, err := p.d.c.typed.AppsV1().Deployments(p.ns).Get(ctx, p.stable, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the stable Deployment %s/%s: %w", p.ns, p.stable, err)
	}
	if !runsDigest(live.Spec.Template, canary) || runsDigest(live.Spec.Template, want) {
		return nil
	}
	p.d.log.Warningf("the stable Deployment %s/%s runs the canary's %s: a promotion began and did not finish; restoring %s before traffic goes back to it", p.ns, p.stable, canary, want)
	if _, err := p.d.restore(ctx, p.ns, p.stable, RollbackTarget{Kind: "digest", Value: want}, "rollback: "+reason); err != nil {
		return fmt.Errorf("restoring the stable Deployment %s/%s to %s: %w", p.ns, p.stable, want, err)
	}
	return nil
}

// runsDigest reports whether a container of t runs an image by digest.
func runsDigest(t corev1.PodTemplateSpec, digest string) bool {
	for _, c := range t.Spec.Containers {
		if strings.HasSuffix(c.Image, "@"+digest) {
			return true
		}
	}
	return false
}

// failBack rolls back after cause and returns the error to report.
func (p *prog) failBack(ctx context.Context, cause error) error {
	var conflict *progressive.ConflictError
	if errors.As(cause, &conflict) {
		// Another run owns the rollout now: change nothing.
		return cause
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return p.interrupted(ctx, ctx.Err())
	}
	reason := cause.Error()
	if err := p.backToStable(ctx, progressive.PhaseRolledBack, reason); err != nil {
		p.decision = "rollback incomplete: " + err.Error()
		return fmt.Errorf("%w; rolling back failed too: %v (run action abort)", cause, err)
	}
	p.out.Status = StatusRolledBack
	p.decision = "rolled back: " + reason
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(p.d.in.Timeout, time.Minute))
	defer cancel()
	if err := p.d.runHooks(hctx, HookOnRollback, p.hooks[HookOnRollback]); err != nil {
		return fmt.Errorf("%s rollout of %s rolled back, all traffic on stable %s: %w; then %v", p.d.in.Strategy, p.d.digest, p.stable, cause, err)
	}
	return fmt.Errorf("%s rollout of %s rolled back, all traffic on stable %s: %w", p.d.in.Strategy, p.d.digest, p.stable, cause)
}

// interrupted handles a step cut short by the context: a timeout rolls
// back (fail safe); a cancelled run (the runner is going away) leaves the
// rollout where it is for resume or abort.
func (p *prog) interrupted(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return p.failBack(ctx, fmt.Errorf(`timed out at step %d (input "timeout" %v)`, p.st.Step+1, p.d.in.Timeout))
	}
	p.decision = "interrupted: " + p.st.Describe()
	return fmt.Errorf("rollout interrupted (%v) at step %d of %d, traffic %d/%d stable/canary: it is left as it is; run action resume to continue or abort to send all traffic back to stable", err, p.st.Step+1, len(p.steps), p.st.StableWeight, p.st.CanaryWeight)
}

// promote makes the new version stable: N is updated to it by a rolling
// update while the traffic is where the steps left it, then all traffic
// goes back to N and the canary is scaled to 0 (kept for next time).
func (p *prog) promote(ctx context.Context) error {
	d := p.d
	end := d.log.Group(fmt.Sprintf("Promoting %s: Deployment %s/%s to the new version", d.digest, p.ns, p.stable))
	_, err := d.c.apply(ctx, p.obj, false)
	var dep *appsv1.Deployment
	if err == nil {
		checkpoint("promotion-applied")
		dep, err = d.c.waitRollout(ctx, d.log, p.ns, p.stable, d.in.Poll)
	}
	end()
	if err != nil {
		cause := fmt.Errorf("promotion: the stable Deployment %s/%s did not roll out to %s: %w", p.ns, p.stable, d.digest.DigestStr(), err)
		if live, gerr := d.c.typed.AppsV1().Deployments(p.ns).Get(context.WithoutCancel(ctx), p.stable, metav1.GetOptions{}); gerr == nil {
			if prev := revisionOf(live) - 1; prev > 0 {
				if _, rerr := d.restore(context.WithoutCancel(ctx), p.ns, p.stable, RollbackTarget{Kind: "previous"}, "automatic rollback: "+cause.Error()); rerr != nil {
					cause = fmt.Errorf("%w; restoring its previous revision failed too: %v", cause, rerr)
				}
			}
		}
		return p.failBack(ctx, cause)
	}
	p.out.Revision = strconv.FormatInt(revisionOf(dep), 10)
	if err := p.router.SetWeights(ctx, 100, 0); err != nil {
		return err
	}
	p.events = append(p.events, weightEvent{At: time.Now(), Canary: 0})
	d.log.Infof("traffic 100/0 to %s, which runs %s", p.stable, d.digest.DigestStr())
	checkpoint("promotion-traffic")
	if err := p.scaleCanaryDown(ctx); err != nil {
		return err
	}
	prev := p.st.Stable
	p.st.Phase, p.st.Reason = progressive.PhasePromoted, "promoted "+d.digest.DigestStr()
	p.st.StableWeight, p.st.CanaryWeight = 100, 0
	p.st.Stable = progressive.Workload{Name: p.stable, Digest: d.digest.DigestStr()}
	p.st.RollbackTarget = rollbackTarget(p.stable, prev.Digest, revisionOf(dep)-1)
	st, err := p.store.Save(ctx, p.st)
	if err != nil {
		return err
	}
	p.st = st
	return nil
}
