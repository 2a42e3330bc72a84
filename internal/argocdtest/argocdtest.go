// Package argocdtest runs a real Argo CD (v3.6.2, tools/argocd) next to a
// test's control plane (internal/k8stest): Redis, the repo-server, the
// application controller and the API server, each a process on free
// loopback ports, outside the cluster, with the Application and AppProject
// CRDs and the argocd namespace's settings in it. Applications sync to the
// control plane itself (destination https://kubernetes.default.svc), so
// their Deployments get pods from kwok's fake node.
//
// A test package shares one Argo CD between its tests, as it shares the
// control plane:
//
//	func TestMain(m *testing.M) { k8stest.Main(m) }
//
//	func TestSync(t *testing.T) {
//		c := k8stest.Start(t)
//		a := argocdtest.Start(t, c)
//		ns := c.Namespace(t)
//		repo := gittest.Start(t, "").NewRepo(t, "deploy", files)
//		app := a.CreateApplication(t, "web", repo.URL, "app", ns, true)
//		a.WaitApplication(t, app, 2*time.Minute, argocdtest.SyncedHealthy(repo.Head("main")))
//	}
//
// Lifetime: the first Start starts it; it stops with the test binary (its
// processes get SIGKILL from the kernel when the test process exits, after
// k8stest.Main has stopped the control plane; nothing in it is worth a
// clean shutdown: Redis keeps no data). Its directory (logs, Redis, the
// repo-server's clones) stays until the next test run that starts one, so
// the logs of a failed run can be read; a failing test also prints their
// tails.
//
// The API server runs with --disable-auth and --insecure (plain HTTP): its
// REST API (APIURL, e.g. GET /api/v1/applications/NAME) answers without a
// token. It is the real server; only authentication is off.
//
// The binaries (argocd, kustomize, redis-server with lib/, Argo CD's git
// wrappers and crds/) come from $GANTRY_ARGOCD_BIN, else bin/argocd in the
// repository (`make argocd`). Missing ones fail the test, never skip it.
//
// Workloads: k8stest's one fake node (k8stest.NodeName) carries no taint, so
// pods need no toleration; it is labelled type=kwok, and NodeSelector is
// that label for manifests that want to say where they run.
//
// It is for tests only.
package argocdtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/gantry-ci/gantry/internal/k8stest"
	"github.com/gantry-ci/gantry/internal/testproc"
)

const (
	// EnvBin names the environment variable that points at the directory
	// `make argocd` fills; without it bin/argocd in the repository is used.
	EnvBin = "GANTRY_ARGOCD_BIN"
	// Version is the Argo CD release tools/argocd builds.
	Version = "v3.6.2"
	// Namespace is where Argo CD's settings and Applications live.
	Namespace = "argocd"
	// InClusterServer is the destination server of Applications that
	// deploy to the control plane Argo CD runs against.
	InClusterServer = "https://kubernetes.default.svc"
	// RefreshAnnotation on an Application asks the controller for a
	// refresh; RefreshHard also regenerates the manifests (a new commit is
	// seen at once).
	RefreshAnnotation = "argocd.argoproj.io/refresh"
	RefreshHard       = "hard"
	// FieldManager owns what this package applies.
	FieldManager = "argocdtest"

	partOfLabel = "app.kubernetes.io/part-of"
	dirPrefix   = "gantry-argocdtest-"
	stopGrace   = 3 * time.Second
	// resync is the controller's periodic refresh (seconds, no jitter):
	// short, so a test that forgets a refresh still converges, yet long
	// enough to leave the controller mostly idle. Tests that push should
	// refresh explicitly (Refresh): a normal refresh may still read the
	// repo-server's cached revision of a branch for up to
	// revisionCacheExpiration.
	resync = "10"
	// revisionCacheExpiration is the repo-server's cache of what a branch
	// points at (default 3 minutes).
	revisionCacheExpiration = "10s"
)

// NodeSelector selects k8stest's fake node (it carries the label type=kwok).
var NodeSelector = map[string]string{"type": "kwok"}

