// Command gantry-sign signs an image by digest — the index and every
// platform manifest — and attaches SBOM, SLSA provenance and scan
// attestations, keyless (GitHub OIDC → Fulcio → Rekor) or with a key; or,
// with files set, signs files and writes a <file>.sigstore.json bundle
// beside each. With verify: true it checks them against a policy instead.
// What it writes is what cosign v3 writes, so the cosign CLI verifies it.
package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/logs"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/signing"
)

func main() { ghaction.Main(run) }

func run(ctx context.Context, env *ghaction.Env) error {
	var in signing.Inputs
	if err := env.Decode(&in); err != nil {
		return err
	}
	// A key given as PEM text (not a path) is key material: mask it.
	if strings.HasPrefix(strings.TrimSpace(in.Key), "-----BEGIN") {
		for _, line := range strings.Split(in.Key, "\n") {
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "-----") {
				env.AddMask(s)
			}
		}
	}
	in.Log = env
	in.Getenv = env.Lookup
	in.IDToken = env.Lookup("SIGSTORE_ID_TOKEN")
	if in.IDToken != "" {
		env.AddMask(in.IDToken)
	}
	in.TokenRequestURL = env.Lookup("ACTIONS_ID_TOKEN_REQUEST_URL")
	in.TokenRequestToken = env.Lookup("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	in.Build = signing.BuildContext{
		ServerURL:         env.Lookup("GITHUB_SERVER_URL"),
		Repository:        env.Lookup("GITHUB_REPOSITORY"),
		RepositoryID:      env.Lookup("GITHUB_REPOSITORY_ID"),
		OwnerID:           env.Lookup("GITHUB_REPOSITORY_OWNER_ID"),
		Ref:               env.Lookup("GITHUB_REF"),
		SHA:               env.Lookup("GITHUB_SHA"),
		WorkflowRef:       env.Lookup("GITHUB_WORKFLOW_REF"),
		EventName:         env.Lookup("GITHUB_EVENT_NAME"),
		RunID:             env.Lookup("GITHUB_RUN_ID"),
		RunAttempt:        env.Lookup("GITHUB_RUN_ATTEMPT"),
		RunnerEnvironment: env.Lookup("RUNNER_ENVIRONMENT"),
		StartedOn:         time.Now(),
	}
	if gc, err := env.Context(); err == nil && gc != nil {
		if inputs, ok := gc.Event["inputs"].(map[string]any); ok {
			in.Build.Inputs = inputs
		}
	}
	if env.Lookup("RUNNER_DEBUG") == "1" {
		logs.Warn.SetOutput(os.Stderr)
	}

	out, err := signing.Run(ctx, in)
	if out.Report.Mode != "" { // the run got as far as a report
		if eerr := env.Encode(out); eerr != nil && err == nil {
			err = eerr
		}
		env.Summary(signing.Summary(out))
	}
	return err
}
