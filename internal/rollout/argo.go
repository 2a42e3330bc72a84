package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/argorollouts"
	"github.com/gantry-ci/gantry/internal/manifests"
)

// ArgoRollouts is the traffic-router value that hands the rollout to an
// existing Argo Rollouts Rollout: Gantry sets its image and follows it;
// the Argo Rollouts controller moves the pods and the traffic.
const ArgoRollouts = "argo-rollouts"

// validateArgo checks the inputs of strategies blue-green and canary with
// traffic-router argo-rollouts that need no cluster.
func (in *Inputs) validateArgo() []error {
	var errs []error
	if in.Action == "plan" {
		errs = append(errs, fmt.Errorf(`action plan is not available with traffic-router %s: the Rollout's own steps are the plan (kubectl argo rollouts get rollout NAME); use action deploy, resume, promote or abort`, ArgoRollouts))
	}
	if strings.TrimSpace(in.Rollout) == "" && in.Manifests == "" {
		errs = append(errs, fmt.Errorf(`traffic-router %s needs the Rollout: set input "rollout" to its name (and "namespace"), or "manifests" to manifests that hold it`, ArgoRollouts))
	}
	if r := strings.TrimSpace(in.Rollout); r != "" {
		if msgs := validation.IsDNS1123Subdomain(r); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf(`input "rollout" is %q, not a valid Rollout name (%s): give the name of the existing Rollout`, r, strings.Join(msgs, "; ")))
		}
	}
	if in.Manifests == "" && in.Namespace == "" {
		errs = append(errs, fmt.Errorf(`traffic-router %s needs the Rollout's namespace: set input "namespace" (or "manifests" holding the Rollout)`, ArgoRollouts))
	}
	if in.Image != "" {
		if _, err := argorollouts.ParseDigestImage(in.Image); err != nil {
			errs = append(errs, fmt.Errorf(`input "image": %w (traffic-router %s sets the Rollout's image by digest only)`, err, ArgoRollouts))
		}
	}
	if in.SmokeURL != "" {
		errs = append(errs, fmt.Errorf(`input "smoke-url" is not used with traffic-router %s: remove it, and check the new version with the Rollout's own analysis (prePromotionAnalysis, an analysis step) or gantry's (prometheus-url)`, ArgoRollouts))
	}
	if in.Bake < 0 {
		errs = append(errs, fmt.Errorf(`input "bake" is %v: use a duration such as 5m, or 0s for one interval`, in.Bake))
	}
	if strings.TrimSpace(in.PrometheusURL) != "" {
		if in.Interval <= 0 {
			errs = append(errs, fmt.Errorf(`input "interval" is %v: use a positive duration such as 30s`, in.Interval))
		} else if _, err := in.analysisInputs("check", time.Minute, `job="x"`, "").Config(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// argoRun is one run of gantry-deploy on an Argo Rollouts Rollout. The
// Rollout is the record of the rollout: nothing is kept on the Lease but
// the lock, and every decision starts from the Rollout as it is.
type argoRun struct {
	p         *prog // the analysis, the decision log and the summary
	drv       *argorollouts.Driver
	ns, name  string
	container string
	// pauses maps the index of each pause step to its duration; nil is
	// a pause until promoted. autoPromote is a blue-green Rollout's
	// autoPromotionSeconds (nil: it waits to be promoted).
	pauses      map[int]*time.Duration
	autoPromote *time.Duration
	// handled are the steps Gantry has decided on in this run.
	handled  map[int]bool
	analysis bool
	last     argorollouts.Status
	// from is the step this run began following at: earlier pauses
	// were decided by earlier runs.
	from int
	// full: a full promotion is under way; every pause the Rollout still
	// shows is from before it.
	full bool
}

// argo runs actions deploy, resume, promote and abort with traffic-router
// argo-rollouts.
func (d *deployer) argo(ctx context.Context) (Outputs, error) {
	out := Outputs{DeploymentURL: d.in.EnvironmentURL}
	a := &argoRun{p: &prog{d: d, logFile: io.Discard, closeLog: func() error { return nil }}, handled: map[int]bool{}}
	defer func() { a.p.closeLog() }()
	log := d.log
	if err := d.admit(ctx, &out, d.in.Image != "", d.in.Action == "deploy"); err != nil {
		return out, err
	}
	if err := a.locate(); err != nil {
		return out, err
	}
	a.drv = argorollouts.New(d.c.dynamic, a.ns, a.name, argorollouts.WithLogger(log), argorollouts.WithPollInterval(d.in.Poll))
	if err := a.drv.Check(ctx); err != nil {
		return out, fmt.Errorf("traffic-router %s: %w", ArgoRollouts, err)
	}

	finish := d.track(ctx)
	fail := func(err error) (Outputs, error) {
		if out.Status == "" {
			out.Status = StatusFailure
		}
		finish("failure", err.Error())
		out.Summary = a.summary(out, err)
		return out, err
	}

	end := log.Group(fmt.Sprintf("Taking the deploy lease for %s in %s", d.in.Environment, a.ns))
	lk, err := d.lease(ctx, a.ns)
	end()
	if err != nil {
		return fail(err)
	}
	defer lk.release()

	st, err := a.drv.Status(ctx)
	if err != nil {
		return fail(err)
	}
	a.last = st
	log.Infof("%s: %s", a.drv, st)
	if err := a.checkStrategy(st); err != nil {
		return fail(err)
	}
	if err := a.pickContainer(st); err != nil {
		return fail(err)
	}
	if d.digest.String() == "" {
		// resume, promote and abort without "image": the image the
		// Rollout is rolling out to.
		if dg, err := name.NewDigest(st.Images[a.container]); err == nil {
			d.digest = dg
		}
	}
	out.Digest = d.digest.DigestStr()
	out.PreviousDigest = digestPart(st.Stable.Images[a.container])
	if err := a.readPauses(ctx); err != nil {
		return fail(err)
	}
	a.analysis = strings.TrimSpace(d.in.PrometheusURL) != ""
	if a.analysis {
		if err := a.p.openLog(&out); err != nil {
			return fail(err)
		}
		if a.p.querier, err = a.p.newQuerier(); err != nil {
			return fail(err)
		}
	}
	// An update is in progress when the Rollout's pod template is not
	// the stable one and the update was not aborted.
	inProgress := st.Canary.Hash != "" && !st.Aborted
	if d.in.Action == "resume" && !st.Aborted {
		a.from = st.Step
	}
	tmpl := st.Images[a.container]

	switch d.in.Action {
	case "deploy":
		want := d.digest.String()
		switch {
		case sameDigest(tmpl, want) && sameDigest(st.Stable.Images[a.container], want) && st.Canary.Hash == "":
			a.p.decision = fmt.Sprintf("%s already runs %s: nothing to roll out", a.drv, d.digest.DigestStr())
			log.Infof("%s", a.p.decision)
			out.Status = StatusSuccess
			finish("success", a.p.decision)
			out.Summary = a.summary(out, nil)
			return out, nil
		case inProgress:
			return fail(fmt.Errorf("%s has an update in progress (%s, container %s → %s): use action resume to follow it, promote to finish it now, or abort to send all traffic back to stable, then deploy", a.drv, st, a.container, tmpl))
		case st.Aborted && sameDigest(tmpl, want):
			return fail(fmt.Errorf("%s: its update to %s was aborted (%s): use action resume to retry it, or deploy another image", a.drv, d.digest.DigestStr(), st.Message))
		}
		end := log.Group(fmt.Sprintf("Setting container %s of %s to %s", a.container, a.drv, d.digest))
		// Over an aborted update the controller clears status.abort
		// itself when the pod template changes: the new image starts
		// from the first step.
		err := a.drv.SetImage(ctx, a.container, want)
		end()
		if err != nil {
			return fail(err)
		}
	case "abort":
		if !inProgress && !st.Aborted {
			return fail(fmt.Errorf("action abort: %s has no update in progress (%s; stable runs %s): nothing to abort", a.drv, st, st.Stable.Images[a.container]))
		}
		if err := a.imageIsTheRollouts(tmpl); err != nil {
			return fail(err)
		}
		end := log.Group(fmt.Sprintf("Aborting the update of %s: all traffic back to stable", a.drv))
		err := a.drv.Abort(ctx)
		if err == nil {
			a.last, err = a.drv.Wait(ctx, argorollouts.Aborted, a.remaining(ctx))
		}
		end()
		if err != nil {
			return fail(err)
		}
		reason := "aborted by action abort"
		if d.in.Git.RunURL != "" {
			reason += " (" + d.in.Git.RunURL + ")"
		}
		a.p.decision = reason + ": " + a.last.Message
		out.Status = StatusAborted
		out.PreviousDigest, out.Digest = digestPart(tmpl), digestPart(a.last.Stable.Images[a.container])
		finish("inactive", reason)
		out.Summary = a.summary(out, nil)
		return out, nil
	case "promote":
		if err := a.imageIsTheRollouts(tmpl); err != nil {
			return fail(err)
		}
		if st.Aborted {
			return fail(fmt.Errorf("action promote: %s is aborted (%s): use action resume to retry the update, or deploy", a.drv, st.Message))
		}
		if !inProgress {
			return fail(fmt.Errorf("action promote: %s has no update in progress (%s; stable runs %s): nothing to promote", a.drv, st, st.Stable.Images[a.container]))
		}
		log.Infof("action promote: skipping the remaining steps of %s on the operator's word", a.drv)
		a.p.decision = "promoted by action promote (remaining steps skipped)"
		a.full = true
		if err := a.drv.Promote(ctx, true); err != nil {
			return fail(err)
		}
	case "resume":
		if err := a.imageIsTheRollouts(tmpl); err != nil {
			return fail(err)
		}
		var err error
		switch {
		case st.Aborted:
			log.Infof("%s was aborted: retrying the update from its first step", a.drv)
			err = a.drv.Retry(ctx)
		case !inProgress:
			err = fmt.Errorf("action resume: %s has no update in progress (%s; stable runs %s): nothing to resume", a.drv, st, st.Stable.Images[a.container])
		case st.PausedByUser:
			log.Infof("%s was paused by hand: resuming it", a.drv)
			err = a.drv.Resume(ctx)
		case st.Phase == argorollouts.PhasePaused && len(st.PauseReasons) > 0:
			log.Infof("action resume at %s: promoting past it on the operator's word", a.stepLabel(st))
			a.handled[st.Step] = true
			err = a.drv.Promote(ctx, false)
		}
		if err != nil {
			return fail(err)
		}
	}

	status, err := a.follow(ctx)
	out.Status = status
	if err != nil {
		return fail(err)
	}
	finish("success", "promoted "+d.digest.String())
	out.Summary = a.summary(out, nil)
	return out, nil
}

// locate finds the Rollout: input "rollout", or the one Rollout of the
// manifests. Its namespace is the manifests', else input "namespace".
func (a *argoRun) locate() error {
	in := a.p.d.in
	a.name, a.ns = strings.TrimSpace(in.Rollout), in.Namespace
	if in.Manifests == "" {
		return nil
	}
	objs, err := manifests.Render(in.Manifests)
	if err != nil {
		return err
	}
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Rollout" && strings.HasPrefix(o.GetAPIVersion(), "argoproj.io/") && (a.name == "" || o.GetName() == a.name) {
			found = append(found, o)
		}
	}
	switch {
	case len(found) == 0 && a.name != "":
		// Named, but not in the manifests: the Rollout lives elsewhere
		// (Argo CD, another repository) and only its image is ours.
	case len(found) == 0:
		return fmt.Errorf(`input "manifests": %s has no argoproj.io Rollout: set input "rollout" to the name of the existing Rollout (and "namespace")`, in.Manifests)
	case len(found) > 1:
		var names []string
		for _, o := range found {
			names = append(names, o.GetName())
		}
		return fmt.Errorf(`input "rollout": %s has %d Rollouts (%s): name the one to roll out in "rollout"`, in.Manifests, len(found), strings.Join(names, ", "))
	default:
		a.name = found[0].GetName()
		if ns := found[0].GetNamespace(); ns != "" {
			if in.Namespace != "" && in.Namespace != ns {
				return fmt.Errorf(`input "namespace" is %s, but Rollout %s in %s names namespace %s: make them agree`, in.Namespace, a.name, in.Manifests, ns)
			}
			a.ns = ns
		}
	}
	if a.ns == "" {
		return fmt.Errorf(`Rollout %s names no namespace: set input "namespace"`, a.name)
	}
	return nil
}