// Binaries are the files that must be in the binary directory.
var Binaries = []string{
	"argocd", "kustomize", "redis-server", "git-verify-wrapper.sh", "gpg-wrapper.sh",
	"lib/liblzf.so.1", "lib/libjemalloc.so.2",
	"crds/application-crd.yaml", "crds/appproject-crd.yaml", "crds/applicationset-crd.yaml",
}

// ApplicationGVR is the resource of Applications (and AppProjectGVR of
// AppProjects), for a dynamic client.
func ApplicationGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
}

// AppProjectGVR is the resource of AppProjects.
func AppProjectGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}
}

// ArgoCD is a running Argo CD.
type ArgoCD struct {
	// Namespace is "argocd": settings, repository Secrets, Applications.
	Namespace string
	// Kubeconfig is the control plane's admin kubeconfig (a file) the
	// controller and the API server use.
	Kubeconfig string
	// APIURL is the API server's base URL, http://127.0.0.1:PORT; it
	// answers without authentication (--disable-auth).
	APIURL string
	// AuthDisabled records that the API server runs with --disable-auth.
	AuthDisabled bool
	// RedisAddr and RepoServerAddr are host:port on loopback.
	RedisAddr, RepoServerAddr string
	// Dir holds the logs (Dir/logs/*.log) and the components' state.
	Dir string
	// StartupTime is how long Start took from the CRDs to every component
	// answering.
	StartupTime time.Duration

	cluster *k8stest.Cluster
	dyn     dynamic.Interface
	procs   []*testproc.Proc
}

var (
	sharedOnce sync.Once
	shared     *ArgoCD
	sharedErr  error
)

// Start returns the test binary's Argo CD, starting it against cluster on
// first use (about 10 s). Every test of the package shares it, also
// parallel ones: give each its own Application names and destination
// namespaces. When the test fails, the tails of the components' logs are
// printed. A missing binary or a failed start fails the test.
func Start(t testing.TB, cluster *k8stest.Cluster) *ArgoCD {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = start(cluster, func(format string, args ...any) { t.Logf("argocdtest: "+format, args...) })
		if sharedErr == nil {
			t.Logf("argocdtest: Argo CD %s up in %v (API %s, auth disabled)", Version, shared.StartupTime.Round(time.Millisecond), shared.APIURL)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	if shared.cluster != cluster {
		t.Fatal("argocdtest.Start: the shared Argo CD runs against another control plane (use k8stest.Start's)")
	}
	if err := shared.alive(); err != nil {
		t.Fatalf("argocdtest: the shared Argo CD is broken: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("argocdtest: Argo CD logs:\n%s", shared.LogTails(30))
		}
	})
	return shared
}

// BinDir is where the binaries are: $GANTRY_ARGOCD_BIN, else bin/argocd.
func BinDir() (string, error) {
	if d := os.Getenv(EnvBin); d != "" {
		return d, nil
	}
	root, err := testproc.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "argocd"), nil
}

