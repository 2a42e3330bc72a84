package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/cosign/v3/pkg/cosign"

	"github.com/gantry-ci/gantry/internal/manifests"
)

// LocalKey is the throwaway signing key gantry run makes when no key is
// configured (cosign's format, empty password), and LocalPub its public
// half: signatures anyone can check with `cosign verify --key
// .gantry/local-signing.pub --insecure-ignore-tlog`, and nobody else
// trusts. Never for production.
var (
	LocalKey = filepath.Join(StateDir, "local-signing.key")
	LocalPub = filepath.Join(StateDir, "local-signing.pub")
)

// localKey returns the local key, made on first use.
func (r *run) localKey() (string, error) {
	if _, err := os.Stat(LocalKey); err == nil {
		r.say("  signing with the LOCAL throwaway key %s (public half %s): not trusted outside this machine", LocalKey, LocalPub)
		return LocalKey, nil
	}
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte{}, nil })
	if err != nil {
		return "", fmt.Errorf("making the local signing key: %w", err)
	}
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(LocalPub, keys.PublicBytes, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(LocalKey, keys.PrivateBytes, 0o600); err != nil {
		return "", err
	}
	r.say("  made a LOCAL throwaway signing key %s (public half %s): for trying the pipeline, not trusted outside this machine; set sign.key or keyless for real signatures", LocalKey, LocalPub)
	return LocalKey, nil
}

// offlinePlan is deploy without a cluster: the environment's manifests
// rendered with the image pinned by digest, written for review; nothing
// is applied. It says what would make the deploy real.
func (r *run) offlinePlan(image, path string) (string, error) {
	env := r.environment()
	if path == "" {
		path = r.input("deploy", "manifests")
	}
	if path == "" {
		return "no cluster (no deploy.kubeconfig, KUBECONFIG or ~/.kube/config); a chart is rendered against the cluster's APIs, so nothing is planned", nil
	}
	objs, err := manifests.Render(path)
	if err != nil {
		return "", err
	}
	changes, err := manifests.PinImage(objs, image)
	if err != nil {
		return "", err
	}
	y, err := manifests.YAML(objs)
	if err != nil {
		return "", err
	}
	out := filepath.Join(RunDir(), "deploy-"+safe(env)+".yaml")
	if err := os.WriteFile(out, y, 0o644); err != nil {
		return "", err
	}
	var names []string
	for _, o := range manifests.Workloads(objs) {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	for _, c := range changes {
		r.say("  deploy | %s/%s container %s: %s -> %s", c.Kind, c.Name, c.Container, c.Before, c.After)
	}
	if len(changes) == 0 {
		return "", errors.New("deploy: no container in " + path + " runs the image's repository: nothing to pin the digest to")
	}
	return fmt.Sprintf("no cluster (set deploy.kubeconfig, KUBECONFIG or ~/.kube/config to deploy): %s rendered for %s with the image pinned (%s), written to %s; nothing applied",
		path, env, strings.Join(names, ", "), out), nil
}

func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == os.PathSeparator {
			return '-'
		}
		return r
	}, s)
}

// localOverlay writes a kustomization over deploy.manifests that renames
// the configured image repository (build.image) to the local registry's,
// as a user's own overlay would, and returns its directory.
func (r *run) localOverlay(image string) (string, error) {
	configured := r.input("build", "image")
	local, _, _ := strings.Cut(image, "@")
	src, err := filepath.Abs(r.input("deploy", "manifests"))
	if err != nil {
		return "", err
	}
	dir, err := filepath.Abs(filepath.Join(RunDir(), "deploy-overlay"))
	if err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// kustomize takes resources by relative path: a kustomization
	// directory, or the YAML files of a plain one.
	var resources []string
	st, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("deploy.manifests: %w", err)
	}
	isKustomization := false
	for _, k := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(src, k)); err == nil {
			isKustomization = true
		}
	}
	switch {
	case st.IsDir() && isKustomization:
		resources = []string{src}
	default:
		// Files are read from below the kustomization only (kustomize's
		// load restrictions): copied in.
		files := []string{src}
		if st.IsDir() {
			files, _ = filepath.Glob(filepath.Join(src, "*.y*ml"))
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return "", err
			}
			dst := filepath.Join(dir, filepath.Base(f))
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				return "", err
			}
			resources = append(resources, dst)
		}
	}
	var b strings.Builder
	b.WriteString("# Written by gantry run: deploy.manifests with the image from the local registry.\n")
	b.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for _, res := range resources {
		rel, err := filepath.Rel(dir, res)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "- %s\n", rel)
	}
	if configured != "" {
		fmt.Fprintf(&b, "images:\n- name: %s\n  newName: %s\n", configured, local)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}