// checkStrategy refuses a Rollout whose strategy is not the input's.
func (a *argoRun) checkStrategy(st argorollouts.Status) error {
	want := map[string]string{"canary": "Canary", "blue-green": "BlueGreen"}[a.p.d.in.Strategy]
	if st.Strategy != want {
		return fmt.Errorf(`input "strategy" is %s, but %s uses the %s strategy: set "strategy" to %s`, a.p.d.in.Strategy, a.drv, or(st.Strategy, "(none)"),
			map[string]string{"Canary": "canary", "BlueGreen": "blue-green"}[st.Strategy])
	}
	return nil
}

// pickContainer chooses the container whose image the deploy sets: the
// one running the image's repository. Without "image", the one whose
// image differs between the pod template and stable.
func (a *argoRun) pickContainer(st argorollouts.Status) error {
	d := a.p.d
	names := slices.Sorted(maps.Keys(st.Images))
	var match []string
	for _, c := range names {
		if d.digest.String() != "" {
			if ref, err := name.ParseReference(st.Images[c]); err == nil && ref.Context().String() == d.digest.Context().String() {
				match = append(match, c)
			}
		} else if st.Images[c] != st.Stable.Images[c] {
			match = append(match, c)
		}
	}
	switch {
	case len(match) == 1:
		a.container = match[0]
		return nil
	case d.digest.String() == "" && len(names) > 0:
		// Nothing to tell them apart (e.g. aborted back to the same
		// image): the first container, for the outputs only.
		a.container = names[0]
		return nil
	}
	var all []string
	for _, c := range names {
		all = append(all, c+"="+st.Images[c])
	}
	if len(match) == 0 {
		return fmt.Errorf(`input "image": no container of %s runs %s (its containers: %s): give a new version of one of their images`, a.drv, d.digest.Context(), strings.Join(all, ", "))
	}
	return fmt.Errorf(`input "image": containers %s of %s all run %s: gantry-deploy sets one, give a Rollout whose containers run different images`, strings.Join(match, ", "), a.drv, d.digest.Context())
}

