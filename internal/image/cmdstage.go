package image

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	clog "github.com/containerd/log"
	"github.com/google/go-containerregistry/pkg/logs"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/metadata"
)

// Stage is gantry-build as its binary and gantry run run it: the inputs
// from env, tags and labels from the run's context, the build and push,
// the outputs and the summary.
func Stage(ctx context.Context, env *ghaction.Env) error {
	var in Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	run, err := env.Run()
	if err != nil {
		return fmt.Errorf("reading the GitHub context: %w", err)
	}
	in.Git = metadata.FromRun(run)
	in.Log = env
	in.Getenv = env.Lookup
	// The values the secrets input names are hidden in every log line
	// (a RUN step may print one).
	for _, line := range in.Secrets {
		if _, name, ok := strings.Cut(line, "="); ok {
			env.AddMask(env.Lookup(strings.TrimSpace(name)))
		}
	}
	created, source, err := buildTime(ctx, env, in.Context)
	if err != nil {
		return err
	}
	in.Created = created
	env.Infof("file and config times: %s (from %s)", created.Format(time.RFC3339), source)
	if env.Lookup("RUNNER_DEBUG") == "1" {
		logs.Warn.SetOutput(os.Stderr)
	} else {
		// BuildKit's client libraries log through containerd's logger;
		// their warnings (e.g. "failed check for fsverity support" when an
		// OCI layout is written) say nothing the user can act on.
		_ = clog.SetLevel("error")
	}

	out, err := Run(ctx, in)
	if err != nil {
		return err
	}
	if err := env.Encode(out); err != nil {
		return err
	}
	env.Summary(Summary(out))
	return nil
}

// buildTime picks the timestamp that makes the build reproducible:
// SOURCE_DATE_EPOCH when set, else the commit time of the context's HEAD.
func buildTime(ctx context.Context, env *ghaction.Env, dir string) (time.Time, string, error) {
	if s := env.Lookup("SOURCE_DATE_EPOCH"); strings.TrimSpace(s) != "" {
		t, err := metadata.ParseEpoch(s)
		return t, "SOURCE_DATE_EPOCH", err
	}
	if t, err := metadata.CommitTime(ctx, dir); err == nil {
		return t, "the commit time of HEAD", nil
	}
	env.Warningf("no SOURCE_DATE_EPOCH and %s is not a git checkout: using 1970-01-01T00:00:00Z so the digest stays reproducible", dir)
	return time.Unix(0, 0).UTC(), "the Unix epoch", nil
}
