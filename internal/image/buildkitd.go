package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	bkclient "github.com/moby/buildkit/client"
	// Address schemes of the "buildkit" input besides unix:// and tcp://.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"
	_ "github.com/moby/buildkit/client/connhelper/podmancontainer"
	_ "github.com/moby/buildkit/client/connhelper/ssh"
)

// daemonSchemes are the addresses the "buildkit" input takes.
var daemonSchemes = []string{"unix://", "tcp://", "docker-container://", "podman-container://", "kube-pod://", "ssh://"}

// daemon returns the address of the BuildKit daemon to build on and a
// func that stops it. With the "buildkit" input set it is that daemon and
// nothing is stopped. Otherwise a rootful buildkitd ($GANTRY_BUILDKITD, or
// buildkitd on PATH) is started on a private socket and state directory
// (under RUNNER_TEMP when set; through sudo -n when the job is not root),
// with an OCI worker running the runc found
// on PATH ($GANTRY_RUNC) and the insecure registries as plain-HTTP
// registries; stop ends it and removes the directory.
func daemon(ctx context.Context, in Inputs) (string, func(), error) {
	if in.BuildKit != "" {
		return in.BuildKit, func() {}, nil
	}
	getenv := in.getenv()
	bin := getenv("GANTRY_BUILDKITD")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("buildkitd"); err != nil {
			return "", nil, errors.New(`no BuildKit daemon: input "buildkit" is empty and buildkitd is not on PATH; install buildkitd and runc (the action does when it runs as root), or set "buildkit" to a running daemon (e.g. docker-container://buildx_buildkit_builder0 after docker/setup-buildx-action)`)
		}
	}
	runc := getenv("GANTRY_RUNC")
	if runc == "" {
		for _, n := range []string{"runc", "buildkit-runc"} {
			if p, err := exec.LookPath(n); err == nil {
				runc = p
				break
			}
		}
	}
	if runc == "" {
		return "", nil, errors.New(`buildkitd needs runc to run RUN steps and no runc is on PATH: install runc (Debian/Ubuntu: apt-get install runc), or set "buildkit" to a running daemon`)
	}
	// The OCI worker is rootful. A job that is not root but may use sudo
	// without a password (GitHub's hosted runners) starts the daemon with
	// sudo, its socket owned by the job's group.
	var asRoot []string
	if os.Geteuid() != 0 {
		sudo, err := exec.LookPath("sudo")
		if err == nil {
			err = exec.CommandContext(ctx, sudo, "-n", "true").Run()
		}
		if err != nil {
			return "", nil, errors.New(`starting buildkitd needs root (its OCI worker is rootful), and this job is neither root nor allowed sudo without a password: run the job as root, or set "buildkit" to a running daemon (rootless buildkitd, docker-container://…)`)
		}
		asRoot = []string{sudo, "-n", "--"}
	}
	// A unix socket path must stay under ~100 bytes.
	state, err := os.MkdirTemp(getenv("RUNNER_TEMP"), "gantry-bk-")
	if err == nil && len(state) > 80 {
		os.RemoveAll(state)
		state, err = os.MkdirTemp("", "gbk-")
	}
	if err != nil {
		return "", nil, fmt.Errorf("making buildkitd's state directory: %w", err)
	}
	var cfg strings.Builder
	cfg.WriteString("[worker.oci]\n  enabled = true\n  snapshotter = \"overlayfs\"\n[worker.containerd]\n  enabled = false\n")
	for _, h := range in.InsecureRegistries {
		if h = strings.TrimSpace(h); h != "" {
			fmt.Fprintf(&cfg, "[registry.%q]\n  http = true\n", h)
		}
	}
	toml := filepath.Join(state, "buildkitd.toml")
	logPath := filepath.Join(state, "buildkitd.log")
	if err := os.WriteFile(toml, []byte(cfg.String()), 0o600); err != nil {
		os.RemoveAll(state)
		return "", nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(state)
		return "", nil, err
	}
	addr := "unix://" + filepath.Join(state, "buildkitd.sock")
	args := append(asRoot, bin, "--config", toml, "--root", filepath.Join(state, "root"), "--addr", addr,
		"--oci-worker=true", "--oci-worker-binary", runc, "--containerd-worker=false")
	if asRoot != nil {
		args = append(args, "--group", strconv.Itoa(os.Getgid()))
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(state)
		return "", nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	signal := func(sig syscall.Signal) {
		if asRoot == nil {
			_ = syscall.Kill(-cmd.Process.Pid, sig)
			return
		}
		// sudo passes the signal on to buildkitd; only root may send it.
		_ = exec.Command(asRoot[0], "-n", "kill", "-"+strconv.Itoa(int(sig)), strconv.Itoa(cmd.Process.Pid)).Run()
	}
	stop := func() {
		signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			signal(syscall.SIGKILL)
			<-exited
		}
		logf.Close()
		if asRoot != nil {
			_ = exec.Command(asRoot[0], "-n", "rm", "-rf", filepath.Join(state, "root")).Run()
		}
		os.RemoveAll(state)
	}
	failed := func(why string) (string, func(), error) {
		b, _ := os.ReadFile(logPath)
		stop()
		return "", nil, fmt.Errorf("%s %s; its log ends:\n%s", bin, why, tail(string(b), 15))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return failed(fmt.Sprintf("exited at start (%v)", waitErr))
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		default:
		}
		if ws, err := workers(ctx, addr); err == nil && len(ws) > 0 {
			in.Log.Infof("buildkitd started on %s (%s, runc %s)", addr, bin, runc)
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			return failed("did not answer on " + addr + " within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func workers(ctx context.Context, addr string) ([]*bkclient.WorkerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := bkclient.New(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ListWorkers(ctx)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
