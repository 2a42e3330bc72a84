// Package pipeline is `gantry run`: the stages in the order the reusable
// workflows chain them (build → SBOM → scan gate → sign only what passed
// → deploy to an environment → canary analysis → notify), in one process,
// on any machine: a laptop, GitLab, Jenkins, Buildkite. Each stage is the
// very function its action's binary runs (ghaction.Env in, outputs out),
// its inputs read from gantry.yaml as an action's are; the pipeline only
// wires one stage's outputs into the next one's inputs and fills in local
// defaults where nothing is configured: an OCI registry on disk, a
// throwaway signing key, a deploy plan without a cluster.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/internal/config"
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/localregistry"
)

// StageFunc is a stage's body, as its binary runs it (ghaction.Main).
type StageFunc func(ctx context.Context, env *ghaction.Env) error

// Order is the stages gantry run runs, in order. release runs only when
// asked for (--only release): it publishes a tag's GitHub Release.
var Order = []string{"build", "sbom", "scan", "sign", "deploy", "analyze", "notify", "release"}

// inDefaultRun says whether a stage runs without --only.
func inDefaultRun(stage string) bool { return stage != "release" }

// StateDir is where gantry run keeps what outlives a run, under the
// repository: the local registry, the local signing key, the last report.
const StateDir = ".gantry"

// Options configure a run.
type Options struct {
	// Dir is the repository (its gantry.yaml, the build context). The
	// run works in it: relative paths in gantry.yaml are relative to it.
	Dir string
	// Config is the config file ("" = gantry.yaml or .gantry.yaml in Dir,
	// config.Off = none).
	Config string
	// Until stops after this stage; Only runs just these stages (their
	// inputs from earlier stages come from the last run's report).
	Until string
	Only  []string
	// Environment is the deploy environment ("" = deploy.environment).
	Environment string
	// DryRun plans everything and changes nothing outside this machine:
	// the image goes to the local registry only, signatures use the local
	// key, deploy is a plan, nothing is notified or released.
	DryRun bool
	// Local pushes to the local registry even when build.image names
	// another (the image keeps its repository path).
	Local bool
	// Getenv reads the environment (default os.Getenv). GANTRY_<STAGE>_<INPUT>
	// (upper case, hyphens as underscores) sets a stage's input as a
	// step would, GANTRY_<INPUT> for every stage that has the input: how
	// secrets (GANTRY_NOTIFY_TOKEN, GANTRY_REGISTRY_PASSWORD) reach stages.
	Getenv func(string) string
	// Log receives progress lines and every stage's log (default stderr).
	Log io.Writer
	// Stages are the stage functions by name (cmd/gantry wires them, so
	// this package links none itself).
	Stages map[string]StageFunc
	// Configure, when set, adjusts every stage's Env options (gantry run
	// passes the run context).
	Configure func(stage string, o *ghaction.Options)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Stage statuses in the report.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
	Planned = "planned"
)

// Result is one stage of a run.
type Result struct {
	Stage   string            `json:"stage"`
	Status  string            `json:"status"`
	Why     string            `json:"why,omitempty"` // for skipped and failed stages
	Seconds float64           `json:"seconds"`
	Outputs map[string]string `json:"outputs,omitempty"`
}

// Report is what a run did; written to .gantry/run/report.json.
type Report struct {
	Dir      string   `json:"dir"`
	Config   string   `json:"config,omitempty"`
	Registry string   `json:"registry,omitempty"` // the local registry, when started
	Image    string   `json:"image,omitempty"`    // repo@sha256:… built
	DryRun   bool     `json:"dryRun,omitempty"`
	Status   string   `json:"status"` // passed or failed
	Stages   []Result `json:"stages"`
	Files    []string `json:"files,omitempty"` // what the run wrote, under Dir
}

// Result returns the result of a stage, false when the run had none.
func (r *Report) Result(stage string) (Result, bool) {
	for _, s := range r.Stages {
		if s.Stage == stage {
			return s, true
		}
	}
	return Result{}, false
}

// RunDir is where one run writes its files (release record, SBOMs, SARIF,
// plan, summary, report), under the state directory.
func RunDir() string { return filepath.Join(StateDir, "run") }

