// Package k8stest gives tests a real Kubernetes control plane: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler (v1.37), plus
// kwok faking one node and the status of the pods on it. API validation,
// admission, RBAC, watches, the Deployment/ReplicaSet controllers and the
// scheduler are real, so rollouts, revisions and progress conditions behave
// as in a cluster; no container runs. Pods become Running and Ready, or fail
// the way a kubelet reports it when asked to (FaultAnnotation).
//
// A test package shares one control plane between its tests:
//
//	func TestMain(m *testing.M) { k8stest.Main(m) }
//
//	func TestRollout(t *testing.T) {
//		t.Parallel()
//		c := k8stest.Start(t)
//		ns := c.Namespace(t)
//		_, err := c.Clientset().AppsV1().Deployments(ns).Create(...)
//	}
//
// The binaries come from $GANTRY_K8S_BIN, else bin/k8s in the repository
// (`make k8s`). Missing binaries fail the test, never skip it.
package k8stest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	mainRunning atomic.Bool
	sharedOnce  sync.Once
	shared      *Cluster
	sharedErr   error
)

// Main runs the package's tests and then stops the control plane Start
// shared between them. Call it from TestMain:
//
//	func TestMain(m *testing.M) { k8stest.Main(m) }
//
// When a test failed, the control plane's directory (logs, etcd data) is
// kept, and its path printed, until the next test run that starts one.
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	if shared != nil {
		if code != 0 {
			shared.removeDir = false
			fmt.Fprintf(os.Stderr, "k8stest: tests failed; control-plane logs kept in %s until the next run\n", filepath.Join(shared.Dir, "logs"))
		}
		began := time.Now()
		shared.Stop()
		if testing.Verbose() {
			fmt.Printf("k8stest: control plane stopped in %v\n", time.Since(began).Round(time.Millisecond))
		}
	}
	os.Exit(code)
}

// Start returns the test binary's control plane, starting it on first use
// (a few seconds). It is shared by every test of the package, also parallel
// ones: give each test its own namespace with Namespace. The package's
// TestMain must call Main, which stops it at the end.
//
// Start fails the test (never skips it) when the binaries are missing or
// the control plane does not come up; when the test fails, the tails of the
// components' logs are printed.
func Start(t testing.TB) *Cluster {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("k8stest.Start: the package's TestMain must call k8stest.Main(m), which stops the shared control plane")
	}
	sharedOnce.Do(func() {
		shared, sharedErr = New(context.Background(), Options{Logf: func(format string, args ...any) {
			t.Logf("k8stest: "+format, args...)
		}})
		if sharedErr == nil {
			t.Logf("k8stest: control plane up in %v (kubeconfig %s)", shared.StartupTime.Round(time.Millisecond), shared.Kubeconfig)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	if err := shared.alive(); err != nil {
		t.Fatalf("k8stest: the shared control plane is broken: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("k8stest: control-plane logs:\n%s", shared.LogTails(25))
		}
	})
	return shared
}

// Namespace creates a namespace for this test, named after it, and waits
// for its default ServiceAccount (pods are rejected until it exists). The
// namespace is deleted in Cleanup, without waiting for it to be gone.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: namespacePrefix(t.Name()),
			Labels:       map[string]string{"gantry.dev/k8stest": "true"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("k8stest: creating a namespace: %v", err)
	}
	name := ns.Name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := c.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("k8stest: deleting namespace %s: %v", name, err)
		}
	})
	err = poll(ctx, 25*time.Millisecond, c.procs, func() (bool, error) {
		_, err := c.client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, errors.New("no default ServiceAccount yet")
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("k8stest: namespace %s: %v", name, err)
	}
	return name
}

var notDNSLabel = regexp.MustCompile(`[^a-z0-9]+`)

// namespacePrefix turns a test name into a DNS label prefix for
// GenerateName, which appends 5 characters.
func namespacePrefix(testName string) string {
	s := notDNSLabel.ReplaceAllString(strings.ToLower(testName), "-")
	s = strings.Trim(s, "-")
	if len(s) > 50 {
		s = strings.TrimRight(s[:50], "-")
	}
	if s == "" {
		s = "test"
	}
	return s + "-"
}
