package testproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultGrace is the time between SIGTERM and SIGKILL when Spec.Grace is
// zero. Test processes hold nothing worth a long clean shutdown.
const DefaultGrace = 5 * time.Second

// Spec describes a process for Start.
type Spec struct {
	// Name names the process in errors; default the base name of Bin.
	Name string
	// Bin is the binary to run, with Args.
	Bin  string
	Args []string
	// Env is the child's environment, as exec.Cmd.Env: pass exactly what
	// the child should see, so the test's own variables cannot change it.
	Env []string
	// Dir is the working directory; empty means this process's.
	Dir string
	// Log is the file (created or truncated) that gets stdout and stderr.
	Log string
	// Detach gives the process its own session so that it outlives this
	// one (make k8s-up). Without it the process is killed when this one
	// dies, also when a test binary panics or times out.
	Detach bool
	// Grace is how long Stop waits after SIGTERM before SIGKILL; zero
	// means DefaultGrace.
	Grace time.Duration
}

// Proc is a started child process whose stdout and stderr go to a log file.
type Proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited
	waitErr error         // valid after done is closed
	stop    func()        // SIGTERM, then SIGKILL after the grace; idempotent
}

// Start starts s.Bin and returns once it is running; it does not wait for
// the process to be ready. A goroutine reaps the process, so Exited and
// Done report its end without anyone calling Wait.
func Start(s Spec) (*Proc, error) {
	name := s.Name
	if name == "" {
		name = filepath.Base(s.Bin)
	}
	grace := s.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	logf, err := os.Create(s.Log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Env = s.Env
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if s.Detach {
		detachProcess(cmd)
	} else {
		setDeathSignal(cmd)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, s.Bin, err)
	}
	p := &Proc{name: name, cmd: cmd, logPath: s.Log, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	p.stop = sync.OnceFunc(func() {
		if p.Exited() {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p, nil
}

// Name is Spec.Name, or the binary's base name.
func (p *Proc) Name() string { return p.name }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogPath is the log file's path.
func (p *Proc) LogPath() string { return p.logPath }

// Stop sends SIGTERM and waits for the process to exit, sending SIGKILL
// after the grace period. It returns once the process is gone. Calling it
// again, also concurrently, or after the process exited by itself does
// nothing.
func (p *Proc) Stop() { p.stop() }

// Done is closed once the process has exited, for select loops that must
// notice a crash without polling.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, without waiting.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns how it ended, as
// exec.Cmd.Wait: nil for exit status 0. Any number of callers may wait.
func (p *Proc) Wait() error {
	<-p.done
	return p.waitErr
}

// Tail returns the last n lines of the log, or why it cannot be read; it
// is meant for error messages and test logs, so it never fails.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ExitError describes how p ended, with the end of its log.
func ExitError(p *Proc) error {
	status := "exit status 0"
	if err := p.Wait(); err != nil {
		status = err.Error()
	}
	return fmt.Errorf("%s exited (%s); last lines of %s:\n%s", p.Name(), status, p.LogPath(), p.Tail(30))
}

// Tails is the last n lines of every process's log, each under a heading
// with its state and the log's path: what a failed test prints of the
// servers it ran.
func Tails(procs []*Proc, n int) string {
	var b strings.Builder
	for _, p := range procs {
		state := "running"
		if p.Exited() {
			state = "exited"
			if err := p.Wait(); err != nil {
				state = "exited: " + err.Error()
			}
		}
		fmt.Fprintf(&b, "--- %s (%s), last %d lines of %s:\n%s\n", p.Name(), state, n, p.LogPath(), p.Tail(n))
	}
	return b.String()
}
