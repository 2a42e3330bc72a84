// Package ghaction is the one place where a Gantry stage meets its runner:
// it decodes INPUT_* variables into a stage's typed Inputs, writes outputs,
// the job summary, annotations and log groups, and masks secrets; Env.Run
// gives the run context. Stage packages read the environment only through
// an Env, in their Stage function.
//
// Under GitHub Actions (or a runner that speaks its protocol: act, Gitea,
// Forgejo) the log carries workflow commands and outputs go to the file
// named by GITHUB_OUTPUT. Anywhere else (a shell, GitLab, Jenkins, a
// script) the log is plain text on stderr with secrets replaced by ***,
// and outputs are printed on stdout.
package ghaction

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/gantry-ci/gantry/internal/config"
	"github.com/gantry-ci/gantry/internal/runctx"
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

// Output formats for outputs printed on stdout (outside Actions).
const (
	FormatText = "text" // name=value lines, name<<DELIMITER blocks for multi-line values
	FormatJSON = "json" // one JSON object of strings, written when the stage ends
)

// Options configures an Env. The zero value of every field has a default.
type Options struct {
	// Getenv reads the runner environment; default os.Getenv.
	Getenv func(string) string
	// Log receives log lines and annotations; default os.Stdout.
	Log io.Writer
	// Stdout receives outputs when no GITHUB_OUTPUT file is given; default Log.
	Stdout io.Writer
	// Plain writes the log without workflow commands: groups as "== title",
	// "warning: " and "error: " prefixes, and every masked value replaced by
	// *** (outside Actions nothing else would hide it).
	Plain bool
	// OutputFormat is FormatText (default) or FormatJSON, for outputs on Stdout.
	OutputFormat string
	// SummaryFile receives the job summary when the runner gives no
	// GITHUB_STEP_SUMMARY; empty means the log.
	SummaryFile string
	// OnOutput, when set, receives every output instead of GITHUB_OUTPUT
	// or stdout: gantry run hands one stage's outputs to the next.
	OnOutput func(name, value string)
	// Run is the CI run the stage works for; nil reads it from Getenv
	// (runctx.FromEnv) when the stage first asks. gantry run builds one
	// for all its stages.
	Run *runctx.Run
}

// Env wraps a go-githubactions Action with Gantry's conventions. Unlike
// go-githubactions, nothing here panics when a runner file is missing or
// unwritable: outputs fall back to stdout, and a failed write is an error
// (see Err) that names the variable.
type Env struct {
	a      *githubactions.Action
	getenv func(string) string
	log    io.Writer // already redacting in plain mode
	stdout io.Writer
	plain  bool
	format string
	sumTo  string
	onOut  func(name, value string)
	red    *redactor
	stage  string       // the stage whose section of cfg applies
	cfg    *config.File // gantry.yaml, when the stage reads one

	mu      sync.Mutex
	err     error    // the first failed write to a runner file
	pending []output // outputs for the JSON object on stdout

	runOnce sync.Once
	run     *runctx.Run // Options.Run, else read by Run
	runErr  error
}

type output struct{ name, value string }

// New returns an Env reading variables through getenv and writing workflow
// commands (and, without GITHUB_OUTPUT, outputs) to w. Tests pass fakes;
// main uses Main.
func New(getenv func(string) string, w io.Writer) *Env {
	return NewWith(Options{Getenv: getenv, Log: w})
}

// NewWith returns an Env configured by o.
func NewWith(o Options) *Env {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Log == nil {
		o.Log = os.Stdout
	}
	if o.Stdout == nil {
		o.Stdout = o.Log
	}
	if o.OutputFormat == "" {
		o.OutputFormat = FormatText
	}
	e := &Env{getenv: o.Getenv, stdout: o.Stdout, plain: o.Plain, format: o.OutputFormat, sumTo: o.SummaryFile, onOut: o.OnOutput, run: o.Run}
	e.log = o.Log
	if o.Plain {
		e.red = &redactor{w: o.Log}
		e.log = e.red
		e.stdout = &redactor{w: o.Stdout, secrets: e.red}
	}
	e.a = githubactions.New(githubactions.WithGetenv(o.Getenv), githubactions.WithWriter(e.log))
	return e
}

// InActions says whether getenv describes a GitHub Actions step (or a
// runner that speaks its protocol): GITHUB_ACTIONS=true or a GITHUB_OUTPUT
// file.
func InActions(getenv func(string) string) bool {
	return getenv("GITHUB_ACTIONS") == "true" || getenv("GITHUB_OUTPUT") != ""
}