// imageIsTheRollouts refuses an "image" that is not what the Rollout is
// rolling out, for resume, promote and abort.
func (a *argoRun) imageIsTheRollouts(tmpl string) error {
	in := a.p.d.in
	if in.Image == "" || sameDigest(tmpl, a.p.d.digest.String()) {
		return nil
	}
	return fmt.Errorf(`input "image": %s is rolling out %s, not %s: leave "image" empty (or give that image) to %s it, or deploy the new image`, a.drv, tmpl, in.Image, in.Action)
}

// readPauses reads the durations of the Rollout's pause steps (and a
// blue-green Rollout's autoPromotionSeconds), which tell a pause Gantry
// decides on from one the controller ends by itself.
func (a *argoRun) readPauses(ctx context.Context) error {
	obj, err := a.p.d.c.dynamic.Resource(argorollouts.RolloutGVR()).Namespace(a.ns).Get(ctx, a.name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading %s: %w", a.drv, err)
	}
	a.pauses = map[int]*time.Duration{}
	steps, _, _ := unstructured.NestedSlice(obj.Object, "spec", "strategy", "canary", "steps")
	for i, s := range steps {
		m, _ := s.(map[string]any)
		pause, ok := m["pause"].(map[string]any)
		if !ok {
			continue
		}
		a.pauses[i] = nil
		switch v := pause["duration"].(type) {
		case string:
			dur, err := parseArgoDuration(v)
			if err != nil {
				return fmt.Errorf("%s: step %d: pause duration %q: %w", a.drv, i+1, v, err)
			}
			a.pauses[i] = &dur
		case int64:
			dur := time.Duration(v) * time.Second
			a.pauses[i] = &dur
		case float64:
			dur := time.Duration(v) * time.Second
			a.pauses[i] = &dur
		}
	}
	if secs, ok, _ := unstructured.NestedInt64(obj.Object, "spec", "strategy", "blueGreen", "autoPromotionSeconds"); ok && secs > 0 {
		dur := time.Duration(secs) * time.Second
		a.autoPromote = &dur
	}
	return nil
}

