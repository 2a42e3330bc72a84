package analysis_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/internal/analysis"
)

// TestURLCredentialsNotEchoed: a prometheus-url carrying a user and
// password (https://user:pass@host/) that cannot be reached gives an
// error, a reason, a summary and a decision log that name the URL without
// the password.
func TestURLCredentialsNotEchoed(t *testing.T) {
	const password = "planted-url-password-41c9"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	in := inputs(t, "http://gantry:"+password+"@"+addr+"/", "creds")
	in.Timeout, in.Window, in.MaxHold = 10*time.Second, 2*time.Second, 4*time.Second
	progress := &lines{}
	in.Log = progress
	out, err := analysis.Run(t.Context(), in)
	log, _ := os.ReadFile(in.DecisionLog)
	all := strings.Join([]string{errString(err), out.Reason, out.Why, out.Summary, string(log), progress.String()}, "\n")
	if !strings.Contains(all, addr) {
		t.Fatalf("nothing says which Prometheus failed (%s):\n%s", addr, all)
	}
	if strings.Contains(all, password) {
		t.Errorf("the URL's password is echoed:\n%s", all)
	}
}

// lines is a ghaction.Logger that keeps what it is told.
type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Infof(f string, a ...any)    { l.add(fmt.Sprintf(f, a...)) }
func (l *lines) Warningf(f string, a ...any) { l.add(fmt.Sprintf(f, a...)) }
func (l *lines) Group(title string) func()   { l.add(title); return func() {} }
func (l *lines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s + "\n")
}
func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
