package argorolloutstest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/argorollouts"
	"github.com/gantry-ci/gantry/internal/argorollouts/argorolloutstest"
	"github.com/gantry-ci/gantry/internal/k8stest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

// TestCRDs: on a cluster without Argo Rollouts the driver says so and how
// to fix it; InstallCRDs makes the API server serve Rollouts (the driver
// then reports the Rollout itself missing), and UninstallCRDs takes them
// away again. Not parallel: it changes what the whole control plane serves.
func TestCRDs(t *testing.T) {
	cp := k8stest.Start(t)
	ns := cp.Namespace(t)
	cfg := cp.RESTConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A previous run (-count) may have left them installed.
	argorolloutstest.UninstallCRDs(t, cfg)

	d := argorollouts.New(dyn, ns, "web")
	err = d.Check(t.Context())
	want := fmt.Sprintf("Rollout %s/web: the cluster does not serve argoproj.io/v1alpha1 rollouts: the Argo Rollouts CRDs are not installed; install Argo Rollouts in the cluster", ns)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, argorollouts.ErrCRDsMissing) {
		t.Errorf("Check without the CRDs:\n got %v\nwant %s…", err, want)
	}
	if err := d.SetImage(t.Context(), "web", "ghcr.io/acme/web@sha256:"+strings.Repeat("0", 64)); !errors.Is(err, argorollouts.ErrCRDsMissing) {
		t.Errorf("SetImage without the CRDs: %v, want ErrCRDsMissing", err)
	}

	argorolloutstest.InstallCRDs(t, cfg)
	argorolloutstest.InstallCRDs(t, cfg) // again: a no-op
	err = d.Check(t.Context())
	if !errors.Is(err, argorollouts.ErrRolloutNotFound) || errors.Is(err, argorollouts.ErrCRDsMissing) {
		t.Errorf("Check with the CRDs but no Rollout: %v, want ErrRolloutNotFound", err)
	}
	names, err := argorolloutstest.CRDNames()
	if err != nil || len(names) != 5 {
		t.Errorf("CRDNames: %v, %v; want the 5 CRDs of Argo Rollouts", names, err)
	}

	argorolloutstest.UninstallCRDs(t, cfg)
	if err := d.Check(t.Context()); !errors.Is(err, argorollouts.ErrCRDsMissing) {
		t.Errorf("Check after UninstallCRDs: %v, want ErrCRDsMissing", err)
	}
}