// Lookup returns a variable of the runner environment (RUNNER_DEBUG,
// SOURCE_DATE_EPOCH, the variables a secrets input names ...). Only a
// stage's Stage function should need it; the run itself comes from Run.
func (e *Env) Lookup(key string) string { return e.getenv(key) }

// GetInput returns the action input name, trimmed ("" when unset).
func (e *Env) GetInput(name string) string { return e.a.GetInput(name) }

// Run returns the CI run the stage works for: Options.Run when given, else
// the run the environment describes (runctx.FromEnv, started at the first
// call), read once and kept. The Run is never nil; with an error it holds
// what could be read, for a stage that can do with less.
func (e *Env) Run() (*runctx.Run, error) {
	e.runOnce.Do(func() {
		if e.run == nil {
			e.run, e.runErr = runctx.FromEnv(e.getenv, time.Now())
		}
	})
	return e.run, e.runErr
}

// AddMask hides value in every later log line: a mask command for the
// runner, or replacement by *** in plain mode.
func (e *Env) AddMask(value string) {
	if e.plain {
		e.red.add(value)
		return
	}
	e.a.AddMask(value)
}

// Infof writes a plain log line.
func (e *Env) Infof(format string, args ...any) { e.a.Infof(format, args...) }

// Warningf writes a warning annotation.
func (e *Env) Warningf(format string, args ...any) {
	if e.plain {
		e.line("warning: " + fmt.Sprintf(format, args...))
		return
	}
	e.a.Warningf(format, args...)
}

// Group starts a ::group:: section and returns the func that ends it.
func (e *Env) Group(title string) func() {
	if e.plain {
		e.line("== " + title)
		return func() {}
	}
	e.a.Group(title)
	return e.a.EndGroup
}

// Fail reports err as an error annotation (go-githubactions escapes newlines,
// so a multi-line error stays in one annotation).
func (e *Env) Fail(err error) {
	if e.plain {
		e.line("error: " + err.Error())
		return
	}
	e.a.Errorf("%s", err)
}

func (e *Env) line(s string) {
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	io.WriteString(e.log, s)
}

// Err returns the first failed write to a runner file (GITHUB_OUTPUT,
// GITHUB_STEP_SUMMARY), or nil. Main turns it into a failed step.
func (e *Env) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *Env) fail(err error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = err
	}
	return err
}

// SetOutput writes one step output: to the GITHUB_OUTPUT file when the
// runner names one, else to stdout in the Env's output format.
func (e *Env) SetOutput(name, value string) error {
	if e.onOut != nil {
		e.onOut(name, value)
		return nil
	}
	if path := e.getenv("GITHUB_OUTPUT"); path != "" {
		if err := appendFile(path, fileCommand(name, value)); err != nil {
			return e.fail(fmt.Errorf("writing the output %q to GITHUB_OUTPUT (%s): %w; the runner's output file must be writable", name, path, err))
		}
		return nil
	}
	if e.format == FormatJSON {
		e.mu.Lock()
		e.pending = append(e.pending, output{name, value})
		e.mu.Unlock()
		return nil
	}
	if _, err := io.WriteString(e.stdout, fileCommand(name, value)); err != nil {
		return e.fail(fmt.Errorf("writing the output %q to stdout: %w", name, err))
	}
	return nil
}

// Flush writes what SetOutput held back: the JSON object of outputs on
// stdout (also "{}" when there were none, so a caller can always parse it).
func (e *Env) Flush() error {
	if e.format != FormatJSON || e.getenv("GITHUB_OUTPUT") != "" {
		return nil
	}
	e.mu.Lock()
	pending := e.pending
	e.pending = nil
	e.mu.Unlock()
	b := jsonObject(pending)
	if _, err := e.stdout.Write(b); err != nil {
		return e.fail(fmt.Errorf("writing the outputs to stdout: %w", err))
	}
	return nil
}

// Summary appends Markdown to the job summary when the runner provides one
// (GITHUB_STEP_SUMMARY); outside Actions it goes to the summary file of
// the options, or to the log, so a local run shows the same table. A failed
// write is kept for Err.
func (e *Env) Summary(markdown string) {
	if path := e.getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := appendFile(path, markdown+"\n"); err != nil {
			e.fail(fmt.Errorf("writing the job summary to GITHUB_STEP_SUMMARY (%s): %w; the runner's summary file must be writable", path, err))
		}
		return
	}
	if e.sumTo != "" {
		if e.plain {
			markdown = e.red.redact(markdown)
		}
		if err := appendFile(e.sumTo, markdown+"\n"); err != nil {
			e.fail(fmt.Errorf("writing the job summary to %s: %w", e.sumTo, err))
		}
		return
	}
	io.WriteString(e.log, markdown)
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(s)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}
