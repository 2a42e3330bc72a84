package rollout_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/rollout"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: staging
  cluster:
    server: https://staging.example.com:6443
    insecure-skip-tls-verify: true
users:
- name: ci
  user:
    token: s3cr3t-bearer-token
contexts:
- name: staging
  context: {cluster: staging, user: ci}
current-context: staging
`

func TestKubeconfigPathOrContent(t *testing.T) {
	t.Parallel()
	fromContent, err := rollout.RESTConfigFrom(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(p, []byte(kubeconfig), 0o600)
	fromPath, err := rollout.RESTConfigFrom(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []string{fromContent.Host, fromPath.Host} {
		if cfg != "https://staging.example.com:6443" {
			t.Errorf("server %q", cfg)
		}
	}
	if fromContent.BearerToken != "s3cr3t-bearer-token" {
		t.Errorf("token not read from content")
	}
	if _, err := rollout.RESTConfigFrom("/no/such/kubeconfig"); err == nil || !strings.Contains(err.Error(), `input "kubeconfig"`) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := rollout.RESTConfigFrom("apiVersion: v1\nkind: Config\nclusters: [oops"); err == nil || !strings.Contains(err.Error(), "not a valid kubeconfig") {
		t.Errorf("bad content: %v", err)
	}
}

func TestKubeconfigSecretsAreTheCredentialsOnly(t *testing.T) {
	t.Parallel()
	got := rollout.KubeconfigSecrets(kubeconfig)
	if !slices.Equal(got, []string{"s3cr3t-bearer-token"}) {
		t.Errorf("secrets %q, want the token only (server names and apiVersion lines stay readable)", got)
	}
}
