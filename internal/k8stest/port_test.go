package k8stest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestComponentOnATakenPortStartsAgain: the controller manager is handed a
// port another process holds (as happens when a parallel test's server
// takes it between the pick and the bind); the control plane still comes
// up, on another port, says so, and keeps no exited process.
func TestComponentOnATakenPortStartsAgain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	var calls atomic.Int32
	pick := componentPort
	componentPort = func() (int, error) {
		if calls.Add(1) == 1 {
			return taken, nil
		}
		return pick()
	}
	t.Cleanup(func() { componentPort = pick })

	var mu sync.Mutex
	var logs []string
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(ctx, Options{Logf: func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, fmt.Sprintf(format, args...))
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	mu.Lock()
	log := strings.Join(logs, "\n")
	mu.Unlock()
	if want := fmt.Sprintf("kube-controller-manager: port %d was taken", taken); !strings.Contains(log, want) {
		t.Errorf("start-up log does not say %q:\n%s", want, log)
	}
	if err := c.alive(); err != nil {
		t.Fatalf("control plane not alive after the retry: %v", err)
	}
	if n := len(c.PIDs()); n != 5 {
		t.Errorf("%d components recorded, want 5 (the exited attempt dropped): %v", n, c.PIDs())
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("%d ports picked, want 3 (taken, the controller manager's second, the scheduler's)", got)
	}
}
