package k8stest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gantry-ci/gantry/internal/testproc"
)

// EnvBin names the environment variable that points at a directory with the
// control-plane binaries; without it they are taken from bin/k8s in the
// repository (`make k8s` builds them there).
const EnvBin = "GANTRY_K8S_BIN"

// Binaries are the programs a control plane runs; all of them must be in
// the binary directory. (`make k8s-up` also builds kubectl, for people.)
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// KwokStages are the kwok Stage files (testdata/kwok) that fake the node and
// its pods: kwok's own node-initialize, node-heartbeat-with-lease,
// pod-ready (amended so it skips faulty pods), pod-complete and pod-delete,
// plus Gantry's fault Stages.
var KwokStages = []string{
	"node-initialize.yaml",
	"node-heartbeat-with-lease.yaml",
	"pod-ready.yaml",
	"pod-complete.yaml",
	"pod-delete.yaml",
	"gantry-fault-crashloop.yaml",
	"gantry-fault-imagepull.yaml",
	"gantry-fault-jobfail.yaml",
}

const (
	// NodeName is the fake node kwok manages; every pod is scheduled there.
	NodeName = "kwok-node-0"
	// FaultAnnotation on a pod (template) selects a kwok fault Stage:
	// FaultCrashLoop or FaultImagePull. Without it, images containing
	// "crashloop" or "does-not-exist" select the same faults.
	FaultAnnotation = "gantry.dev/fault"
	// FaultCrashLoop: the pod runs, its containers wait in CrashLoopBackOff
	// with restartCount > 0 and a last state terminated with exit code 1.
	FaultCrashLoop = "crashloop"
	// FaultImagePull: the pod stays Pending, its containers wait with reason
	// ErrImagePull and, a second later, ImagePullBackOff.
	FaultImagePull = "imagepull"
	// FaultJobFail: a Job's pod runs, then fails (phase Failed, its
	// containers terminated with exit code 1).
	FaultJobFail = "fail"
	// RestartCountAnnotation sets the restart count FaultCrashLoop reports
	// (a decimal number; default 1).
	RestartCountAnnotation = "gantry.dev/restart-count"

	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	podCIDR            = "10.128.0.0/16"
	nodeIP             = "10.127.0.1"
)

// Options configure New. The zero value runs a throw-away control plane in
// a new temporary directory from the binaries in $GANTRY_K8S_BIN or bin/k8s.
type Options struct {
	// BinDir holds the binaries; default $GANTRY_K8S_BIN, else bin/k8s in
	// the repository.
	BinDir string
	// StageDir holds the kwok Stage files; default testdata/kwok in the
	// repository.
	StageDir string
	// Dir receives certificates, etcd's data, the kubeconfig and the logs.
	// Default: a new temporary directory, removed by Stop.
	Dir string
	// Detach starts the processes in their own session so that they outlive
	// the caller (make k8s-up); Stop still stops them. Without it they die
	// with the calling process.
	Detach bool
	// Timeout bounds the start-up; default 2 minutes.
	Timeout time.Duration
	// Logf, if set, reports the start-up steps.
	Logf func(format string, args ...any)
}

// Cluster is a running control plane: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok with one fake node.
type Cluster struct {
	// Kubeconfig is the path of an admin kubeconfig (self-contained).
	Kubeconfig string
	// Server is kube-apiserver's URL, https://127.0.0.1:PORT.
	Server string
	// Dir holds certificates, etcd's data and the logs (Dir/logs/*.log).
	Dir string
	// StartupTime is how long New took from the first process started to
	// the fake node being Ready.
	StartupTime time.Duration

	rest      *rest.Config
	client    kubernetes.Interface
	procs     []*testproc.Proc // in start order
	removeDir bool
	stopOnce  sync.Once
}