// parseArgoDuration reads a pause duration as Argo Rollouts writes it:
// seconds as a number, or a number with a unit s, m or h.
func parseArgoDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// gate tells what holds a paused Rollout: timed is true for a pause the
// controller ends by itself after dur.
func (a *argoRun) gate(s argorollouts.Status) (timed bool, dur time.Duration) {
	if s.Strategy == "BlueGreen" {
		if a.autoPromote != nil {
			return true, *a.autoPromote
		}
		return false, 0
	}
	if p, ok := a.pauses[s.Step]; ok && p != nil && slices.Contains(s.PauseReasons, "CanaryPauseStep") {
		return true, *p
	}
	return false, 0
}

// stopAt is where following the Rollout hands back to Gantry: Healthy, a
// pause by hand, and each pause Gantry decides on: a pause until promoted
// (or an inconclusive analysis) always, a timed pause when it analyses.
func (a *argoRun) stopAt(s argorollouts.Status) bool {
	switch {
	case s.Phase == argorollouts.PhaseHealthy:
		return true
	case s.Phase != argorollouts.PhasePaused || a.full:
		return false
	case s.PausedByUser:
		return true
	case len(s.PauseReasons) == 0 || a.handled[s.Step]:
		return false
	}
	timed, _ := a.gate(s)
	return !timed || a.analysis
}

