package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/progressive"
)

// summary is the job summary of a progressive run: what was rolled out,
// the step table, the weight over time, the final decision, and the
// analysis' own table of every evaluation.
func (p *prog) summary(out Outputs, failure error) string {
	d := p.d
	var b strings.Builder
	icon := map[string]string{StatusSuccess: "✅", StatusRolledBack: "↩️", StatusFailure: "❌", StatusAborted: "⏹️", StatusPaused: "⏸️"}[out.Status]
	fmt.Fprintf(&b, "### gantry-deploy: %s %s %s to %s (%s)\n\n", icon, out.Status, d.in.Action, d.in.Environment, d.in.Strategy)
	b.WriteString("| | |\n|---|---|\n")
	if d.digest.String() != "" {
		fmt.Fprintf(&b, "| image | `%s` |\n", d.digest)
	}
	if out.PreviousDigest != "" || out.Digest != "" {
		fmt.Fprintf(&b, "| digest | `%s` → `%s` |\n", or(out.PreviousDigest, "(none)"), or(out.Digest, "(none)"))
	}
	if p.stable != "" {
		fmt.Fprintf(&b, "| workloads | stable Deployment %s/%s, canary Deployment %s/%s |\n", p.ns, p.stable, p.ns, p.canary)
	}
	if p.router != nil {
		fmt.Fprintf(&b, "| route | %s: Service %s (stable), %s (canary) |\n", p.router.Describe(), p.stableSvc, p.canarySvc)
	}
	if len(p.steps) > 0 {
		fmt.Fprintf(&b, "| steps | %s, bake %v |\n", p.steps, p.bake)
	}
	if p.selNew != "" {
		fmt.Fprintf(&b, "| analysis | `{%s}` vs `{%s}` |\n", p.selNew, p.selOld)
	}
	if out.Revision != "" {
		fmt.Fprintf(&b, "| revision | %s |\n", out.Revision)
	}
	if p.st.Phase != "" {
		fmt.Fprintf(&b, "| state | %s |\n", escape(p.st.Describe()))
	}
	fmt.Fprintf(&b, "| took | %s |\n", time.Since(d.started).Round(100*time.Millisecond))
	if d.in.Git.RunURL != "" {
		fmt.Fprintf(&b, "| run | %s |\n", d.in.Git.RunURL)
	}
	if p.decision != "" || failure != nil {
		fmt.Fprintf(&b, "\n**Decision:** %s\n", escape(or(p.decision, fmt.Sprint(failure))))
	}
	if failure != nil && p.decision != failure.Error() {
		fmt.Fprintf(&b, "\n**Error:** %s\n", escape(failure.Error()))
	}

	if len(p.records) > 0 {
		b.WriteString("\n| step | canary weight | hold | took | canary errors | stable errors | verdict | reason |\n|---|---|---|---|---|---|---|---|\n")
		for _, r := range p.records {
			canary, stable := "–", "–"
			if c := r.Errors; c != nil {
				canary = fmt.Sprintf("%d/%d = %.2f%%", c.Bad, c.Total, 100*c.Estimate)
				if c.StableTot > 0 {
					stable = fmt.Sprintf("%d/%d = %.2f%%", c.StableBad, c.StableTot, 100*float64(c.StableBad)/float64(c.StableTot))
				}
			}
			fmt.Fprintf(&b, "| %s | %d%% | %v | %v | %s | %s | %s | %s |\n", r.Label, r.Weight, r.Hold, r.Took.Round(time.Second),
				canary, stable, strings.ToUpper(string(r.Verdict)), escape(truncate(r.Reason, 400)))
		}
	}
	b.WriteString(p.weightChart())
	b.WriteString(p.stepChart())
	if lines, err := analysis.ReadLog(bytes.NewReader(p.logBuf.Bytes())); err == nil && len(lines) > 0 {
		verdict, reason := analysis.Pass, p.decision
		if n := len(p.records); n > 0 {
			verdict, reason = p.records[n-1].Verdict, p.records[n-1].Reason
		}
		// The analysis' own rendering, one level down.
		b.WriteString("\n<details><summary>Every evaluation</summary>\n\n")
		b.WriteString(strings.Replace(analysis.Render(lines, verdict, reason), "### gantry-analyze:", "#### analysis:", 1))
		b.WriteString("\n</details>\n")
	}
	if out.DecisionLog != "" {
		fmt.Fprintf(&b, "\nDecision log (JSON Lines): `%s`\n", out.DecisionLog)
	}
	b.WriteString(d.hooksSummary())
	b.WriteString(d.verifiedSummary())
	return b.String()
}

// weightChart is a mermaid chart of the canary's share of traffic over
// the run.
func (p *prog) weightChart() string {
	if len(p.events) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n```mermaid\nxychart-beta\n  title \"Traffic on the canary (%) over time\"\n  x-axis \"seconds since start\" [")
	for i, e := range p.events {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "\"%.0f\"", e.At.Sub(p.d.started).Seconds())
	}
	b.WriteString("]\n  y-axis \"canary %\" 0 --> 100\n  line [")
	for i, e := range p.events {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d", e.Canary)
	}
	b.WriteString("]\n```\n")
	return b.String()
}

