package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/gantry-ci/gantry/internal/config"
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/localregistry"
)

// skipReason says why a stage does not run in this run ("" when it does),
// with what would make it run.
func (r *run) skipReason(stage string) string {
	if r.opts.Stages[stage] == nil {
		return "this binary has no " + stage + " stage"
	}
	switch stage {
	case "sbom", "scan", "sign":
		if r.image() == "" {
			return "no image: run build first (or set GANTRY_" + strings.ToUpper(stage) + "_IMAGE)"
		}
	case "deploy":
		if r.environment() == "" {
			return "no environment: pass --environment or set deploy.environment in gantry.yaml"
		}
		if r.gitops() {
			if r.input("deploy", "argocd-application") == "" {
				return "target argocd: set deploy.argocd-application in gantry.yaml (the Argo CD Application of the environment)"
			}
			if r.input("deploy", "argocd-url") == "" && r.kubeconfig() == "" {
				return "target argocd: no way to reach Argo CD (set deploy.argocd-url and GANTRY_DEPLOY_ARGOCD_TOKEN, or deploy.kubeconfig, KUBECONFIG or ~/.kube/config)"
			}
		} else if r.input("deploy", "manifests") == "" && r.input("deploy", "chart") == "" {
			return "nothing to deploy: set deploy.manifests or deploy.chart in gantry.yaml"
		}
		if r.image() == "" {
			return "no image: run build first"
		}
	case "analyze":
		if r.cfg == nil || !r.cfg.Has("analysis") {
			return "no analysis section in gantry.yaml"
		}
		if r.opts.DryRun {
			return "--dry-run: nothing is deployed to analyse"
		}
		if res, ok := r.report.Result("deploy"); !ok || res.Status != Passed {
			return "no deploy in this run to analyse"
		}
	case "notify":
		if r.opts.DryRun {
			return "--dry-run: nobody is notified"
		}
		if r.input("notify", "token") == "" && r.input("notify", "webhook") == "" {
			return "no Slack token or webhook: set GANTRY_NOTIFY_TOKEN or GANTRY_NOTIFY_WEBHOOK"
		}
	case "release":
		if r.opts.DryRun {
			return "--dry-run: nothing is released"
		}
	}
	return ""
}

// image is the image built in this run, or by the last one.
func (r *run) image() string {
	if v := r.outputs["build"]["image"]; v != "" {
		return v
	}
	return ""
}

// stage runs one stage as its binary would: an Env whose INPUT_ variables
// are what the pipeline wires (earlier stages' outputs, GANTRY_<STAGE>_*
// overrides, local defaults the file does not override), reading
// gantry.yaml for the rest.
func (r *run) stage(ctx context.Context, stage string) (res Result, err error) {
	started := r.opts.Now()
	res = Result{Stage: stage, Status: Passed}
	inputs, planned, err := r.wire(ctx, stage)
	if err != nil {
		res.Status, res.Why = Failed, err.Error()
		return res, err
	}
	if planned != "" { // done without the stage (deploy without a cluster)
		res.Status, res.Why = Planned, planned
		res.Seconds = r.opts.Now().Sub(started).Seconds()
		return res, nil
	}
	outs := map[string]string{}
	getenv := func(k string) string {
		switch {
		case strings.HasPrefix(k, "INPUT_"):
			return inputs[k]
		case k == "GITHUB_OUTPUT":
			return "" // outputs come here, not to a runner's file
		}
		return r.opts.Getenv(k)
	}
	pw := &prefixWriter{w: r.log, prefix: fmt.Sprintf("  %-7s| ", stage)}
	o := ghaction.Options{
		Getenv:      getenv,
		Log:         pw,
		Plain:       !ghaction.InActions(r.opts.Getenv),
		SummaryFile: filepath.Join(RunDir(), "summary.md"),
		OnOutput:    func(n, v string) { outs[n] = v },
	}
	if r.opts.Configure != nil {
		r.opts.Configure(stage, &o)
	}
	env := ghaction.NewWith(o)
	env.UseConfig(stage, r.cfg)
	err = ghaction.Guard(ctx, stage, env, r.opts.Stages[stage])
	pw.flush()
	res.Seconds = r.opts.Now().Sub(started).Seconds()
	res.Outputs = outs
	r.outputs[stage] = outs
	if err != nil {
		res.Status, res.Why = Failed, err.Error()
		return res, err
	}
	if stage == "deploy" && outs["status"] == "planned" {
		res.Status = Planned
		res.Why = "plan written to " + inputs["INPUT_PLAN-FILE"]
	}
	return res, nil
}