// ReportFile is the last run's report.
func ReportFile() string { return filepath.Join(RunDir(), "report.json") }

type run struct {
	opts     Options
	cfg      *config.File
	schema   *config.Schema
	log      io.Writer
	reg      *localregistry.Registry
	previous *Report // the last run's report, for --only
	report   *Report
	outputs  map[string]map[string]string // stage → outputs, this run's or the last one's
}

// Run runs the pipeline in opts.Dir. The error is the first stage that
// failed (the report says which and why); the report is complete either way.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	plan, err := opts.plan()
	if err != nil {
		return nil, err
	}
	schema, err := config.Embedded()
	if err != nil {
		return nil, err
	}
	path, err := config.Locate(opts.Config, dir)
	if err != nil {
		return nil, err
	}
	r := &run{opts: opts, schema: schema, log: opts.Log, outputs: map[string]map[string]string{},
		report: &Report{Dir: dir, DryRun: opts.DryRun, Status: Passed}}
	if path != "" {
		if r.cfg, err = config.Load(path, schema); err != nil {
			return nil, err
		}
		r.report.Config = path
	}
	if err := os.MkdirAll(filepath.Join(dir, RunDir()), 0o755); err != nil {
		return nil, err
	}
	// The stages resolve relative paths (context, manifests, output
	// files) against the working directory, as in a checkout.
	if err := os.Chdir(dir); err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(ReportFile()); err == nil {
		var prev Report
		if json.Unmarshal(b, &prev) == nil {
			r.previous = &prev
			for _, s := range prev.Stages {
				if s.Status == Passed || s.Status == Planned {
					r.outputs[s.Stage] = s.Outputs
				}
			}
		}
	}
	// Files of the last run this one replaces: a stale SBOM must not be
	// signed by mistake.
	for _, f := range []string{"summary.md"} {
		os.Remove(filepath.Join(RunDir(), f))
	}
	defer func() {
		if r.reg != nil {
			r.reg.Close()
		}
	}()

	r.say("gantry run in %s (%s)", dir, r.configLine())
	for _, skipped := range r.skippedUpFront(plan) {
		r.say("  %s", skipped)
	}
	var firstErr error
	for i, stage := range plan {
		// After a failure only notify runs: the message says the run failed.
		if firstErr != nil && stage != "notify" {
			r.skip(stage, fmt.Sprintf("not run: %s failed", failedStage(r.report)))
			continue
		}
		if why := r.skipReason(stage); why != "" {
			r.skip(stage, why)
			continue
		}
		r.say("[%d/%d] %s", i+1, len(plan), stage)
		res, err := r.stage(ctx, stage)
		r.report.Stages = append(r.report.Stages, res)
		if err != nil {
			r.report.Status = Failed
			firstErr = fmt.Errorf("%s: %w", stage, err)
			r.say("[%d/%d] %s failed after %.1fs: %v", i+1, len(plan), stage, res.Seconds, err)
			continue
		}
		r.say("[%d/%d] %s %s in %.1fs%s", i+1, len(plan), stage, res.Status, res.Seconds, r.headline(stage, res))
	}
	r.report.Image = r.image()
	// What the run wrote, for the report (the report itself included).
	filepath.WalkDir(RunDir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !slices.Contains(r.report.Files, p) && !strings.Contains(p, "oci-layout") {
			r.report.Files = append(r.report.Files, p)
		}
		return nil
	})
	if !slices.Contains(r.report.Files, ReportFile()) {
		r.report.Files = append(r.report.Files, ReportFile())
	}
	if err := r.writeReport(); err != nil && firstErr == nil {
		firstErr = err
	}
	return r.report, firstErr
}

func failedStage(rep *Report) string {
	for _, s := range rep.Stages {
		if s.Status == Failed {
			return s.Stage
		}
	}
	return "an earlier stage"
}

// plan is the stages to run, in order.
func (o Options) plan() ([]string, error) {
	for _, s := range append(slices.Clone(o.Only), o.Until) {
		if s != "" && !slices.Contains(Order, s) {
			return nil, fmt.Errorf("no stage %q: stages are %s", s, strings.Join(Order, ", "))
		}
	}
	if o.Until != "" && len(o.Only) > 0 {
		return nil, errors.New("--until and --only both given: use one")
	}
	var plan []string
	for _, s := range Order {
		switch {
		case len(o.Only) > 0:
			if slices.Contains(o.Only, s) {
				plan = append(plan, s)
			}
		case inDefaultRun(s):
			plan = append(plan, s)
		}
		if s == o.Until {
			break
		}
	}
	return plan, nil
}