// stepChart is a mermaid chart per analysed step: the canary's share of
// traffic (bars) and the error rate of the canary and of stable (lines),
// in percent.
func (p *prog) stepChart() string {
	var labels, weights, canary, stable []string
	for _, r := range p.records {
		if r.Errors == nil {
			continue
		}
		labels = append(labels, strconv.Quote(r.Label))
		weights = append(weights, strconv.Itoa(r.Weight))
		canary = append(canary, strconv.FormatFloat(100*r.Errors.Estimate, 'f', 2, 64))
		s := 0.0
		if r.Errors.StableTot > 0 {
			s = 100 * float64(r.Errors.StableBad) / float64(r.Errors.StableTot)
		}
		stable = append(stable, strconv.FormatFloat(s, 'f', 2, 64))
	}
	if len(labels) == 0 {
		return ""
	}
	return "\n```mermaid\nxychart-beta\n  title \"Per step: canary traffic (bars), canary and stable error rate (lines), %\"\n" +
		"  x-axis [" + strings.Join(labels, ", ") + "]\n  y-axis \"%\"\n" +
		"  bar [" + strings.Join(weights, ", ") + "]\n  line [" + strings.Join(canary, ", ") + "]\n  line [" + strings.Join(stable, ", ") + "]\n```\n"
}

func escape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// ProgressivePlan is what a blue-green or canary deploy would do.
type ProgressivePlan struct {
	Strategy       string            `json:"strategy"`
	Router         string            `json:"router"`
	RouterCheck    string            `json:"routerCheck"`
	Weights        string            `json:"weights,omitempty"`
	Stable         string            `json:"stable"`
	Canary         string            `json:"canary"`
	CanaryService  string            `json:"canaryService"`
	CanaryReplicas []int32           `json:"canaryReplicas"`
	Steps          string            `json:"steps"`
	Bake           string            `json:"bake"`
	SelectorNew    string            `json:"selectorNew"`
	SelectorStable string            `json:"selectorStable"`
	Queries        map[string]string `json:"queries"`
	// Convention is the request-metric convention the queries follow, or
	// how it is found.
	Convention     string              `json:"convention"`
	Thresholds     analysis.Thresholds `json:"thresholds"`
	MinSamples     int64               `json:"minSamples"`
	NoData         string              `json:"noData"`
	RollbackTarget string              `json:"rollbackTarget"`
	State          string              `json:"state"`
	SmokeURL       string              `json:"smokeURL,omitempty"`
}

// planProgressive shows the schedule, the analysis as it will run and the
// rollback target, changing nothing.
func (d *deployer) planProgressive(ctx context.Context) (Outputs, error) {
	out := Outputs{Status: StatusPlanned, DeploymentURL: d.in.EnvironmentURL}
	if err := d.admit(ctx, &out, true, true); err != nil {
		return out, err
	}
	p := &prog{d: d}
	if _, err := p.renderTarget(ctx); err != nil {
		return out, err
	}
	p.stableSvc, p.canarySvc = or(d.in.StableService, p.stable), or(d.in.CanaryService, p.canary)
	steps, err := d.in.schedule()
	if err != nil {
		return out, err
	}
	pp := &ProgressivePlan{Strategy: d.in.Strategy, Stable: p.ns + "/" + p.stable, Canary: p.ns + "/" + p.canary, CanaryService: p.ns + "/" + p.canarySvc,
		Steps: steps.String(), Bake: d.in.Bake.String(), SmokeURL: d.in.SmokeURL}
	p.replicas = 1
	live, err := d.c.typed.AppsV1().Deployments(p.ns).Get(ctx, p.stable, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		pp.RollbackTarget = "none: first deploy, applied directly (rolling)"
	case err != nil:
		return out, fmt.Errorf("reading Deployment %s/%s: %w", p.ns, p.stable, err)
	default:
		if live.Spec.Replicas != nil {
			p.replicas = *live.Spec.Replicas
		}
		out.PreviousDigest = digestOf(live.Spec.Template, d.digest.Context().String())
		pp.RollbackTarget = rollbackTarget(p.stable, out.PreviousDigest, revisionOf(live))
	}
	for _, s := range steps {
		pp.CanaryReplicas = append(pp.CanaryReplicas, p.canaryReplicas(s.Weight))
	}
	router, err := progressive.New(d.c.dynamic, progressive.Config{Router: d.in.TrafficRouter, Namespace: p.ns, Route: d.in.Route, Stable: p.stableSvc, Canary: p.canarySvc})
	if err != nil {
		return out, err
	}
	pp.Router, pp.RouterCheck = router.Describe(), "ok"
	if err := router.Check(ctx); err != nil {
		pp.RouterCheck = err.Error()
	} else if s, c, err := router.Weights(ctx); err == nil {
		pp.Weights = fmt.Sprintf("%d/%d stable/canary", s, c)
	}
	if store, err := progressive.NewStore(d.c.typed, p.ns, d.in.Environment); err == nil {
		if st, err := store.Load(ctx); err == nil {
			pp.State = st.Describe()
		}
	}
	pp.SelectorNew = or(d.in.SelectorNew, podSelector(p.ns, p.canary))
	pp.SelectorStable = or(d.in.SelectorStable, podSelector(p.ns, p.stable))
	cfg, err := d.in.analysisInputs("plan", steps[0].Hold, pp.SelectorNew, pp.SelectorStable).Config()
	if err != nil {
		return out, err
	}
	pp.Thresholds, pp.MinSamples, pp.NoData = cfg.Thresholds, cfg.Policy.MinSamples, string(cfg.Policy.NoData)
	sel := strings.NewReplacer("$selector", pp.SelectorNew, "$range", "<hold>")
	pp.Queries = map[string]string{"total": sel.Replace(cfg.Queries.Total), "errors": sel.Replace(cfg.Queries.Errors),
		"success": sel.Replace(cfg.Queries.Success), "fast": sel.Replace(cfg.Queries.Fast)}
	if cfg.Thresholds.Memory > 0 {
		pp.Queries["memory"] = sel.Replace(cfg.Queries.Memory)
	}
	pp.Convention = cfg.Queries.Convention.String()
	if cfg.Detect {
		pp.Convention = "found at each step from the versions' series (input preset empty); until then " + pp.Convention
	}

	plan := &Plan{Environment: d.in.Environment, Image: d.digest.String(), Progressive: pp}
	if d.in.PlanFile != "" {
		abs, err := filepath.Abs(d.in.PlanFile)
		if err != nil {
			return out, err
		}
		bs, _ := json.MarshalIndent(plan, "", "  ")
		if err := os.WriteFile(abs, append(bs, '\n'), 0o644); err != nil {
			return out, fmt.Errorf(`input "plan-file": %w`, err)
		}
		plan.File = abs
	}
	out.Plan = plan
	out.Summary = progressivePlanSummary(plan) + d.verifiedSummary()
	d.log.Infof("plan: %s via %s, steps %s, canary %s", d.in.Strategy, pp.Router, pp.Steps, pp.Canary)
	return out, nil
}