// wire returns a stage's INPUT_ variables. planned is set when the stage
// is done by the pipeline instead (a deploy plan without a cluster).
func (r *run) wire(ctx context.Context, stage string) (inputs map[string]string, planned string, err error) {
	in := map[string]string{}
	set := func(name, v string) { in[ghaction.InputName(name)] = v }
	// def is a local default: used only when neither the environment nor
	// gantry.yaml sets the input.
	def := func(name, v string) {
		if r.input(stage, name) == "" {
			set(name, v)
		}
	}
	// GANTRY_<STAGE>_<INPUT> first: as a step's with: would.
	if sec := r.schema.Section(config.SectionOf(stage)); sec != nil {
		for _, i := range sec.Inputs {
			if v := r.override(stage, i.Name); v != "" {
				set(i.Name, v)
			}
		}
	}
	record := filepath.Join(RunDir(), "gantry-release.json")
	image := r.image()
	if stage != "build" && r.reg == nil && r.previous != nil && r.previous.Registry != "" && strings.HasPrefix(image, r.previous.Registry+"/") {
		// --only after a run that pushed to the local registry: serve it
		// again where that image says it is.
		if _, err := r.startRegistry(); err != nil {
			return nil, "", err
		}
		if r.reg.Host != r.previous.Registry {
			return nil, "", fmt.Errorf("the last run's image %s is in the local registry at %s, and that address is taken now: run build again", image, r.previous.Registry)
		}
	}
	insecure := func() {
		if r.reg != nil {
			set("insecure-registries", strings.Trim(r.input(stage, "insecure-registries")+"\n"+r.reg.Host, "\n"))
		}
	}
	switch stage {
	case "build":
		target, err := r.buildTarget()
		if err != nil {
			return nil, "", err
		}
		set("image", target)
		insecure()
		def("release-file", record)
		def("oci-layout", filepath.Join(RunDir(), "oci-layout"))
	case "sbom":
		set("image", image)
		insecure()
		def("output-dir", filepath.Join(RunDir(), "sbom"))
		def("release-file", record)
	case "scan":
		set("image", image)
		insecure()
		def("release-file", record)
		def("sarif-file", filepath.Join(RunDir(), "scan.sarif"))
		def("json-file", filepath.Join(RunDir(), "scan.json"))
		def("attestation-file", filepath.Join(RunDir(), "scan-attestation.json"))
	case "sign":
		set("image", image)
		insecure()
		def("release-file", record)
		def("report-file", filepath.Join(RunDir(), "sign-report.json"))
		sbomFiles, scanResult := r.outputs["sbom"]["sbom-files"], r.outputs["scan"]["attestation-file"]
		if r.input(stage, "attestations") == "" {
			var att []string
			if sbomFiles != "" {
				att = append(att, "sbom")
			}
			if scanResult != "" {
				att = append(att, "scan")
			}
			set("attestations", strings.Join(att, ","))
		}
		if sbomFiles != "" {
			def("sbom-files", sbomFiles)
		}
		if scanResult != "" {
			def("scan-result", scanResult)
		}
		if r.localSigning() {
			key, err := r.localKey()
			if err != nil {
				return nil, "", err
			}
			set("key", key)
			set("keyless", "false")
			set("tlog-upload", "false")
		}
	case "deploy":
		set("image", image)
		set("environment", r.environment())
		if r.gitops() {
			return r.wireGitOps(in, set, def)
		}
		if r.reg != nil && r.input("deploy", "manifests") != "" {
			// The manifests name the configured repository; the image is
			// in the local registry: an overlay points one at the other.
			overlay, err := r.localOverlay(image)
			if err != nil {
				return nil, "", err
			}
			set("manifests", overlay)
		}
		def("plan-file", filepath.Join(RunDir(), "deploy-plan.json"))
		if r.opts.DryRun {
			set("action", "plan")
		}
		if kc := r.kubeconfig(); kc == "" {
			p, err := r.offlinePlan(image, in["INPUT_MANIFESTS"])
			return nil, p, err
		} else {
			def("kubeconfig", kc)
		}
	case "analyze", "notify":
		if image != "" {
			def("image", image)
		}
		if stage == "notify" {
			// One message for the run: its outcome, and the deploy's
			// environment when this run deployed.
			status, last := "success", "build"
			for _, res := range r.report.Stages {
				if res.Status == Failed {
					status = "failure"
				}
				if res.Status == Passed || res.Status == Planned || res.Status == Failed {
					last = res.Stage
				}
			}
			def("status", status)
			def("stage", last)
			if dep, ok := r.report.Result("deploy"); ok && dep.Status != Skipped {
				def("environment", r.environment())
			}
		}
	case "release":
		def("release-file", record)
	}
	return in, "", nil
}

