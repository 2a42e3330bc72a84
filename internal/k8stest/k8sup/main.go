//go:build unix

// Command k8sup starts the tests' control plane (k8stest) in the background
// for people: `make k8s-up` runs it, `make k8s-down` stops what it started.
// It writes an admin kubeconfig, keeps certificates, etcd's data and the
// logs in the run directory, and records each component's pid there as
// NAME.pid.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gantry-ci/gantry/internal/k8stest"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("k8s-up: ")
	bin := flag.String("bin", "", "directory with the binaries (default $"+k8stest.EnvBin+", else bin/k8s)")
	run := flag.String("run", "bin/k8s/run", "run directory: certificates, etcd data, logs, pid files")
	kubeconfig := flag.String("kubeconfig", "bin/k8s/kubeconfig", "where to write the admin kubeconfig")
	flag.Parse()

	runDir, err := filepath.Abs(*run)
	if err != nil {
		log.Fatal(err)
	}
	if pids := livePIDs(runDir); len(pids) > 0 {
		log.Printf("already running from %s (pids %s); kubeconfig %s; `make k8s-down` stops it", runDir, strings.Join(pids, " "), *kubeconfig)
		return
	}
	// A fresh start: nothing of an earlier run's state is reused.
	for _, name := range []string{"pki", "etcd", "logs", "home", "certs", "kubeconfig"} {
		if err := os.RemoveAll(filepath.Join(runDir, name)); err != nil {
			log.Fatal(err)
		}
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := k8stest.New(ctx, k8stest.Options{BinDir: *bin, Dir: runDir, Detach: true, Logf: log.Printf})
	if err != nil {
		log.Fatal(err)
	}
	for name, pid := range c.PIDs() {
		if err := os.WriteFile(filepath.Join(runDir, name+".pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			c.Stop()
			log.Fatal(err)
		}
	}
	data, err := os.ReadFile(c.Kubeconfig)
	if err == nil {
		err = os.WriteFile(*kubeconfig, data, 0o600)
	}
	if err != nil {
		c.Stop()
		log.Fatal(err)
	}
	kc, _ := filepath.Abs(*kubeconfig)
	fmt.Printf(`control plane up in %v at %s (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok node %s)
  export KUBECONFIG=%s
  kubectl get nodes            (bin/k8s/kubectl)
  pods fail on purpose with the annotation %s: %s or %s
  logs: %s
  stop: make k8s-down
`, c.StartupTime.Round(1e6), c.Server, k8stest.NodeName, kc, k8stest.FaultAnnotation,
		k8stest.FaultCrashLoop, k8stest.FaultImagePull, filepath.Join(runDir, "logs"))
}

// livePIDs returns the pids recorded in dir whose processes still run.
func livePIDs(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	var live []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			live = append(live, strconv.Itoa(pid))
		}
	}
	return live
}