func checkBinaries(dir string) error {
	var missing []string
	for _, b := range Binaries {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.IsDir() || (!strings.Contains(b, "/") && fi.Mode()&0o111 == 0) {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("argocdtest: missing from %s: %s; run `make argocd` or set %s",
			dir, strings.Join(missing, ", "), EnvBin)
	}
	return nil
}

func start(cluster *k8stest.Cluster, logf func(string, ...any)) (_ *ArgoCD, err error) {
	if cluster == nil {
		return nil, errors.New("argocdtest: no control plane (pass k8stest.Start(t))")
	}
	binDir, err := BinDir()
	if err != nil {
		return nil, fmt.Errorf("argocdtest: %w", err)
	}
	if binDir, err = filepath.Abs(binDir); err != nil {
		return nil, fmt.Errorf("argocdtest: %w", err)
	}
	if err := checkBinaries(binDir); err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return nil, fmt.Errorf("argocdtest: %w", err)
	}
	a := &ArgoCD{Namespace: Namespace, Kubeconfig: cluster.Kubeconfig, AuthDisabled: true, cluster: cluster, dyn: dyn}
	testproc.RemoveStaleDirs(dirPrefix)
	if a.Dir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid())); err != nil {
		return nil, fmt.Errorf("argocdtest: %w", err)
	}
	defer func() {
		if err != nil {
			a.stop()
		}
	}()
	sub := func(name string) string {
		p := filepath.Join(a.Dir, name)
		if err == nil {
			err = os.MkdirAll(p, 0o700)
		}
		return p
	}
	logDir, home, tmp, redisDir := sub("logs"), sub("home"), sub("tmp"), sub("redis")
	tlsDir, sshDir, gnupg := sub("tls"), sub("ssh"), sub("gnupg")
	if err != nil {
		return nil, fmt.Errorf("argocdtest: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	if err := a.install(ctx, binDir); err != nil {
		return nil, fmt.Errorf("argocdtest: %w", err)
	}
	logf("CRDs and settings in place after %v", time.Since(began).Round(time.Millisecond))

	ports, err := testproc.FreePorts(6)
	if err != nil {
		return nil, fmt.Errorf("argocdtest: finding free ports: %w", err)
	}
	redisPort, repoPort, repoMetrics, ctrlMetrics, apiPort, apiMetrics := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	hostPort := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	a.RedisAddr, a.RepoServerAddr = hostPort(redisPort), hostPort(repoPort)
	a.APIURL = "http://" + hostPort(apiPort)

	// Every component gets exactly this environment, plus its name: the
	// wrappers and kustomize on PATH (the repo-server runs
	// git-verify-wrapper.sh even with GPG off), no GPG, TLS and SSH
	// settings from empty directories, clones under tmp, and
	// https://kubernetes.default.svc mapped to the control plane
	// (ARGOCD_FAKE_IN_CLUSTER with KUBECONFIG).
	env := []string{
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"TMPDIR=" + tmp,
		"ARGOCD_GPG_ENABLED=false",
		"ARGOCD_GNUPGHOME=" + gnupg,
		"ARGOCD_TLS_DATA_PATH=" + tlsDir,
		"ARGOCD_SSH_DATA_PATH=" + sshDir,
		"ARGOCD_FAKE_IN_CLUSTER=true",
		// What ARGOCD_FAKE_IN_CLUSTER reads (--kubeconfig is not enough).
		"KUBECONFIG=" + a.Kubeconfig,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		// The repo-server hands git its credentials through a Unix
		// socket whose path is fixed (/tmp/reposerver-ask-pass.sock)
		// unless set: two Argo CDs on one machine (test packages run in
		// parallel) would answer each other's git ("unknown nonce", "no
		// credentials matched this URL").
		"ARGOCD_ASK_PASS_SOCK=" + filepath.Join(a.Dir, "ask-pass.sock"),
	}
	run := func(name, bin string, extraEnv []string, args ...string) (*testproc.Proc, error) {
		p, err := testproc.Start(testproc.Spec{
			Name:  name,
			Bin:   bin,
			Args:  args,
			Env:   append(append([]string{}, env...), extraEnv...),
			Dir:   a.Dir,
			Log:   filepath.Join(logDir, name+".log"),
			Grace: stopGrace,
		})
		if err != nil {
			return nil, fmt.Errorf("argocdtest: %w", err)
		}
		a.procs = append(a.procs, p)
		return p, nil
	}
	argocd := filepath.Join(binDir, "argocd")
	component := func(name string, args ...string) (*testproc.Proc, error) {
		return run(name, argocd, []string{"ARGOCD_BINARY_NAME=" + name}, args...)
	}

	redis, err := run("redis-server", filepath.Join(binDir, "redis-server"),
		[]string{"LD_LIBRARY_PATH=" + filepath.Join(binDir, "lib")},
		"--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1", "--dir", redisDir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err != nil {
		return nil, err
	}
	if err := poll(ctx, 50*time.Millisecond, []*testproc.Proc{redis}, func() error { return redisPing(a.RedisAddr) }); err != nil {
		return nil, fmt.Errorf("argocdtest: redis on %s: %w", a.RedisAddr, err)
	}

	repo, err := component("argocd-repo-server",
		"--disable-tls", "--client-ca-path=",
		"--address", "127.0.0.1", "--port", strconv.Itoa(repoPort),
		"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(repoMetrics),
		"--redis", a.RedisAddr,
		"--revision-cache-expiration", revisionCacheExpiration,
	)
	if err != nil {
		return nil, err
	}
	common := []string{
		"--kubeconfig", a.Kubeconfig,
		"--namespace", Namespace,
		"--repo-server", a.RepoServerAddr, "--repo-server-plaintext",
		"--redis", a.RedisAddr,
	}
	ctrl, err := component("argocd-application-controller", append(common,
		"--metrics-port", strconv.Itoa(ctrlMetrics),
		"--app-resync", resync, "--app-resync-jitter", "0",
	)...)
	if err != nil {
		return nil, err
	}
	api, err := component("argocd-server", append(common,
		"--insecure", "--disable-auth",
		"--address", "127.0.0.1", "--port", strconv.Itoa(apiPort),
		"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(apiMetrics),
		// No Dex: nothing is configured to use it; the flag only keeps the
		// server from resolving the in-cluster default name.
		"--dex-server", "http://127.0.0.1:1",
	)...)
	if err != nil {
		return nil, err
	}
	all := []*testproc.Proc{redis, repo, ctrl, api}
	checks := []struct{ name, url string }{
		{"argocd-repo-server", "http://" + hostPort(repoMetrics) + "/healthz"},
		{"argocd-application-controller", "http://" + hostPort(ctrlMetrics) + "/healthz"},
		{"argocd-server", a.APIURL + "/healthz"},
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, c := range checks {
		if err := poll(ctx, 100*time.Millisecond, all, func() error { return getOK(ctx, client, c.url) }); err != nil {
			return nil, fmt.Errorf("argocdtest: %s (%s): %w\n%s", c.name, c.url, err, a.LogTails(20))
		}
	}
	a.StartupTime = time.Since(began)
	logf("repo-server, controller and API server healthy after %v", a.StartupTime.Round(time.Millisecond))
	return a, nil
}

// install applies the CRDs and creates the namespace, argocd-cm,
// argocd-secret and the default AppProject.
func (a *ArgoCD) install(ctx context.Context, binDir string) error {
	var files []string
	for _, f := range []string{"application-crd.yaml", "appproject-crd.yaml", "applicationset-crd.yaml"} {
		files = append(files, filepath.Join(binDir, "crds", f))
	}
	if err := k8stest.ApplyCRDs(ctx, a.dyn, FieldManager, files); err != nil {
		return err
	}

	cs := a.cluster.Clientset()
	exists := func(err error) error {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); exists(err) != nil {
		return fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	// The settings manager only sees the ConfigMap and Secret labelled as
	// Argo CD's, and fails without them. (argocd-cm's
	// timeout.reconciliation is not read by the binaries; the controller's
	// --app-resync sets it.)
	labels := map[string]string{partOfLabel: "argocd"}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "argocd-cm", Namespace: Namespace, Labels: labels}}
	if _, err := cs.CoreV1().ConfigMaps(Namespace).Create(ctx, cm, metav1.CreateOptions{}); exists(err) != nil {
		return fmt.Errorf("creating argocd-cm: %w", err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "argocd-secret", Namespace: Namespace, Labels: labels}}
	if _, err := cs.CoreV1().Secrets(Namespace).Create(ctx, sec, metav1.CreateOptions{}); exists(err) != nil {
		return fmt.Errorf("creating argocd-secret: %w", err)
	}
	// argocd-server creates the default project too, but the controller
	// may see an Application first.
	proj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "AppProject",
		"metadata":   map[string]any{"name": "default", "namespace": Namespace},
		"spec": map[string]any{
			"sourceRepos":              []any{"*"},
			"destinations":             []any{map[string]any{"server": "*", "namespace": "*"}},
			"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}},
		},
	}}
	if _, err := a.dyn.Resource(AppProjectGVR()).Namespace(Namespace).Create(ctx, proj, metav1.CreateOptions{}); exists(err) != nil {
		return fmt.Errorf("creating AppProject default: %w", err)
	}
	return nil
}