// New starts a control plane and waits until it is ready for workloads:
// kube-apiserver's /readyz, the controller manager's and scheduler's
// /healthz, the default ServiceAccount, and the fake node Ready without
// taints. Every component listens on a free loopback port, so any number of
// control planes can run side by side. On error nothing is left running.
func New(ctx context.Context, o Options) (_ *Cluster, err error) {
	var root string
	if o.BinDir == "" || o.StageDir == "" {
		if root, err = testproc.RepoRoot(); err != nil {
			return nil, fmt.Errorf("k8stest: %w", err)
		}
	}
	binDir := o.BinDir
	if binDir == "" {
		binDir = os.Getenv(EnvBin)
	}
	if binDir == "" {
		binDir = filepath.Join(root, "bin", "k8s")
	}
	if err := checkBinaries(binDir); err != nil {
		return nil, err
	}
	stageDir := o.StageDir
	if stageDir == "" {
		stageDir = filepath.Join(root, "testdata", "kwok")
	}
	var stages []string
	for _, s := range KwokStages {
		p := filepath.Join(stageDir, s)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("k8stest: kwok Stage file: %w", err)
		}
		stages = append(stages, p)
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	c := &Cluster{Dir: o.Dir}
	if c.Dir == "" {
		// Directories of test processes that exited without Stop (a panic,
		// a timeout) are left behind; their processes died with them.
		testproc.RemoveStaleDirs(dirPrefix)
		if c.Dir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid())); err != nil {
			return nil, fmt.Errorf("k8stest: %w", err)
		}
		c.removeDir = true
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	sub := func(name string) string {
		p := filepath.Join(c.Dir, name)
		if err == nil {
			err = os.MkdirAll(p, 0o700)
		}
		return p
	}
	pkiDir, etcdDir, logDir, home := sub("pki"), sub("etcd"), sub("logs"), sub("home")
	certDirs := map[string]string{
		"kube-apiserver":          sub("certs/kube-apiserver"),
		"kube-controller-manager": sub("certs/kube-controller-manager"),
		"kube-scheduler":          sub("certs/kube-scheduler"),
	}
	if err != nil {
		return nil, fmt.Errorf("k8stest: %w", err)
	}

	// The controller manager's and scheduler's ports are picked when they
	// start (startServing), seconds later.
	ports, err := testproc.FreePorts(3)
	if err != nil {
		return nil, fmt.Errorf("k8stest: finding free ports: %w", err)
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	c.Server = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	p, err := newPKI(pkiDir)
	if err != nil {
		return nil, fmt.Errorf("k8stest: certificates: %w", err)
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig(c.Server, p.CAPEM, p.Token), 0o600); err != nil {
		return nil, fmt.Errorf("k8stest: %w", err)
	}
	c.rest = &rest.Config{
		Host:            c.Server,
		BearerToken:     p.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.CAPEM},
		// client-go's default of 5 QPS makes parallel tests wait on the
		// client, not on the cluster.
		QPS:   200,
		Burst: 400,
	}
	if c.client, err = kubernetes.NewForConfig(c.rest); err != nil {
		return nil, fmt.Errorf("k8stest: %w", err)
	}

	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + os.TempDir()}
	start := func(name string, args ...string) (*testproc.Proc, error) {
		pr, err := testproc.Start(testproc.Spec{
			Name:   name,
			Bin:    filepath.Join(binDir, name),
			Args:   args,
			Env:    env,
			Dir:    c.Dir,
			Log:    filepath.Join(logDir, name+".log"),
			Detach: o.Detach,
			Grace:  stopGrace,
		})
		if err != nil {
			return nil, fmt.Errorf("k8stest: %w", err)
		}
		c.procs = append(c.procs, pr)
		return pr, nil
	}
	url := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	began := time.Now()

	etcd, err := start("etcd",
		"--name=default",
		"--data-dir="+etcdDir,
		"--listen-client-urls="+url(etcdClient),
		"--advertise-client-urls="+url(etcdClient),
		"--listen-peer-urls="+url(etcdPeer),
		"--initial-advertise-peer-urls="+url(etcdPeer),
		"--initial-cluster=default="+url(etcdPeer),
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	plain := &http.Client{Timeout: 2 * time.Second}
	if err := waitHTTP(ctx, plain, url(etcdClient)+"/health", "", []*testproc.Proc{etcd}); err != nil {
		return nil, fmt.Errorf("k8stest: etcd on %s: %w", url(etcdClient), err)
	}
	logf("etcd ready after %v", time.Since(began).Round(time.Millisecond))

	apiserver, err := start("kube-apiserver",
		"--etcd-servers="+url(etcdClient),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+certDirs["kube-apiserver"],
		"--tls-cert-file="+p.ServingCert,
		"--tls-private-key-file="+p.ServeKey,
		"--client-ca-file="+p.CACert,
		// Publishes a request-header CA in kube-system/extension-apiserver-authentication;
		// without it the controller manager and scheduler log an error about it
		// several times a second.
		"--requestheader-client-ca-file="+p.CACert,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--token-auth-file="+p.TokenFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.SAPub,
		"--service-account-signing-key-file="+p.SAKey,
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		// Without it 1.37 exits: "cannot use public IP 127.0.0.1 with
		// endpoint reconciler".
		"--endpoint-reconciler-type=none",
	)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CAPEM)
	api := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := waitHTTP(ctx, api, c.Server+"/readyz", p.Token, []*testproc.Proc{etcd, apiserver}); err != nil {
		return nil, fmt.Errorf("k8stest: kube-apiserver on %s: %w", c.Server, err)
	}
	logf("kube-apiserver ready after %v", time.Since(began).Round(time.Millisecond))

	componentArgs := func(name string, port int) []string {
		return []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--authentication-kubeconfig=" + c.Kubeconfig,
			"--authorization-kubeconfig=" + c.Kubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + certDirs[name],
			"--leader-elect=false",
		}
	}
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		// The controller manager's and scheduler's serving certs are
		// self-signed and only guard loopback health checks here.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	// startServing starts a component that serves on a port of its own and
	// waits for its /healthz. The port is picked just before the start, but
	// another process of a parallel test may still take it in between (a
	// free port is only free when asked): a start that exits with "address
	// already in use" is tried again on a new port, at most three times.
	startServing := func(name string, args func(port int) []string) (*testproc.Proc, error) {
		for attempt := 1; ; attempt++ {
			port, err := componentPort()
			if err != nil {
				return nil, fmt.Errorf("k8stest: finding a free port for %s: %w", name, err)
			}
			pr, err := start(name, args(port)...)
			if err != nil {
				return nil, err
			}
			u := "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
			err = waitHTTP(ctx, insecure, u, "", []*testproc.Proc{etcd, apiserver, pr})
			if err == nil {
				return pr, nil
			}
			if attempt < 3 && pr.Exited() && strings.Contains(err.Error(), "address already in use") {
				logf("%s: port %d was taken before it bound it; again on another port", name, port)
				c.procs = slices.DeleteFunc(c.procs, func(x *testproc.Proc) bool { return x == pr })
				continue
			}
			return nil, fmt.Errorf("k8stest: %s on %s: %w", name, u, err)
		}
	}
	kcm, err := startServing("kube-controller-manager", func(port int) []string {
		return append(componentArgs("kube-controller-manager", port),
			"--controllers=*",
			"--service-account-private-key-file="+p.SAKey,
			"--root-ca-file="+p.CACert,
			"--cluster-signing-cert-file="+p.CACert,
			"--cluster-signing-key-file="+p.CAKey,
			"--service-cluster-ip-range="+serviceCIDR,
		)
	})
	if err != nil {
		return nil, err
	}
	scheduler, err := startServing("kube-scheduler", func(port int) []string {
		return componentArgs("kube-scheduler", port)
	})
	if err != nil {
		return nil, err
	}
	logf("kube-controller-manager and kube-scheduler healthy after %v", time.Since(began).Round(time.Millisecond))
	kwok, err := start("kwok",
		"--kubeconfig="+c.Kubeconfig,
		"--config="+strings.Join(stages, ","),
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"=fake",
		// Without leases the node lifecycle controller declares the node
		// NotReady after about 55 s and every pod Ready=False for good.
		"--node-lease-duration-seconds=40",
		"--cidr="+podCIDR,
		"--node-ip="+nodeIP,
	)
	if err != nil {
		return nil, err
	}
	all := []*testproc.Proc{etcd, apiserver, kcm, scheduler, kwok}

	if _, err := c.client.CoreV1().Nodes().Create(ctx, fakeNode(), metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("k8stest: creating node %s: %w", NodeName, err)
	}

	err = poll(ctx, 50*time.Millisecond, all, func() (bool, error) {
		_, err := c.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, errors.New("no ServiceAccount default/default yet")
		}
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("k8stest: waiting for the default ServiceAccount: %w", err)
	}
	err = poll(ctx, 50*time.Millisecond, all, func() (bool, error) {
		n, err := c.client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return nodeSchedulable(n)
	})
	if err != nil {
		return nil, fmt.Errorf("k8stest: waiting for node %s (kwok) to be Ready: %w", NodeName, err)
	}
	c.StartupTime = time.Since(began)
	logf("node %s Ready after %v", NodeName, c.StartupTime.Round(time.Millisecond))
	return c, nil
}

