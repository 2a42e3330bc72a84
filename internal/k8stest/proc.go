package k8stest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a component gets between SIGTERM and SIGKILL. The
// control plane's state is thrown away, so a clean shutdown buys nothing
// beyond quiet logs; do not wait long for it.
const stopGrace = 3 * time.Second

// proc is a control-plane process whose stdout and stderr go to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited
	waitErr error         // valid after done is closed
	stop    func()        // SIGTERM, then SIGKILL after stopGrace; idempotent
}

// startProc runs bin with args and env, logging to logPath. With detach the
// process gets its own session and outlives this one (make k8s-up);
// otherwise it dies with this process, also when a test binary panics or
// times out.
func startProc(name, bin string, args, env []string, dir, logPath string, detach bool) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if detach {
		detachProcess(cmd)
	} else {
		setDeathSignal(cmd)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	p.stop = sync.OnceFunc(func() {
		if p.exited() {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes how the process ended, with the end of its log.
func (p *proc) exitError() error {
	<-p.done
	status := "exit status 0"
	if p.waitErr != nil {
		status = p.waitErr.Error()
	}
	return fmt.Errorf("%s exited (%s); last lines of %s:\n%s", p.name, status, p.logPath, p.tail(30))
}

// tail returns the last n lines of the log.
func (p *proc) tail(n int) string {
	return tailFile(p.logPath, n)
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// poll calls check every interval until it reports done, one of procs
// exits or ctx ends. check's last error explains a timeout.
func poll(ctx context.Context, interval time.Duration, procs []*proc, check func() (bool, error)) error {
	for {
		ok, err := check()
		if ok {
			return nil
		}
		for _, p := range procs {
			if p.exited() {
				return p.exitError()
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("condition not met")
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out: %w", err)
			}
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