// Dynamic returns a dynamic client of the control plane.
func (a *ArgoCD) Dynamic() dynamic.Interface { return a.dyn }

// CreateApplication creates Application name in Namespace (project
// default) that deploys path of repoURL's main branch to destNamespace on
// the control plane (CreateNamespace=true); with auto, it syncs by itself
// (syncPolicy.automated with prune and selfHeal). Cleanup deletes it
// without its resources (no finalizer: the test's namespace goes anyway).
func (a *ArgoCD) CreateApplication(t testing.TB, name, repoURL, path, destNamespace string, auto bool) *unstructured.Unstructured {
	t.Helper()
	policy := map[string]any{"syncOptions": []any{"CreateNamespace=true"}}
	if auto {
		policy["automated"] = map[string]any{"prune": true, "selfHeal": true}
	}
	app := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Application",
		"metadata":   map[string]any{"name": name, "namespace": Namespace},
		"spec": map[string]any{
			"project": "default",
			"source": map[string]any{
				"repoURL":        repoURL,
				"targetRevision": "main",
				"path":           path,
			},
			"destination": map[string]any{"server": InClusterServer, "namespace": destNamespace},
			"syncPolicy":  policy,
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := a.dyn.Resource(ApplicationGVR()).Namespace(Namespace).Create(ctx, app, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("argocdtest: creating Application %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := a.dyn.Resource(ApplicationGVR()).Namespace(Namespace).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("argocdtest: deleting Application %s: %v", name, err)
		}
	})
	return created
}