func checkBinaries(dir string) error {
	var missing []string
	for _, b := range Binaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("k8stest: control-plane binaries missing from %s: %s; run `make k8s` or set %s",
			dir, strings.Join(missing, ", "), EnvBin)
	}
	return nil
}

// fakeNode is the node kwok manages: the annotation selects it, the
// capacity fits any test's pods, and no taint keeps pods off it.
func fakeNode() *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("1Ti"),
		corev1.ResourcePods:   resource.MustParse("10000"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{kwokNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"kubernetes.io/hostname": NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: nodeIP},
				{Type: corev1.NodeHostName, Address: NodeName},
			},
		},
	}
}

// nodeSchedulable: Ready, and the node lifecycle controller has lifted the
// not-ready taints it puts on every new node.
func nodeSchedulable(n *corev1.Node) (bool, error) {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return false, errors.New("node not Ready")
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false, fmt.Errorf("node Ready but tainted %s:%s", t.Key, t.Effect)
		}
	}
	return true, nil
}

// componentPort picks the port of the controller manager or the scheduler
// (a variable, so a test can hand out a taken one).
var componentPort = func() (int, error) {
	ports, err := testproc.FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, client *http.Client, url, token string, procs []*testproc.Proc) error {
	return poll(ctx, 50*time.Millisecond, procs, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return true, nil
	})
}

