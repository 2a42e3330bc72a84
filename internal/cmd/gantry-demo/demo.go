package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/localregistry"
	"github.com/gantry-ci/gantry/internal/rollout"
	"github.com/gantry-ci/gantry/internal/vulnscan/scantest"
)

// demoPlatforms are the platforms the demo builds.
var demoPlatforms = []string{"linux/amd64", "linux/arm64"}

// demo runs `gantry run` on the sample app with its gantry.yaml
// (testdata/demo/app): nothing but Go is needed (no Docker, no network
// beyond the module proxy). The control plane is started when its binaries
// are built (make k8s); then the showcases gantry run does not cover: the
// GitHub Release of the tag, a blue-green rollout with real analysis, and
// one Slack message updated in place.
func demo(ctx context.Context, w io.Writer, root, bin string, keep bool) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "gantry-demo-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(w, "work directory: %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}

	// The control plane: started here when built and not up.
	kubeconfig := filepath.Join(bin, "k8s", "kubeconfig")
	cluster := clusterUp(ctx, kubeconfig)
	switch {
	case cluster:
		fmt.Fprintf(w, "local control plane: up (%s)\n", kubeconfig)
	case k8sBuilt(bin):
		if keep {
			fmt.Fprintf(w, "local control plane: starting it (scripts/k8s-up.sh; -keep leaves it running: make k8s-down stops it)\n")
		} else {
			fmt.Fprintf(w, "local control plane: starting it for the demo (scripts/k8s-up.sh; stopped at the end: make k8s-up keeps one running)\n")
		}
		cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "k8s-up.sh"), filepath.Join(bin, "k8s"))
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("starting the local control plane: %w", err)
		}
		if !keep {
			defer func() {
				down := exec.Command(filepath.Join(root, "scripts", "k8s-down.sh"), filepath.Join(bin, "k8s"))
				down.Stdout, down.Stderr = w, w
				if err := down.Run(); err != nil {
					fmt.Fprintf(w, "stopping the local control plane: %v (make k8s-down)\n", err)
				}
			}()
		}
		cluster = clusterUp(ctx, kubeconfig)
	default:
		fmt.Fprintf(w, "local control plane: not built, so the staging deploy is a plan and the blue-green rollout a schedule; `make k8s` builds it (then make demo starts it)\n")
	}

	app := filepath.Join(work, "prompt-builder")
	step(w, "The sample app as a repository: testdata/app built for %s (the team's build command), testdata/demo/app's gantry.yaml, one commit tagged v1.2.3", strings.Join(demoPlatforms, ", "))
	if err := prepareApp(ctx, w, root, app); err != nil {
		return err
	}
	if err := scantest.Build(filepath.Join(app, ".gantry", "scan-cache"), filepath.Join(root, scantest.FixturesPath), time.Now().Add(-time.Hour)); err != nil {
		return fmt.Errorf("building the demo vulnerability DB: %w", err)
	}
	fmt.Fprintf(w, "  %s (the scan DB, built offline from testdata/vulndb into the cache gantry.yaml names)\n", filepath.Join(app, ".gantry", "scan-cache"))

	step(w, "gantry run --local --environment staging (in %s)", app)
	args := []string{"run", "--dir", app, "--local", "--environment", "staging"}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "gantry"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=", "HOME="+work)
	if cluster {
		cmd.Env = append(cmd.Env, "GANTRY_DEPLOY_KUBECONFIG="+kubeconfig)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gantry run: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(app, ".gantry", "run", "report.json"))
	if err != nil {
		return err
	}
	var rep struct {
		Image, Registry string
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	if cluster {
		if err := printHistory(ctx, w, kubeconfig); err != nil {
			return err
		}
	}

	// The showcases use the image in the local registry, served again on
	// the address gantry run gave it.
	reg, err := localregistry.Start(filepath.Join(app, ".gantry", "registry"), rep.Registry)
	if err != nil {
		return err
	}
	defer reg.Close()
	buildEnv := map[string]string{
		"INPUT_IMAGE":               reg.Host + "/acme/prompt-builder",
		"INPUT_BASE":                "scratch",
		"INPUT_PLATFORMS":           strings.Join(demoPlatforms, ","),
		"INPUT_CONTEXT":             app,
		"INPUT_LAYERS":              "dist/prompt-builder-{arch}:/app/server\nstatic:/app/static",
		"INPUT_ENTRYPOINT":          "/app/server",
		"INPUT_WORKDIR":             "/app",
		"INPUT_USER":                "65532:65532",
		"INPUT_PORTS":               "8080",
		"INPUT_INSECURE-REGISTRIES": reg.Host,
		"INPUT_CONFIG":              "none",
		"GITHUB_REPOSITORY":         "acme/Prompt-Builder",
		"GITHUB_SERVER_URL":         "https://github.com",
		"SOURCE_DATE_EPOCH":         "1795534082",
	}
	if err := demoRelease(ctx, w, root, bin, app); err != nil {
		return err
	}
	if err := demoBlueGreen(ctx, w, root, bin, work, buildEnv, rep.Image); err != nil {
		return err
	}
	if err := demoNotify(ctx, w, root, bin, work, rep.Image); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndemo finished (the app's registry, keys and report are in %s/.gantry", app)
	if !keep {
		fmt.Fprintf(w, ", removed now; make demo DEMO_FLAGS=-keep keeps them")
	}
	fmt.Fprintln(w, ")")
	return nil
}

// prepareApp writes the sample app's repository: the server built per
// platform in dist/, its static files, testdata/demo/app (gantry.yaml,
// the deploy overlay), the Kubernetes manifests and the scan ignore file,
// committed and tagged v1.2.3 (the run context gantry run reads).
func prepareApp(ctx context.Context, w io.Writer, root, app string) error {
	for _, p := range demoPlatforms {
		osName, arch, _ := strings.Cut(p, "/")
		out := filepath.Join(app, "dist", "prompt-builder-"+arch)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, ".")
		cmd.Dir = filepath.Join(root, "testdata", "app")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+osName, "GOARCH="+arch)
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the sample app for %s: %w", p, err)
		}
		fmt.Fprintf(w, "  built %s\n", out)
	}
	for src, dst := range map[string]string{
		"testdata/demo/static": "static", "testdata/demo/app": ".", "testdata/k8s": "k8s",
	} {
		if err := os.CopyFS(filepath.Join(app, dst), os.DirFS(filepath.Join(root, src))); err != nil {
			return err
		}
	}
	for src, dst := range map[string]string{
		"testdata/demo/release/release.yaml": "deploy/release.yaml",
		"testdata/demo/scan-ignore.yaml":     "scan-ignore.yaml",
		"testdata/release/CHANGELOG.md":      "CHANGELOG.md",
	} {
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(app, dst), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(app, ".gitignore"), []byte("dist/\n.gantry/\n"), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"remote", "add", "origin", "https://github.com/acme/Prompt-Builder.git"},
		{"add", "."},
		{"commit", "-q", "-m", "Prompt-Builder 1.2.3"},
		{"tag", "v1.2.3"},
	} {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = app
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Mara Okafor", "GIT_AUTHOR_EMAIL=mara@example.com",
			"GIT_COMMITTER_NAME=Mara Okafor", "GIT_COMMITTER_EMAIL=mara@example.com",
			"GIT_AUTHOR_DATE=2026-11-20T13:03:11Z", "GIT_COMMITTER_DATE=2026-11-20T13:03:11Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// k8sBuilt says whether make k8s built the control plane's binaries.
func k8sBuilt(bin string) bool {
	for _, b := range []string{"etcd", "kube-apiserver", "kwok"} {
		if _, err := os.Stat(filepath.Join(bin, "k8s", b)); err != nil {
			return false
		}
	}
	return true
}

// printHistory prints the staging release history, as kubectl get
// configmaps -l gantry.dev/release-of=staging shows it.
func printHistory(ctx context.Context, w io.Writer, kubeconfig string) error {
	cfg, err := rollout.RESTConfigFrom(kubeconfig)
	if err != nil {
		return err
	}
	history, err := rollout.History(ctx, cfg, "prompt-builder-staging", "staging")
	if err != nil {
		return err
	}
	step(w, "Deploy: the release history of staging (action rollback, rollback-to revision:N returns every workload to release N)")
	for i, r := range history {
		if i == 5 {
			fmt.Fprintf(w, "    … %d more\n", len(history)-i)
			break
		}
		fmt.Fprintf(w, "    %-3d %-11s %s  %s\n", r.Revision, r.Status, r.Time.Format(time.RFC3339), r.Description)
	}
	return nil
}

// clusterUp reports whether the kubeconfig's API server answers.
func clusterUp(ctx context.Context, kubeconfig string) bool {
	cfg, err := rollout.RESTConfigFrom(kubeconfig)
	if err != nil {
		return false
	}
	cfg.Timeout = 3 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false
	}
	_, err = cs.Discovery().ServerVersion()
	return err == nil
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix) + "\n"
}

func step(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "\n== "+format+"\n", args...)
}

// runStage runs a stage binary with the given action environment and returns
// the outputs it wrote to GITHUB_OUTPUT.
func runStage(ctx context.Context, w io.Writer, binary, work string, env map[string]string) (map[string]string, error) {
	outFile, err := os.CreateTemp(work, "github-output-")
	if err != nil {
		return nil, err
	}
	outFile.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GITHUB_OUTPUT=" + outFile.Name()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(binary), err)
	}
	f, err := os.Open(outFile.Name())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ghaction.ParseOutputFile(f)
}