// unanalysed lists the timed pause steps this run did not analyse.
func (a *argoRun) unanalysed(st argorollouts.Status) []string {
	var missed []string
	for _, s := range st.Steps() {
		if p, ok := a.pauses[s.Index]; ok && p != nil && s.Index >= a.from && !a.handled[s.Index] {
			missed = append(missed, fmt.Sprintf("step %d (%s)", s.Index+1, s.Text))
		}
	}
	return missed
}

// remaining is what is left of the run's timeout, for Wait.
func (a *argoRun) remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		// A little beyond the deadline, so that the run's context, not
		// Wait's own, ends first and says why.
		return max(time.Until(dl), 0) + 5*time.Second
	}
	return 24 * time.Hour
}

// follow follows the Rollout until it is Healthy with the new image, and
// decides at each pause it stops at. It returns the status the run ends
// in.
func (a *argoRun) follow(ctx context.Context) (string, error) {
	d := a.p.d
	log := d.log
	end := log.Group(fmt.Sprintf("Following %s (the Argo Rollouts controller runs the steps)", a.drv))
	defer end()
	for {
		st, err := a.drv.Wait(ctx, a.stopAt, a.remaining(ctx))
		if st.Name != "" {
			a.last = st
		}
		if err != nil {
			return a.followFailed(ctx, err)
		}
		if st.Phase == argorollouts.PhaseHealthy {
			if got := st.Stable.Images[a.container]; !sameDigest(got, d.digest.String()) {
				return StatusFailure, fmt.Errorf("%s is Healthy, but its stable container %s runs %s, not %s: someone changed the Rollout meanwhile", a.drv, a.container, got, d.digest)
			}
			if a.p.decision == "" {
				a.p.decision = fmt.Sprintf("%s Healthy: %s is stable", a.drv, d.digest.DigestStr())
			}
			if missed := a.unanalysed(st); a.analysis && !a.full && len(missed) > 0 {
				log.Warningf("%s: timed pause(s) %s ended before gantry-deploy saw them (it polls every %v): not analysed", a.drv, strings.Join(missed, ", "), d.in.Poll)
				a.p.decision += "; not analysed: " + strings.Join(missed, ", ")
			}
			log.Infof("%s", a.p.decision)
			return StatusSuccess, nil
		}
		a.report(st)
		if st.PausedByUser {
			a.p.decision = fmt.Sprintf("paused by hand at %s", a.stepLabel(st))
			return StatusPaused, fmt.Errorf("%s was paused by hand (spec.paused) at %s: it is left as it is; run action resume to continue, promote to finish it or abort", a.drv, a.stepLabel(st))
		}
		timed, dur := a.gate(st)
		if !a.analysis {
			// A pause until promoted is a person's decision when no
			// analysis is configured: Gantry stops there.
			a.p.decision = fmt.Sprintf("paused at %s for a person to decide (no prometheus-url)", a.stepLabel(st))
			return StatusPaused, fmt.Errorf("%s is paused at %s (%s), canary weight %d%%: it waits for a person; run action resume to promote past this pause and follow the rest, promote to finish it now, or abort", a.drv, a.stepLabel(st), strings.Join(st.PauseReasons, ", "), st.SetWeight)
		}
		// bake is the least time a pause is analysed for; a longer timed
		// pause is analysed for all of it.
		window := max(d.in.Bake, d.in.Interval)
		if timed {
			window = max(dur, d.in.Bake)
		}
		if status, err := a.analyse(ctx, st, timed, window); err != nil {
			return status, err
		}
	}
}