// RESTConfig returns a copy of the admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Clientset returns an admin clientset.
func (c *Cluster) Clientset() kubernetes.Interface { return c.client }

// PIDs returns the process id of every component by name.
func (c *Cluster) PIDs() map[string]int {
	m := make(map[string]int, len(c.procs))
	for _, p := range c.procs {
		m[p.Name()] = p.Pid()
	}
	return m
}

// LogTails returns the last n lines of every component's log, each under a
// heading with the log's path.
func (c *Cluster) LogTails(n int) string { return testproc.Tails(c.procs, n) }

// alive returns an error naming the first component that has exited.
func (c *Cluster) alive() error {
	for _, p := range c.procs {
		if p.Exited() {
			return testproc.ExitError(p)
		}
	}
	return nil
}

// Stop stops every component, in reverse start order (kwok and the
// controllers together, then kube-apiserver, then etcd), and removes Dir
// if New created it. Calling it again does nothing.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		procs := slices.Clone(c.procs)
		slices.Reverse(procs)
		var wg sync.WaitGroup
		for _, p := range procs {
			if p.Name() == "kube-apiserver" || p.Name() == "etcd" {
				wg.Wait()
				p.Stop()
				continue
			}
			wg.Go(p.Stop)
		}
		wg.Wait()
		if c.removeDir {
			os.RemoveAll(c.Dir)
		}
	})
}

// dirPrefix names the directories New creates; the owning process's pid
// follows it.
const dirPrefix = "gantry-k8stest-"
