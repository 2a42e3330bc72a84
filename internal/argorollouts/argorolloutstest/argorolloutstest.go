// Package argorolloutstest runs the real Argo Rollouts controller next to a
// test's control plane (internal/k8stest): InstallCRDs applies Argo
// Rollouts' CRDs, StartController runs the controller outside the cluster,
// watching one namespace, so parallel tests each get their own.
//
//	cp := k8stest.Start(t)
//	ns := cp.Namespace(t)
//	argorolloutstest.StartController(t, cp, ns) // installs the CRDs too
//
// The controller binary is $ROLLOUTS_CONTROLLER, else bin/rollouts-controller
// (built from tools/rollouts-controller); a missing binary fails the test.
// It is for tests only.
package argorolloutstest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/testproc"
)

const (
	// Version is the Argo Rollouts release whose CRDs InstallCRDs applies
	// (testdata/argo-rollouts/<Version>) and that tools/rollouts-controller
	// builds.
	Version = "v1.10.1"
	// FieldManager owns the CRDs this package applies.
	FieldManager = "argorolloutstest"
	// readyTimeout bounds the controller's start.
	readyTimeout = 60 * time.Second
)

// CRDFiles returns the vendored CRD files of Version.
func CRDFiles() ([]string, error) {
	root, err := testproc.RepoRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "testdata", "argo-rollouts", Version)
	files, err := filepath.Glob(filepath.Join(dir, "*-crd.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRD files (*-crd.yaml) in %s", dir)
	}
	return files, nil
}

// InstallCRDs applies Argo Rollouts' CRDs (Rollout, AnalysisRun,
// AnalysisTemplate, ClusterAnalysisTemplate, Experiment) by server-side
// apply (they are too large for client-side apply's annotation) and waits
// until the API server serves them. Applying them again changes nothing,
// so every test may call it.
func InstallCRDs(t testing.TB, cfg *rest.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := installCRDs(ctx, cfg); err != nil {
		t.Fatalf("argorolloutstest: installing the Argo Rollouts %s CRDs: %v", Version, err)
	}
}

// CRDNames returns the names of the CRDs InstallCRDs applies.
func CRDNames() ([]string, error) {
	files, err := CRDFiles()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		obj, err := k8stest.ReadCRD(f)
		if err != nil {
			return nil, err
		}
		names = append(names, obj.GetName())
	}
	return names, nil
}

func installCRDs(ctx context.Context, cfg *rest.Config) error {
	files, err := CRDFiles()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return k8stest.ApplyCRDs(ctx, dyn, FieldManager, files)
}

// UninstallCRDs deletes the CRDs InstallCRDs applies (and so every object
// of them) and waits until they are gone, for a test that needs a cluster
// without Argo Rollouts. No other test of the control plane may use them
// meanwhile.
func UninstallCRDs(t testing.TB, cfg *rest.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	names, err := CRDNames()
	if err != nil {
		t.Fatalf("argorolloutstest: %v", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("argorolloutstest: %v", err)
	}
	crds := dyn.Resource(k8stest.CRDResource)
	for _, name := range names {
		if err := crds.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("argorolloutstest: deleting CRD %s: %v", name, err)
		}
	}
	for _, name := range names {
		err := poll(ctx, 50*time.Millisecond, func() error {
			_, err := crds.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return errors.New("still there")
		})
		if err != nil {
			t.Fatalf("argorolloutstest: CRD %s not deleted: %v", name, err)
		}
	}
}

// Controller is a running Argo Rollouts controller.
type Controller struct {
	// Namespace is the one namespace it watches.
	Namespace string
	proc      *testproc.Proc
}

// StartController installs the CRDs (InstallCRDs) and runs the Argo
// Rollouts controller against cp, watching namespace ns only (--namespaced),
// without leader election; it returns once the controller's /healthz
// answers. Cleanup stops it and, when the test failed, prints the end of
// its log.
func StartController(t testing.TB, cp *k8stest.Cluster, ns string) *Controller {
	t.Helper()
	bin, err := testproc.FindTool("rollouts-controller")
	if err != nil {
		t.Fatalf("argorolloutstest: %v (build it: make tools)", err)
	}
	InstallCRDs(t, cp.RESTConfig())
	ports, err := testproc.FreePorts(2)
	if err != nil {
		t.Fatalf("argorolloutstest: finding free ports: %v", err)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "rollouts-controller.log")
	p, err := testproc.Start(testproc.Spec{
		Name: "rollouts-controller",
		Bin:  bin,
		Args: []string{
			"--kubeconfig=" + cp.Kubeconfig,
			"--namespaced",
			"--namespace=" + ns,
			"--leader-elect=false",
			"--metricsPort=" + strconv.Itoa(ports[0]),
			"--healthzPort=" + strconv.Itoa(ports[1]),
			"--loglevel=info",
			"--logformat=text",
		},
		Env:   []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir},
		Dir:   dir,
		Log:   logPath,
		Grace: 3 * time.Second,
	})
	if err != nil {
		t.Fatalf("argorolloutstest: %v", err)
	}
	c := &Controller{Namespace: ns, proc: p}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("argorolloutstest: controller log (last lines of %s):\n%s", logPath, p.Tail(40))
		}
	})
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/healthz"
	err = poll(ctx, 100*time.Millisecond, func() error {
		if p.Exited() {
			return fmt.Errorf("exited (%v)", p.Wait())
		}
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("argorolloutstest: the controller did not come up: %v\nlog (last lines of %s):\n%s", err, logPath, p.Tail(40))
	}
	t.Logf("argorolloutstest: controller up for namespace %s in %v", ns, time.Since(began).Round(time.Millisecond))
	return c
}

// LogTail returns the last n lines of the controller's log.
func (c *Controller) LogTail(n int) string { return c.proc.Tail(n) }

// Stop stops the controller now; Cleanup calls it too.
func (c *Controller) Stop() { c.proc.Stop() }

func poll(ctx context.Context, interval time.Duration, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
