package testproc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The test runs in internal/testproc, two levels below the root.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Dir(filepath.Dir(wd)); root != want {
		t.Errorf("RepoRoot() = %s, want %s", root, want)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "module github.com/gantry-ci/gantry\n") {
		t.Errorf("%s/go.mod does not declare module github.com/gantry-ci/gantry", root)
	}
}

func TestProc(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(Spec{
		Bin:  "/bin/sh",
		Args: []string{"-c", "echo hi; sleep 30"},
		Env:  []string{"PATH=/usr/bin:/bin"},
		Dir:  dir,
		Log:  filepath.Join(dir, "sh.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if p.Name() != "sh" || p.Pid() <= 0 {
		t.Errorf("Name() = %q, Pid() = %d", p.Name(), p.Pid())
	}

	deadline := time.Now().Add(10 * time.Second)
	for p.Tail(5) != "hi" {
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("log: %q, exited: %v", p.Tail(5), p.Exited())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p.Exited() {
		t.Fatal("exited before Stop")
	}

	// sh dies of the SIGTERM; SIGKILL after the 5 s grace would mean the
	// TERM was not delivered.
	began := time.Now()
	p.Stop()
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Stop took %v", d)
	}
	if !p.Exited() {
		t.Error("Exited() = false after Stop")
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done() not closed after Stop")
	}
	if err := p.Wait(); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("Wait() = %v, want death by SIGTERM", err)
	}
	p.Stop() // idempotent

	if got := (&Proc{logPath: filepath.Join(dir, "missing")}).Tail(3); !strings.HasPrefix(got, "(cannot read log:") {
		t.Errorf("Tail of a missing log = %q", got)
	}
}

func TestStartMissingBinary(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(Spec{Name: "nope", Bin: filepath.Join(dir, "nope"), Log: filepath.Join(dir, "nope.log")})
	if err == nil || !strings.HasPrefix(err.Error(), "starting nope (") {
		t.Errorf("Start of a missing binary: %v", err)
	}
}
