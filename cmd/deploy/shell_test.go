package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gantry-ci/gantry/internal/ghaction/actiontest"
	"github.com/gantry-ci/gantry/internal/k8stest"
)

func TestMain(m *testing.M) { actiontest.TestMain(m, main) }

// TestOutsideActions runs gantry-deploy as a process from a shell, GitLab
// or Jenkins would: no GITHUB_* at all, a kubeconfig's content as the
// input (what a CI secret holds), and a plain rolling deploy to a real
// control plane (k8stest: etcd, kube-apiserver, the controllers, kwok's
// node). Outputs come on stdout, the log is plain on stderr without the
// kubeconfig's token or the GitHub token, the summary is on stderr, and the
// exit code is 0 or 1.
func TestOutsideActions(t *testing.T) {
	// This package's TestMain belongs to actiontest, so the control plane
	// is this test's own rather than k8stest.Start's shared one.
	c, err := k8stest.New(context.Background(), k8stest.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control-plane logs:\n%s", c.LogTails(25))
		}
		c.Stop()
	})
	kubeconfig, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kubeToken := c.RESTConfig().BearerToken
	if kubeToken == "" || !strings.Contains(string(kubeconfig), kubeToken) {
		t.Fatalf("the kubeconfig %s holds no token", c.Kubeconfig)
	}
	// Without GITHUB_REPOSITORY and GITHUB_SHA there is no GitHub
	// Deployment to record: the token must be hidden all the same, and
	// the log must say it is not used.
	const githubToken = "ghs_gantryDeployShellTestToken4Hk8Wq2"
	const repo = "ghcr.io/acme/prompt-builder"
	image := fmt.Sprintf("%s@sha256:%x", repo, sha256.Sum256([]byte(t.Name())))
	inputs := func(t *testing.T) (map[string]string, string) {
		ns := c.Namespace(t)
		return map[string]string{
			"INPUT_ENVIRONMENT":  "staging",
			"INPUT_IMAGE":        image,
			"INPUT_MANIFESTS":    manifest(t, repo),
			"INPUT_NAMESPACE":    ns,
			"INPUT_KUBECONFIG":   string(kubeconfig),
			"INPUT_GITHUB-TOKEN": githubToken,
			"INPUT_TIMEOUT":      "90s",
		}, ns
	}

	t.Run("rolling deploy", func(t *testing.T) {
		t.Parallel()
		env, ns := inputs(t)
		r := actiontest.Exec(t, "gantry-deploy", env)
		if r.Code != 0 {
			t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
		}
		outs := actiontest.StdoutOutputs(t, r)
		digest := strings.TrimPrefix(image, repo+"@")
		if outs["status"] != "success" || outs["revision"] != "1" || outs["digest"] != digest || outs["previous-digest"] != "" || outs["deployment-url"] != "" {
			t.Errorf("outputs on stdout = %v, want status success, revision 1 and digest %s", outs, digest)
		}
		dep, err := c.Clientset().AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := dep.Spec.Template.Spec.Containers[0].Image; got != image {
			t.Errorf("the Deployment runs %s, want %s", got, image)
		}
		if dep.Status.ReadyReplicas != 2 {
			t.Errorf("%d ready replicas, want 2", dep.Status.ReadyReplicas)
		}
		actiontest.Plain(t, r.Stderr, kubeToken, githubToken)
		if !strings.Contains(r.Stderr, "### gantry-deploy: ✅ success to staging") || !strings.Contains(r.Stderr, "| revision | 1 |") {
			t.Errorf("the summary is not on stderr:\n%s", r.Stderr)
		}
		if want := `warning: input "github-token" is set, but no GitHub Deployment is recorded: the environment has no GITHUB_REPOSITORY (owner/name) and no GITHUB_SHA (the commit deployed)`; !strings.Contains(r.Stderr, want+"\n") {
			t.Errorf("the log does not say why the github-token is not used:\n%s", r.Stderr)
		}
	})

	t.Run("unwritable GITHUB_OUTPUT", func(t *testing.T) {
		t.Parallel()
		env, _ := inputs(t)
		env["GITHUB_OUTPUT"] = actiontest.ReadOnlyOutput(t)
		r := actiontest.Exec(t, "gantry-deploy", env)
		if r.Code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "::error::") || !strings.Contains(r.Stdout, "GITHUB_OUTPUT") {
			t.Errorf("no error annotation naming GITHUB_OUTPUT:\n%s", r.Stdout)
		}
		for _, line := range strings.Split(r.Stdout, "\n") {
			if !strings.HasPrefix(line, "::add-mask::") && (strings.Contains(line, kubeToken) || strings.Contains(line, githubToken)) {
				t.Errorf("a token is in the log outside its mask: %q", line)
			}
		}
	})
}

// manifest writes a small Deployment and its Service, without a namespace
// (the input namespace sets it), and returns the file.
func manifest(t *testing.T, repo string) string {
	t.Helper()
	y := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  progressDeadlineSeconds: 60
  selector:
    matchLabels: {app: api}
  strategy:
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: %s:latest
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080}]
`, repo)
	p := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