// Application reads Application name.
func (a *ArgoCD) Application(t testing.TB, name string) *unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app, err := a.dyn.Resource(ApplicationGVR()).Namespace(Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("argocdtest: reading Application %s: %v", name, err)
	}
	return app
}

// Refresh asks the controller to refresh Application name now (the
// argocd.argoproj.io/refresh annotation; hard also regenerates the
// manifests): after a push, so the new commit is seen without waiting for
// the periodic resync and the repo-server's revision cache.
func (a *ArgoCD) Refresh(t testing.TB, name string, hard bool) {
	t.Helper()
	kind := "normal"
	if hard {
		kind = RefreshHard
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{RefreshAnnotation: kind}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.dyn.Resource(ApplicationGVR()).Namespace(Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("argocdtest: refreshing Application %s: %v", name, err)
	}
}

// Status is what tests compare of an Application: status.sync.status and
// .revision, status.health.status, status.operationState.phase, and the
// conditions' messages.
type Status struct {
	Sync, Revision, Health, Operation string
	Conditions                        []string
}

func (s Status) String() string {
	out := fmt.Sprintf("sync=%s revision=%s health=%s operation=%s", s.Sync, s.Revision, s.Health, s.Operation)
	if len(s.Conditions) > 0 {
		out += " conditions=" + strings.Join(s.Conditions, "; ")
	}
	return out
}

// StatusOf reads an Application's Status (from the cluster's object or the
// API server's JSON: both have the same shape).
func StatusOf(app map[string]any) Status {
	str := func(path ...string) string { s, _, _ := unstructured.NestedString(app, path...); return s }
	s := Status{
		Sync:      str("status", "sync", "status"),
		Revision:  str("status", "sync", "revision"),
		Health:    str("status", "health", "status"),
		Operation: str("status", "operationState", "phase"),
	}
	conds, _, _ := unstructured.NestedSlice(app, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok {
			s.Conditions = append(s.Conditions, fmt.Sprintf("%v: %v", m["type"], m["message"]))
		}
	}
	return s
}

// SyncedHealthy is a WaitApplication condition: Synced to revision (any
// revision when empty), Healthy, and no sync operation still running.
func SyncedHealthy(revision string) func(Status) bool {
	return func(s Status) bool {
		return s.Sync == "Synced" && s.Health == "Healthy" && s.Operation != "Running" &&
			(revision == "" || s.Revision == revision)
	}
}

// WaitApplication polls Application name until done reports true for its
// Status, failing the test after timeout with the last Status seen and a
// component's exit.
// A ComparisonError while waiting (the first fetch racing the repository
// credentials) gets a hard refresh every 5 s.
func (a *ArgoCD) WaitApplication(t testing.TB, name string, timeout time.Duration, done func(Status) bool) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last Status
	refreshed := time.Now()
	err := poll(ctx, 250*time.Millisecond, a.procs, func() error {
		app, err := a.dyn.Resource(ApplicationGVR()).Namespace(Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		last = StatusOf(app.Object)
		if done(last) {
			return nil
		}
		// A first comparison can race the repository's credentials
		// Secret ("no credentials matched this URL") and Argo CD does not
		// retry it soon: a hard refresh every 5 s while it lasts.
		if strings.Contains(strings.Join(last.Conditions, "; "), "ComparisonError") && time.Since(refreshed) > 5*time.Second {
			a.Refresh(t, name, true)
			refreshed = time.Now()
		}
		return fmt.Errorf("Application %s: %s", name, last)
	})
	if err != nil {
		t.Fatalf("argocdtest: waiting for Application %s: %v", name, err)
	}
	return last
}

// APIApplication is GET APIURL/api/v1/applications/NAME, decoded.
func (a *ArgoCD) APIApplication(t testing.TB, name string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.APIURL+"/api/v1/applications/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("argocdtest: GET %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("argocdtest: GET %s: %v", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("argocdtest: GET %s: %s: %s", req.URL, resp.Status, body)
	}
	var app map[string]any
	if err := json.Unmarshal(body, &app); err != nil {
		t.Fatalf("argocdtest: GET %s: %v", req.URL, err)
	}
	return app
}

var notDNSLabel = regexp.MustCompile(`[^a-z0-9]+`)

// AddRepositoryCredentials gives Argo CD a username and password (or
// token) for repository url: a Secret labelled
// argocd.argoproj.io/secret-type=repository in Namespace, as `argocd repo
// add` makes. Cleanup deletes it.
func (a *ArgoCD) AddRepositoryCredentials(t testing.TB, url, username, password string) {
	t.Helper()
	name := "repo-" + strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: name + "-",
			Namespace:    Namespace,
			Labels:       map[string]string{"argocd.argoproj.io/secret-type": "repository"},
		},
		StringData: map[string]string{"type": "git", "url": url, "username": username, "password": password},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	created, err := a.cluster.Clientset().CoreV1().Secrets(Namespace).Create(ctx, sec, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("argocdtest: creating the repository Secret for %s: %v", url, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := a.cluster.Clientset().CoreV1().Secrets(Namespace).Delete(ctx, created.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("argocdtest: deleting Secret %s: %v", created.Name, err)
		}
	})
}

// LogTails returns the last n lines of every component's log.
func (a *ArgoCD) LogTails(n int) string { return testproc.Tails(a.procs, n) }

func (a *ArgoCD) alive() error {
	for _, p := range a.procs {
		if p.Exited() {
			return testproc.ExitError(p)
		}
	}
	return nil
}

// stop ends a failed start: every process, and the directory.
func (a *ArgoCD) stop() {
	var wg sync.WaitGroup
	for _, p := range a.procs {
		wg.Go(p.Stop)
	}
	wg.Wait()
	if a.Dir != "" {
		os.RemoveAll(a.Dir)
	}
}

func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func getOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// poll calls check every interval until it returns nil, one of procs exits
// or ctx ends; check's last error explains a timeout.
func poll(ctx context.Context, interval time.Duration, procs []*testproc.Proc, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		for _, p := range procs {
			if p.Exited() {
				return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.Name(), p.Wait(), p.LogPath(), p.Tail(30))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
