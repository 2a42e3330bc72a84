package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"k8s.io/client-go/kubernetes"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/manifests"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/rollout"
)

// demoPlatforms are the platforms the demo builds.
var demoPlatforms = []string{"linux/amd64", "linux/arm64"}

// demo runs the pipeline's stages on embedded defaults: nothing but Go is
// needed (no Docker, no network beyond the module proxy).
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

	step(w, "Build: cross-compile the sample app (testdata/app) for %s", strings.Join(demoPlatforms, ", "))
	for _, p := range demoPlatforms {
		osName, arch, _ := strings.Cut(p, "/")
		out := filepath.Join(work, "dist", "prompt-builder-"+arch)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, ".")
		cmd.Dir = filepath.Join(root, "testdata", "app")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+osName, "GOARCH="+arch)
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the sample app for %s: %w", p, err)
		}
		fmt.Fprintf(w, "  built %s\n", out)
	}
	if err := os.CopyFS(filepath.Join(work, "static"), os.DirFS(filepath.Join(root, "testdata", "demo", "static"))); err != nil {
		return err
	}

	step(w, "Build: start an embedded OCI registry and push a multi-arch base image")
	reg, err := ocitest.StartRegistry(nil)
	if err != nil {
		return err
	}
	defer reg.Close()
	base, _, err := ocitest.PushBase(ctx, reg.Host, "gantry/base:bookworm", demoPlatforms, ocitest.BaseOptions{Attestation: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  registry http://%s, base %s\n", reg.Host, base)

	env := map[string]string{
		"INPUT_IMAGE":               reg.Host + "/acme/Prompt-Builder",
		"INPUT_BASE":                base,
		"INPUT_PLATFORMS":           strings.Join(demoPlatforms, ","),
		"INPUT_CONTEXT":             work,
		"INPUT_LAYERS":              "dist/prompt-builder-{arch}:/app/server\nstatic:/app/static",
		"INPUT_ENTRYPOINT":          "/app/server",
		"INPUT_ENV":                 "LISTEN_ADDR=:8080\nAPP_VERSION=1.2.3",
		"INPUT_WORKDIR":             "/app",
		"INPUT_USER":                "65532:65532",
		"INPUT_PORTS":               "8080",
		"INPUT_LABELS":              "org.opencontainers.image.vendor=Acme",
		"INPUT_RELEASE-FILE":        filepath.Join(work, "gantry-release.json"),
		"INPUT_INSECURE-REGISTRIES": reg.Host,
		// The GitHub context of a tag push, from a real payload shape.
		"GITHUB_EVENT_NAME": "push",
		"GITHUB_EVENT_PATH": filepath.Join(root, "testdata", "events", "push-tag.json"),
		"GITHUB_REF":        "refs/tags/v1.2.3",
		"GITHUB_REF_NAME":   "v1.2.3",
		"GITHUB_SHA":        "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"GITHUB_REPOSITORY": "acme/Prompt-Builder",
		"GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_RUN_ID":     "4242",
		"SOURCE_DATE_EPOCH": "1795534082", // the tag's commit time
	}
	step(w, "Build: run gantry-build as the action does (inputs as INPUT_* variables)")
	outputs, err := runStage(ctx, w, filepath.Join(bin, "gantry-build"), work, env)
	if err != nil {
		return err
	}
	step(w, "Build: outputs")
	for _, k := range []string{"digest", "image", "tags", "platform-digests", "release-file"} {
		fmt.Fprintf(w, "  %s: %s\n", k, strings.ReplaceAll(outputs[k], "\n", "\n    "))
	}

	ref, err := name.ParseReference(outputs["image"])
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx))
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	json.Indent(&pretty, desc.Manifest, "  ", "  ")
	step(w, "Build: the index in the registry")
	fmt.Fprintf(w, "  %s\n", pretty.String())
	tags, err := remote.List(ref.Context(), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  tags in %s: %s\n", ref.Context(), strings.Join(tags, ", "))

	step(w, "Build: run it again: same digest (reproducible), nothing uploaded")
	again, err := runStage(ctx, io.Discard, filepath.Join(bin, "gantry-build"), work, env)
	if err != nil {
		return err
	}
	if again["digest"] != outputs["digest"] {
		return fmt.Errorf("the second build gave %s, the first %s: the build is not reproducible", again["digest"], outputs["digest"])
	}
	rec, err := os.ReadFile(again["release-file"])
	if err != nil {
		return err
	}
	var r struct {
		Stages struct {
			Build struct {
				UploadedBytes int64 `json:"uploadedBytes"`
			} `json:"build"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(rec, &r); err != nil {
		return err
	}
	fmt.Fprintf(w, "  second run: digest %s, %d blob bytes uploaded\n", again["digest"], r.Stages.Build.UploadedBytes)

	sbomOut, err := demoSBOM(ctx, w, root, bin, work, outputs["image"])
	if err != nil {
		return err
	}
	scanOut, err := demoScan(ctx, w, root, bin, work, outputs["image"])
	if err != nil {
		return err
	}
	if err := demoSign(ctx, w, root, bin, work, outputs["image"], sbomOut["sbom-files"], scanOut["attestation-file"]); err != nil {
		return err
	}
	if err := demoRelease(ctx, w, root, bin, work); err != nil {
		return err
	}
	if err := demoDeploy(ctx, w, root, bin, work, outputs["image"]); err != nil {
		return err
	}
	if err := demoBlueGreen(ctx, w, root, bin, work, env, outputs["image"]); err != nil {
		return err
	}
	if err := demoNotify(ctx, w, root, bin, work, outputs["image"]); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndemo finished (the embedded registry at %s is stopped now)\n", reg.Host)
	return nil
}

// demoDeploy deploys the image to staging on the local control plane when
// `make k8s-up` runs one; otherwise it shows what would be deployed: the
// staging overlay rendered with the image pinned by digest.
func demoDeploy(ctx context.Context, w io.Writer, root, bin, work, image string) error {
	// The demo registry is not ghcr.io: a kustomization on top of the
	// staging overlay points the image there, as a user's overlay would.
	overlay := filepath.Join(work, "overlay")
	repo, _, _ := strings.Cut(image, "@")
	// kustomize takes bases by relative path only.
	base, err := filepath.Rel(overlay, filepath.Join(root, "testdata", "k8s", "overlays", "staging"))
	if err != nil {
		return err
	}
	// The release: the API of the overlay, a worker and a migration hook
	// Job (testdata/demo/release), copied in: kustomize reads resources
	// from below the kustomization only.
	kust := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- %s\n- release.yaml\nimages:\n- name: ghcr.io/acme/prompt-builder\n  newName: %s\n", base, repo)
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		return err
	}
	extra, err := os.ReadFile(filepath.Join(root, "testdata", "demo", "release", "release.yaml"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(overlay, "release.yaml"), extra, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		return err
	}
	kubeconfig := filepath.Join(bin, "k8s", "kubeconfig")
	if _, err := os.Stat(kubeconfig); err != nil || !clusterUp(ctx, kubeconfig) {
		step(w, "Deploy: to staging: no local control plane (run `make k8s-up` for a real deploy); the rendered release instead")
		objs, err := manifests.Render(overlay)
		if err != nil {
			return err
		}
		changes, err := manifests.PinImage(objs, image)
		if err != nil {
			return err
		}
		for _, c := range changes {
			fmt.Fprintf(w, "  pinned %s\n", c)
		}
		for _, o := range objs {
			if point := o.GetAnnotations()[rollout.AnnotationHook]; point != "" {
				fmt.Fprintf(w, "  hook %s: %s %s/%s runs as a Job of its own, before any workload changes\n", point, o.GetKind(), o.GetNamespace(), o.GetName())
			}
		}
		y, err := manifests.YAML(manifests.Workloads(objs))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s", indent(string(y), "  "))
		return nil
	}
	step(w, "Deploy: to staging on the local control plane (gantry-deploy, rolling)")
	out, err := runStage(ctx, w, filepath.Join(bin, "gantry-deploy"), work, map[string]string{
		"INPUT_ENVIRONMENT": "staging",
		"INPUT_IMAGE":       image,
		"INPUT_MANIFESTS":   overlay,
		"INPUT_KUBECONFIG":  kubeconfig,
		"INPUT_TIMEOUT":     "3m",
		"GITHUB_REPOSITORY": "acme/Prompt-Builder",
		"GITHUB_SHA":        "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
	})
	if err != nil {
		return err
	}
	for _, k := range []string{"status", "revision", "digest", "previous-digest"} {
		fmt.Fprintf(w, "  %s: %s\n", k, out[k])
	}
	// The environment's release history, as kubectl get configmaps -l
	// gantry.dev/release-of=staging shows it: one more each demo run.
	cfg, err := rollout.RESTConfigFrom(kubeconfig)
	if err != nil {
		return err
	}
	history, err := rollout.History(ctx, cfg, "prompt-builder-staging", "staging")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  release history of staging (action rollback, rollback-to revision:N returns every workload to release N):\n")
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
