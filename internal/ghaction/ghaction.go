// Package ghaction is the one place where a Gantry stage meets the GitHub
// Actions runtime: it decodes INPUT_* variables into a stage's typed Inputs,
// writes outputs, the job summary, annotations and log groups, and masks
// secrets. Stage packages never read the environment themselves.
package ghaction

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sethvargo/go-githubactions"
)

// Logger is what stage packages use to talk to the person reading a run log.
// It is deliberately small so tests can capture or discard it.
type Logger interface {
	// Infof writes one line to the log.
	Infof(format string, args ...any)
	// Warningf writes a warning annotation.
	Warningf(format string, args ...any)
	// Group starts a collapsible section; the returned func ends it.
	Group(title string) (end func())
}

// Discard is a Logger that drops everything; the default for library callers
// that do not care about logs.
type Discard struct{}

func (Discard) Infof(string, ...any)    {}
func (Discard) Warningf(string, ...any) {}
func (Discard) Group(string) func()     { return func() {} }

// Env wraps a go-githubactions Action with Gantry's conventions.
type Env struct {
	*githubactions.Action
	getenv func(string) string
	w      io.Writer
}

// New returns an Env reading variables through getenv and writing workflow
// commands to w. Pass os.Getenv and os.Stdout in main; tests pass fakes.
func New(getenv func(string) string, w io.Writer) *Env {
	if getenv == nil {
		getenv = os.Getenv
	}
	if w == nil {
		w = os.Stdout
	}
	a := githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(w))
	return &Env{Action: a, getenv: getenv, w: w}
}

// Lookup returns a variable of the runner environment (GITHUB_*, RUNNER_*,
// SOURCE_DATE_EPOCH ...). Only cmd/ code should need it.
func (e *Env) Lookup(key string) string { return e.getenv(key) }

// Infof writes a plain log line. go-githubactions' Infof does the same, but we
// keep the method on Env so Env satisfies Logger without surprises.
func (e *Env) Infof(format string, args ...any) { e.Action.Infof(format, args...) }

// Warningf writes a warning annotation.
func (e *Env) Warningf(format string, args ...any) { e.Action.Warningf(format, args...) }

// Group starts a ::group:: section and returns the func that ends it.
func (e *Env) Group(title string) func() {
	e.Action.Group(title)
	return e.Action.EndGroup
}

// Fail reports err as an error annotation (go-githubactions escapes newlines,
// so a multi-line error stays in one annotation).
func (e *Env) Fail(err error) {
	e.Action.Errorf("%s", err)
}

// Summary appends Markdown to the job summary when the runner provides one
// (GITHUB_STEP_SUMMARY); outside Actions it is printed to the log instead, so
// a local run shows the same table.
func (e *Env) Summary(markdown string) {
	if e.getenv("GITHUB_STEP_SUMMARY") == "" {
		fmt.Fprint(e.w, markdown)
		return
	}
	e.AddStepSummary(markdown)
}

// Main is every stage binary's main: a context cancelled by SIGINT/SIGTERM
// (the runner's cancel), run with the process environment, and on error an
// error annotation and exit code 1. Only main functions call it.
func Main(run func(ctx context.Context, env *Env) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := New(os.Getenv, os.Stdout)
	err := run(ctx, env)
	stop()
	if err != nil {
		env.Fail(err)
		os.Exit(1)
	}
}