func progressivePlanSummary(p *Plan) string {
	pp := p.Progressive
	var b strings.Builder
	fmt.Fprintf(&b, "### gantry-deploy: plan for %s (%s)\n\nImage `%s`; nothing was changed.\n\n", p.Environment, pp.Strategy, p.Image)
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| route | %s (check: %s) |\n", pp.Router, escape(pp.RouterCheck))
	if pp.Weights != "" {
		fmt.Fprintf(&b, "| weights now | %s |\n", pp.Weights)
	}
	fmt.Fprintf(&b, "| stable | Deployment %s |\n| canary | Deployment %s, Service %s |\n", pp.Stable, pp.Canary, pp.CanaryService)
	fmt.Fprintf(&b, "| rollback target | %s |\n| recorded state | %s |\n", escape(pp.RollbackTarget), escape(pp.State))
	if pp.SmokeURL != "" {
		fmt.Fprintf(&b, "| smoke test | GET %s |\n", pp.SmokeURL)
	}
	t := pp.Thresholds
	fmt.Fprintf(&b, "| thresholds | success-rate ≥ %.0f%%, error-rate ≤ %.0f%%, p95 ≤ %v, p99 ≤ %v, memory ≤ %.0f%% (0: off) |\n", 100*t.SuccessRate, 100*t.ErrorRate, t.P95, t.P99, 100*t.Memory)
	fmt.Fprintf(&b, "| min-samples | %d; no-data: %s |\n", pp.MinSamples, pp.NoData)
	fmt.Fprintf(&b, "| selectors | new `{%s}`, stable `{%s}` |\n", pp.SelectorNew, pp.SelectorStable)
	steps, _ := progressive.ParseSteps(pp.Steps)
	b.WriteString("\n| step | canary weight | hold | canary replicas |\n|---|---|---|---|\n")
	for i, s := range steps {
		fmt.Fprintf(&b, "| %d | %d%% | %v | %d |\n", i+1, s.Weight, s.Hold, pp.CanaryReplicas[i])
	}
	fmt.Fprintf(&b, "\nbake at 100%%: %s; then the stable Deployment is updated, all traffic returns to it and the canary is scaled to 0.\n\nQueries (`$le` is the latency bucket):\n\n", pp.Bake)
	for _, k := range []string{"total", "errors", "success", "fast", "memory"} {
		if q, ok := pp.Queries[k]; ok {
			fmt.Fprintf(&b, "- %s: `%s`\n", k, q)
		}
	}
	fmt.Fprintf(&b, "\nRequest metrics: %s.\n", pp.Convention)
	if p.File != "" {
		fmt.Fprintf(&b, "\nPlan as JSON: `%s`\n", p.File)
	}
	return b.String()
}