// analyse runs gantry's analysis at a pause and acts on the verdict:
// pass promotes past a pause until promoted (a timed pause ends by
// itself), no-data under no-data: pause holds the Rollout, anything else
// aborts it.
func (a *argoRun) analyse(ctx context.Context, st argorollouts.Status, timed bool, window time.Duration) (string, error) {
	d := a.p.d
	a.handled[st.Step] = true
	a.p.selNew = or(d.in.SelectorNew, rsPodSelector(a.ns, a.name, st.Canary.Hash))
	a.p.selOld = or(d.in.SelectorStable, rsPodSelector(a.ns, a.name, st.Stable.Hash))
	label := a.stepLabel(st)
	res, err := a.p.analyse(ctx, label, int(st.SetWeight), window)
	if err != nil {
		return a.followFailed(ctx, err)
	}
	switch {
	case res.Verdict == analysis.Pass && timed:
		return "", nil
	case res.Verdict == analysis.Pass:
		return "", a.drv.Promote(ctx, false)
	case res.Verdict == analysis.NoData:
		if timed {
			if err := a.drv.Pause(ctx); err != nil {
				return StatusFailure, err
			}
		}
		a.p.decision = fmt.Sprintf("paused: %s: %s: %s", label, res.Verdict, res.Reason)
		return StatusPaused, fmt.Errorf("%s paused at %s with no data (no-data: pause), canary weight %d%%: run action resume to continue, promote, or abort", a.drv, label, st.SetWeight)
	}
	return a.abortBack(ctx, fmt.Sprintf("%s: %s: %s", label, res.Verdict, res.Reason))
}

// followFailed turns an error while following into the run's end: a
// Degraded Rollout (Argo Rollouts has sent the traffic back to stable)
// and a timeout (Gantry aborts: fail safe) are rollbacks; a cancelled run
// leaves the Rollout as it is.
func (a *argoRun) followFailed(ctx context.Context, err error) (string, error) {
	var degraded *argorollouts.DegradedError
	switch {
	case errors.As(err, &degraded):
		a.last = degraded.Status
		if !degraded.Status.Aborted {
			// Degraded but not aborted (its progress deadline, say):
			// abort so that the traffic goes back to stable.
			return a.abortBack(ctx, "Degraded: "+degraded.Message)
		}
		a.p.decision = "rolled back by Argo Rollouts: " + degraded.Message
		return StatusRolledBack, fmt.Errorf("%s rollout of %s rolled back: %s is Degraded (%s); Argo Rollouts sent all traffic back to stable %s", a.p.d.in.Strategy, a.p.d.digest, a.drv, degraded.Message, a.last.Stable.Images[a.container])
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return a.abortBack(ctx, fmt.Sprintf(`timed out at %s (input "timeout" %v)`, a.stepLabel(a.last), a.p.d.in.Timeout))
	case errors.Is(ctx.Err(), context.Canceled):
		a.p.decision = "interrupted at " + a.stepLabel(a.last)
		return StatusFailure, fmt.Errorf("following %s interrupted (%v) at %s: the Rollout is left as it is; run action resume to follow it again or abort", a.drv, ctx.Err(), a.stepLabel(a.last))
	}
	return StatusFailure, err
}