func (r *run) configLine() string {
	if r.cfg == nil {
		return "no gantry.yaml: embedded defaults"
	}
	return "config " + r.cfg.Path
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.log, format+"\n", args...)
}

func (r *run) skip(stage, why string) {
	r.report.Stages = append(r.report.Stages, Result{Stage: stage, Status: Skipped, Why: why})
	r.say("  %s skipped: %s", stage, why)
}

// skippedUpFront says at the start what will not run and the one thing
// that enables it.
func (r *run) skippedUpFront(plan []string) []string {
	var out []string
	for _, s := range plan {
		why := r.skipReason(s)
		if strings.HasPrefix(why, "no image") && slices.Contains(plan, "build") {
			continue // the build will make one
		}
		if why != "" && s != "analyze" {
			out = append(out, fmt.Sprintf("%s will be skipped: %s", s, why))
		}
	}
	return out
}

// input is a stage input's value as the stage will see it, without the
// pipeline's own wiring: GANTRY_<STAGE>_<INPUT> or GANTRY_<INPUT>, else
// gantry.yaml.
func (r *run) input(stage, name string) string {
	if v := r.override(stage, name); v != "" {
		return v
	}
	env := ""
	if stage == "deploy" {
		env = r.environment()
	}
	v, _ := config.Resolve(r.cfg, stage, env, name, "", "")
	return v
}

// overrideVar is the environment variable that sets a stage's input in
// gantry run: GANTRY_DEPLOY_KUBECONFIG, GANTRY_NOTIFY_TOKEN; with stage ""
// the one for every stage that has the input: GANTRY_REGISTRY_PASSWORD.
func overrideVar(stage, input string) string {
	v := "GANTRY_"
	if stage != "" {
		v += strings.ToUpper(stage) + "_"
	}
	return v + strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(input))
}

// override is a stage's input from the environment, as a step's with:
// would set it: GANTRY_<STAGE>_<INPUT>, else GANTRY_<INPUT> (one
// registry password for build, sbom, scan and sign).
func (r *run) override(stage, input string) string {
	if v := r.opts.Getenv(overrideVar(stage, input)); v != "" {
		return v
	}
	return r.opts.Getenv(overrideVar("", input))
}

func (r *run) environment() string {
	if r.opts.Environment != "" {
		return r.opts.Environment
	}
	v, _ := config.Resolve(r.cfg, "deploy", "", "environment", r.opts.Getenv(overrideVar("deploy", "environment")), "")
	return v
}

func (r *run) headline(stage string, res Result) string {
	o := res.Outputs
	switch stage {
	case "build":
		return ": " + o["image"]
	case "sbom":
		return ": packages " + o["packages"]
	case "scan":
		return fmt.Sprintf(": %s (critical %s, high %s)", o["verdict"], o["critical"], o["high"])
	case "sign":
		return ": " + SignedLine(o["signed"])
	case "deploy":
		if res.Status == Planned {
			return ": " + res.Why
		}
		return fmt.Sprintf(": %s, revision %s", o["status"], o["revision"])
	}
	return ""
}

// prefixWriter writes each line of a stage's log with the stage's name in
// front.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i]); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf)
		p.buf = nil
	}
}

func (r *run) writeReport() error {
	sort.Strings(r.report.Files)
	b, err := json.MarshalIndent(r.report, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(ReportFile(), append(b, '\n'), 0o644)
}

// SignedLine sums up the sign stage's signed output (a JSON list of the
// manifests signed and what each got): "3 manifests: signature, scan, sbom/spdx".
func SignedLine(signed string) string {
	var list []struct {
		Types []string `json:"types"`
	}
	if json.Unmarshal([]byte(signed), &list) != nil {
		return signed
	}
	var types []string
	for _, m := range list {
		for _, t := range m.Types {
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	return fmt.Sprintf("signed %d manifests: %s", len(list), strings.Join(types, ", "))
}
