package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gantry-ci/gantry/internal/analysis"
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghrelease"
	"github.com/gantry-ci/gantry/internal/image"
	"github.com/gantry-ci/gantry/internal/pipeline"
	"github.com/gantry-ci/gantry/internal/rollout"
	"github.com/gantry-ci/gantry/internal/runctx/detect"
	"github.com/gantry-ci/gantry/internal/sbom"
	"github.com/gantry-ci/gantry/internal/signing"
	"github.com/gantry-ci/gantry/internal/slacknotify"
	"github.com/gantry-ci/gantry/internal/vulnscan"
)

const runUsage = `usage: gantry run [flags]

Runs the pipeline here, in the order the reusable workflows use: build,
sbom, scan (its gate stops the run), sign (only what passed), deploy to an
environment, analyze, notify; release only with --only release. Inputs come
from gantry.yaml as for the actions; GANTRY_<STAGE>_<INPUT> environment
variables set one as a step's with: would, GANTRY_<INPUT> for every stage
that has it (secrets: GANTRY_NOTIFY_TOKEN, GANTRY_REGISTRY_PASSWORD, ...).
Where nothing is configured: an OCI
registry on disk (.gantry/registry), a local throwaway signing key
(.gantry/local-signing.key), and without a kubeconfig the deploy is the
rendered manifests with the image pinned. Files go to .gantry/run/, the
report to .gantry/run/report.json.

flags:
`

// runCmd is gantry run.
func runCmd(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, runUsage)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", ".", "the repository to run in (its gantry.yaml, the build context)")
	cfg := fs.String("config", "", `the config file (default gantry.yaml or .gantry.yaml in --dir; "none" reads none)`)
	until := fs.String("until", "", "stop after this stage (build, sbom, scan, sign, deploy, analyze, notify)")
	only := fs.String("only", "", "run only these stages, comma separated (earlier stages' outputs from the last run's report)")
	environment := fs.String("environment", "", "the deploy environment (default deploy.environment in gantry.yaml)")
	dryRun := fs.Bool("dry-run", false, "plan everything, change nothing outside this machine (local registry and key, deploy plan, no notify or release)")
	local := fs.Bool("local", false, "push to the local registry even when build.image names another")
	output := fs.String("output", "text", "text (a summary table) or json (the report) on stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q (see gantry run -h)", fs.Arg(0))
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("run: --output %q: use text or json", *output)
	}
	var onlyList []string
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			onlyList = append(onlyList, s)
		}
	}
	// One run context for every stage: GitHub's, GitLab's, or this
	// checkout's (commit, branch or tag, origin).
	rc, err := detect.FromCI(os.Getenv, *dir, time.Now())
	if err != nil {
		return err
	}
	// trivy keeps its files in a folder of its own for the process.
	defer vulnscan.Cleanup()
	rep, err := pipeline.Run(ctx, pipeline.Options{
		Dir: *dir, Config: *cfg, Until: *until, Only: onlyList, Environment: *environment,
		DryRun: *dryRun, Local: *local, Log: stderr,
		Stages: map[string]pipeline.StageFunc{
			"build": image.Stage, "sbom": sbom.Stage, "scan": vulnscan.Stage, "sign": signing.Stage,
			"deploy": rollout.Stage, "analyze": analysis.Stage, "notify": slacknotify.Stage, "release": ghrelease.Stage,
		},
		Configure: func(_ string, o *ghaction.Options) { o.Run = rc },
	})
	if rep != nil {
		if *output == "json" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			printReport(stdout, rep)
		}
	}
	return err
}

// printReport is the terminal summary: one line per stage.
func printReport(w io.Writer, rep *pipeline.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "STAGE\tSTATUS\tTIME\tDETAIL\n")
	for _, s := range rep.Stages {
		detail := s.Why
		switch {
		case s.Stage == "build" && s.Status == pipeline.Passed:
			detail = s.Outputs["image"]
		case s.Stage == "scan" && s.Outputs["verdict"] != "":
			detail = fmt.Sprintf("%s: critical %s, high %s, medium %s", s.Outputs["verdict"], s.Outputs["critical"], s.Outputs["high"], s.Outputs["medium"])
		case s.Stage == "sign" && s.Status == pipeline.Passed:
			detail = pipeline.SignedLine(s.Outputs["signed"])
		case s.Stage == "deploy" && s.Status == pipeline.Passed:
			detail = fmt.Sprintf("%s, revision %s", s.Outputs["status"], s.Outputs["revision"])
		}
		if len(detail) > 160 {
			detail = detail[:157] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\n", s.Stage, s.Status, s.Seconds, detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s; report %s/%s\n", rep.Status, rep.Dir, pipeline.ReportFile())
}