// abortBack aborts the update (the controller sends all traffic to stable
// and scales the canary down) and waits until it has. It outlives a
// cancelled context.
func (a *argoRun) abortBack(ctx context.Context, reason string) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	end := a.p.d.log.Group(fmt.Sprintf("Aborting %s: %s", a.drv, reason))
	defer end()
	if st, err := a.drv.Status(ctx); err == nil && st.Phase == argorollouts.PhaseHealthy && sameDigest(st.Stable.Images[a.container], a.p.d.digest.String()) {
		// A timed pause ended while Gantry was still analysing it, and
		// the controller finished the rollout: nothing left to abort.
		a.last = st
		a.p.decision = "failed after the Rollout finished: " + reason
		return StatusFailure, fmt.Errorf("%s; but %s finished its steps meanwhile and runs %s as stable: deploy the previous image (output previous-digest) to roll back", reason, a.drv, a.p.d.digest)
	}
	err := a.drv.Abort(ctx)
	if err == nil {
		var st argorollouts.Status
		if st, err = a.drv.Wait(ctx, argorollouts.Aborted, 2*time.Minute); err == nil {
			a.last = st
		}
	}
	if err != nil {
		a.p.decision = "abort incomplete: " + err.Error()
		return StatusFailure, fmt.Errorf("%s; aborting %s failed: %v (run action abort)", reason, a.drv, err)
	}
	a.p.decision = "rolled back: " + reason
	return StatusRolledBack, fmt.Errorf("%s rollout of %s rolled back, %s aborted (all traffic on stable %s): %s", a.p.d.in.Strategy, a.p.d.digest, a.drv, a.last.Stable.Images[a.container], reason)
}

// report logs the step the Rollout stopped at, with its steps.
func (a *argoRun) report(st argorollouts.Status) {
	log := a.p.d.log
	log.Infof("%s: at %s, canary weight %d%% (%s)", a.drv, a.stepLabel(st), st.SetWeight, strings.Join(st.PauseReasons, ", "))
	for _, s := range st.Steps() {
		log.Infof("  %s", s)
	}
}

// stepLabel names the step a Rollout is at: "step 2/5 (pause until
// promoted)".
func (a *argoRun) stepLabel(st argorollouts.Status) string {
	if st.TotalSteps == 0 {
		if st.Strategy == "BlueGreen" {
			return "the blue-green pre-promotion pause"
		}
		return "its only step"
	}
	if st.Step >= st.TotalSteps {
		return fmt.Sprintf("the end of its %d steps", st.TotalSteps)
	}
	steps := st.Steps()
	return fmt.Sprintf("step %d/%d (%s)", st.Step+1, st.TotalSteps, steps[st.Step].Text)
}

// summary is the job summary: the progressive summary (decision, analysed
// steps, decision log) and the Rollout's own steps table.
func (a *argoRun) summary(out Outputs, failure error) string {
	s := a.p.summary(out, failure)
	if a.last.Name != "" {
		s += "\n" + a.last.Markdown() + "\n"
	}
	return s
}

// rsPodSelector is the default PromQL selector of one ReplicaSet's pods of
// a Rollout: <rollout>-<rollouts-pod-template-hash>-<suffix>.
func rsPodSelector(ns, rollout, hash string) string {
	return fmt.Sprintf(`namespace=%q,pod=~%q`, ns, regexp.QuoteMeta(rollout+"-"+hash)+"-[a-z0-9]+")
}

// sameDigest reports whether image is pinned to the digest of ref.
func sameDigest(image, ref string) bool {
	dg := digestPart(ref)
	return dg != "" && digestPart(image) == dg
}

// digestPart is the sha256:… of an image by digest, "" otherwise.
func digestPart(image string) string {
	_, dg, ok := strings.Cut(image, "@")
	if !ok {
		return ""
	}
	return dg
}