// localSigning says whether sign uses the local throwaway key: always with
// --dry-run; else when no key is configured and keyless signing has no
// identity token to sign with (none outside a CI that issues one).
func (r *run) localSigning() bool {
	if r.opts.DryRun {
		return true
	}
	if r.input("sign", "key") != "" {
		return false
	}
	switch r.input("sign", "keyless") {
	case "true":
		return false
	case "false":
		return true
	}
	return r.opts.Getenv("SIGSTORE_ID_TOKEN") == "" && r.opts.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL") == ""
}

// buildTarget is the repository the build pushes to: gantry.yaml's
// build.image, or the same path in the local registry (started here) with
// --local, --dry-run or no image configured.
func (r *run) buildTarget() (string, error) {
	configured := r.input("build", "image")
	if configured != "" && !r.opts.Local && !r.opts.DryRun {
		return configured, nil
	}
	path := "local/" + strings.ToLower(filepath.Base(r.report.Dir))
	if configured != "" {
		ref, err := name.NewRepository(configured)
		if err != nil {
			return "", fmt.Errorf("build.image %q: %w", configured, err)
		}
		path = ref.RepositoryStr()
	}
	reg, err := r.startRegistry()
	if err != nil {
		return "", err
	}
	r.report.Registry = reg.Host
	why := "no build.image in gantry.yaml"
	switch {
	case r.opts.DryRun:
		why = "--dry-run"
	case r.opts.Local:
		why = "--local"
	}
	r.say("  local registry http://%s (content in %s; %s)", reg.Host, filepath.Join(StateDir, "registry"), why)
	return reg.Host + "/" + path, nil
}

// startRegistry starts the local registry, on the address the last run's
// had when it is free (the image names of the last report stay valid).
func (r *run) startRegistry() (*localregistry.Registry, error) {
	if r.reg != nil {
		return r.reg, nil
	}
	dir := filepath.Join(StateDir, "registry")
	var reg *localregistry.Registry
	var err error
	if r.previous != nil && r.previous.Registry != "" {
		reg, err = localregistry.Start(dir, r.previous.Registry)
	}
	if reg == nil {
		if reg, err = localregistry.Start(dir, ""); err != nil {
			return nil, err
		}
	}
	r.reg = reg
	r.report.Registry = reg.Host
	return reg, nil
}

// kubeconfig is the cluster to deploy to: deploy.kubeconfig, KUBECONFIG,
// or ~/.kube/config; "" when there is none.
func (r *run) kubeconfig() string {
	if v := r.input("deploy", "kubeconfig"); v != "" {
		return v
	}
	for _, p := range filepath.SplitList(r.opts.Getenv("KUBECONFIG")) {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if home := r.opts.Getenv("HOME"); home != "" {
		p := filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// gitops reports whether the deploy is target argocd (a promotion in a
// config repository).
func (r *run) gitops() bool { return r.input("deploy", "target") == "argocd" }

// wireGitOps is the deploy's wiring for target argocd: the promotion goes
// to a shared config repository, so an image in this machine's local
// registry is refused (nobody else could pull it). (Without a way to
// reach Argo CD the stage does not run: runnable.)
func (r *run) wireGitOps(in map[string]string, set, def func(name, v string)) (map[string]string, string, error) {
	if r.opts.DryRun {
		set("action", "plan")
	}
	if r.reg != nil && !r.opts.DryRun {
		return nil, "", errors.New("deploy: target argocd commits the image to a shared config repository, and this run's image is in the local registry on this machine, which no cluster can pull: set build.image to a real registry (or run with --dry-run for the plan)")
	}
	if kc := r.kubeconfig(); kc != "" && r.input("deploy", "argocd-url") == "" {
		def("kubeconfig", kc)
	}
	return in, "", nil
}
