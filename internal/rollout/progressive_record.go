package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/internal/progressive"
)

// fromRecord settles, for actions resume, promote and abort, every input
// that the rollout in progress also recorded on the environment's Lease
// when its deploy started. It is the one place that decides which wins:
//
//	deployment               the record's: manifests naming another Deployment are refused
//	image                    the record's (resumeImage): empty takes it, another digest is refused
//	traffic-router, route,   the record's: an empty input takes it (traffic-router has a
//	stable-service,          default, so it must name the recorded router); an input
//	canary-service           naming another is refused, both named
//	steps, bake              the record's (resume runs what is left of them, promote and
//	                         abort none): empty (bake: 0s) takes it; another schedule is
//	                         refused, both named
//	timeout                  this run's, checked against what is left of the schedule
//	the analysis inputs      this run's: they judge the steps this run analyses; those
//	                         that differ from the ones the rollout started with are named
//	                         in a warning (resume)
//	strategy, decision-log   this run's
//
// A record written by an older Gantry lacks the route and the bake: the
// inputs give them, as before. fromRecord sets p.stable, p.canary, p.steps
// and p.bake and returns the route.
func (p *prog) fromRecord() (progressive.Config, error) {
	d, st := p.d, p.st
	in, lease := &d.in, p.store.Lease()
	var errs []error

	if p.stable == "" {
		p.stable, p.canary = st.Stable.Name, st.Canary.Name
	}
	if st.Stable.Name != "" && st.Stable.Name != p.stable {
		errs = append(errs, fmt.Errorf(`action %s: the rollout in progress is of Deployment %s, the manifests name %s: set input "deployment" to %s`, in.Action, st.Stable.Name, p.stable, st.Stable.Name))
	}

	route, err := p.recordedRoute()
	if err != nil {
		errs = append(errs, err)
	}
	if in.Action == "abort" {
		return route, errors.Join(errs...)
	}

	steps := st.Steps
	if len(steps) == 0 {
		// Recorded without a schedule: the input's, as the deploy had it.
		if steps, err = in.schedule(); err != nil {
			return route, errors.Join(append(errs, err)...)
		}
		if st.Step >= len(steps) {
			errs = append(errs, fmt.Errorf(`input "steps": the rollout in progress is at step %d, beyond the %d steps of %s: give the schedule it was deployed with`, st.Step+1, len(steps), steps))
		}
	} else if in.Steps != "" {
		given, err := progressive.ParseSteps(in.Steps)
		if err == nil && given.String() != steps.String() {
			err = fmt.Errorf(`input "steps" is %s, but the rollout in progress runs %s (recorded on Lease %s): leave "steps" empty to %s it with the recorded schedule, or abort it and deploy again with the new one`, given, steps, lease, in.Action)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	bake := in.Bake
	if st.Bake != nil {
		if in.Bake != 0 && in.Bake != *st.Bake {
			errs = append(errs, fmt.Errorf(`input "bake" is %v, but the rollout in progress bakes %v (recorded on Lease %s): leave "bake" empty (or 0s) to %s it with the recorded bake, or abort it and deploy again`, in.Bake, *st.Bake, lease, in.Action))
		}
		bake = *st.Bake
	}
	if len(errs) > 0 {
		return route, errors.Join(errs...)
	}
	p.steps, p.bake = steps, bake

	if in.Action == "resume" {
		left := steps[st.Step:]
		what := fmt.Sprintf("what is left of the rollout in progress, the holds of steps %d to %d of %s and bake %v", st.Step+1, len(steps), steps, bake)
		if err := in.checkTimeout(left.Holds()+bake, what); err != nil {
			return route, err
		}
		p.analysisChanges()
	}
	return route, nil
}

// recordedRoute is the route of the rollout in progress: the record's,
// which an input may repeat but not change.
func (p *prog) recordedRoute() (progressive.Config, error) {
	in, rec, lease := &p.d.in, p.st.Route, p.store.Lease()
	cfg := progressive.Config{
		Router: in.TrafficRouter, Namespace: p.ns, Route: strings.TrimSpace(in.Route),
		Stable: or(in.StableService, p.stable), Canary: or(in.CanaryService, p.canary),
	}
	if rec.Route == "" {
		// Recorded by an older Gantry: the inputs name the route, which
		// must be the one the record describes.
		if cfg.Route == "" {
			return cfg, fmt.Errorf(`input "route" is required for action %s: the rollout in progress was recorded without its route (by an older Gantry; Lease %s: %s): name the HTTPRoute or Ingress it moves traffic on`, in.Action, lease, p.st.Router)
		}
		r, err := progressive.New(p.d.c.dynamic, cfg)
		if err != nil {
			return cfg, err
		}
		if p.st.Router != "" && r.Describe() != p.st.Router {
			return cfg, fmt.Errorf(`inputs "traffic-router" and "route" name %s, but the rollout in progress moves traffic on %s (recorded on Lease %s): name that route to %s it`, r.Describe(), p.st.Router, lease, in.Action)
		}
		p.d.log.Infof("the record on Lease %s predates Gantry recording routes and bakes: route, Services and bake are this run's inputs", lease)
		return cfg, nil
	}
	var errs []error
	for _, f := range []struct{ input, given, recorded string }{
		{"traffic-router", routerKind(cfg.Router), routerKind(rec.Router)},
		{"route", cfg.Route, rec.Route},
		{"stable-service", strings.TrimSpace(in.StableService), rec.Stable},
		{"canary-service", strings.TrimSpace(in.CanaryService), rec.Canary},
	} {
		if f.given != "" && f.given != f.recorded {
			errs = append(errs, fmt.Errorf(`input %q is %s, but the rollout in progress has %s (recorded on Lease %s, %s): set it to %s, or leave it empty, to %s it`,
				f.input, f.given, f.recorded, lease, p.st.Router, f.recorded, in.Action))
		}
	}
	rec.Router, rec.Namespace = routerKind(rec.Router), p.ns
	return rec, errors.Join(errs...)
}

func routerKind(r string) string { return or(r, progressive.GatewayAPI) }

// analysisSettings are the analysis inputs a rollout starts with, as the
// record keeps them: not to decide with, but to tell a later run whose
// own differ.
func (in *Inputs) analysisSettings() map[string]string {
	return map[string]string{
		"interval": in.Interval.String(), "max-hold": in.MaxHold.String(),
		"success-rate": in.SuccessRate, "error-rate": in.ErrorRate, "p95": in.P95, "p99": in.P99, "memory": in.Memory,
		"min-samples": fmt.Sprint(in.MinSamples), "confidence": in.Confidence, "margin": in.Margin, "no-data": in.NoData,
		"selector-new": in.SelectorNew, "selector-stable": in.SelectorStable, "preset": in.Preset, "metric": strings.Join(in.Metric, "\n"),
	}
}

// analysisRecord is analysisSettings as recorded (JSON).
func (in *Inputs) analysisRecord() string {
	b, err := json.Marshal(in.analysisSettings())
	if err != nil {
		return ""
	}
	return string(b)
}

// analysisChanges warns of each analysis input of this run that differs
// from the one the rollout started with: this run's judge what it
// analyses.
func (p *prog) analysisChanges() {
	var rec map[string]string
	if p.st.Analysis == "" || json.Unmarshal([]byte(p.st.Analysis), &rec) != nil {
		return
	}
	now := p.d.in.analysisSettings()
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(now)) {
		if was, ok := rec[k]; ok && was != now[k] {
			diffs = append(diffs, fmt.Sprintf("%s %s (the rollout started with %s)", k, quoteEmpty(now[k]), quoteEmpty(was)))
		}
	}
	if len(diffs) > 0 {
		p.d.log.Warningf("this run's analysis inputs judge the steps it analyses, and differ from those the rollout started with: %s", strings.Join(diffs, "; "))
	}
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
