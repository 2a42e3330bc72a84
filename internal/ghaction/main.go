package ghaction

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/gantry-ci/gantry/actions"
	"github.com/gantry-ci/gantry/internal/config"
)

// Environment variables that configure a stage binary outside Actions, as
// its flags do (flags win).
const (
	EnvOutputFormat = "GANTRY_OUTPUT_FORMAT" // text or json (--output)
	EnvSummaryFile  = "GANTRY_SUMMARY_FILE"  // a file for the job summary (--summary)
)

// Usage is what every stage binary prints for --help, after its own name.
const Usage = `Inputs are environment variables, as GitHub hands them to an action:
INPUT_<NAME> with the input's name upper-cased (INPUT_IMAGE, INPUT_REGISTRY-PASSWORD).
The action's action.yml and the README list every input and output.

An input left empty is read from gantry.yaml (or .gantry.yaml) in the workspace
(GITHUB_WORKSPACE, else the working directory): the stage's section, for deploy first
deploy.environments.<environment>. INPUT_CONFIG names another file; "none" reads none.

Under GitHub Actions (GITHUB_ACTIONS=true or GITHUB_OUTPUT set) outputs go to the
GITHUB_OUTPUT file and the summary to GITHUB_STEP_SUMMARY. Anywhere else the log is
plain text on stderr (secrets shown as ***) and the outputs are printed on stdout.

flags:
  --output text|json   outputs on stdout as name=value lines (multi-line values as
                       name<<DELIMITER blocks, the GITHUB_OUTPUT format), or as one
                       JSON object of strings; also GANTRY_OUTPUT_FORMAT
  --summary FILE       append the Markdown job summary to FILE instead of stderr;
                       also GANTRY_SUMMARY_FILE
  --input NAME         print NAME's effective value (the step's INPUT_ variable, else
                       gantry.yaml, else the default) and exit
  --version            the version, commit and Go version this binary was built with
  -h, --help           this text

Exit status: 0 on success, 1 on failure (the error is the last log line).
`

// Flags are a stage binary's command-line settings.
type Flags struct {
	Output  string // FormatText or FormatJSON
	Summary string // file for the summary outside Actions
	Help    bool
	Version bool
	Input   string // --input NAME: print that input's effective value and exit
}

// ParseFlags reads a stage binary's arguments, with getenv's
// GANTRY_OUTPUT_FORMAT and GANTRY_SUMMARY_FILE as defaults.
func ParseFlags(args []string, getenv func(string) string) (Flags, error) {
	f := Flags{Output: getenv(EnvOutputFormat), Summary: getenv(EnvSummaryFile)}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		switch name {
		case "-h", "-help", "--help":
			f.Help = true
			continue
		case "--version", "-version":
			f.Version = true
			continue
		case "--output", "-output", "--summary", "-summary", "--input", "-input":
		default:
			return f, fmt.Errorf("unknown argument %q: stages take their inputs as INPUT_<NAME> environment variables (or from gantry.yaml); flags are --output text|json, --summary FILE, --input NAME, --version and --help", args[i])
		}
		if !hasVal {
			if i+1 == len(args) {
				return f, fmt.Errorf("flag %s needs a value (see --help)", name)
			}
			i++
			val = args[i]
		}
		switch strings.TrimLeft(name, "-") {
		case "output":
			f.Output = val
		case "input":
			f.Input = val
		default:
			f.Summary = val
		}
	}
	switch f.Output {
	case "":
		f.Output = FormatText
	case FormatText, FormatJSON:
	default:
		return f, fmt.Errorf("output format %q (--output or %s): use text or json", f.Output, EnvOutputFormat)
	}
	return f, nil
}

// Main is every stage binary's main: flags, a context cancelled by
// SIGINT/SIGTERM (the runner's cancel), run with the process environment,
// outputs flushed, and on error an error annotation and exit code 1. A
// panic in run is reported the same way, naming the stage and the run.
func Main(run func(ctx context.Context, env *Env) error) {
	os.Exit(MainWith(os.Args, os.Getenv, os.Stdout, os.Stderr, run))
}

// MainWith is Main with the process's arguments, environment and streams
// passed in; it returns the exit code.
func MainWith(args []string, getenv func(string) string, stdout, stderr io.Writer, run func(ctx context.Context, env *Env) error) int {
	stage := filepath.Base(args[0])
	flags, ferr := ParseFlags(args[1:], getenv)
	if flags.Version && ferr == nil {
		fmt.Fprintf(stdout, "%s %s\n", stage, Version())
		return 0
	}
	if flags.Help {
		fmt.Fprintf(stdout, "usage: %s [--output text|json] [--summary FILE] [--input NAME] [--version] [--help]\n\n", stage)
		// The action's own metadata, when this binary is a stage's.
		if meta, ok := actions.Metadata(strings.TrimPrefix(stage, "gantry-")); ok {
			if h, err := actionHelp(strings.TrimPrefix(stage, "gantry-"), meta); err == nil {
				fmt.Fprintf(stdout, "%s\n", h)
			}
		}
		fmt.Fprint(stdout, Usage)
		return 0
	}
	o := Options{Getenv: getenv, Log: stdout, OutputFormat: flags.Output, SummaryFile: flags.Summary}
	if !InActions(getenv) {
		// stdout is for outputs only, so a script can read them.
		o.Plain, o.Log, o.Stdout = true, stderr, stdout
	}
	env := NewWith(o)
	if ferr != nil {
		env.Fail(fmt.Errorf("%s: %w", stage, ferr))
		return 1
	}
	name := strings.TrimPrefix(stage, "gantry-")
	cfg, err := LoadConfig(getenv, name)
	if err != nil {
		env.Fail(fmt.Errorf("%s: %w", stage, err))
		return 1
	}
	if cfg != nil {
		env.UseConfig(name, cfg)
	}
	if flags.Input != "" {
		schema, err := config.Embedded()
		if err != nil {
			env.Fail(err)
			return 1
		}
		in, ok := schema.Input(name, flags.Input)
		if !ok && flags.Input != "config" {
			env.Fail(fmt.Errorf("%s: --input %q: no such input (see --help)", stage, flags.Input))
			return 1
		}
		v, _ := env.Input(flags.Input, in.Default)
		fmt.Fprintln(stdout, v)
		return 0
	}
	if cfg != nil {
		env.Infof("Inputs the step leaves empty come from %s.", cfg.Path)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = Guard(ctx, stage, env, run)
	stop()
	err = errors.Join(err, env.Flush())
	if werr := env.Err(); werr != nil && !errors.Is(err, werr) {
		err = errors.Join(err, werr)
	}
	if err != nil {
		env.Fail(err)
		return 1
	}
	return 0
}

// Guard runs run and turns a panic into an error naming the stage and the
// run, with the stack trace in the log only when RUNNER_DEBUG=1. Main and
// gantry run (each stage in one process) use it.
func Guard(ctx context.Context, stage string, env *Env, run func(ctx context.Context, env *Env) error) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if env.Lookup("RUNNER_DEBUG") == "1" {
			env.Infof("%s", debug.Stack())
		}
		hint := "re-run with RUNNER_DEBUG=1 for the stack trace"
		if env.Lookup("RUNNER_DEBUG") == "1" {
			hint = "the stack trace is in the log above"
		}
		err = fmt.Errorf("%s crashed (%v) in %s: this is a bug in Gantry; %s and report it", stage, r, runDescription(env.Lookup), hint)
	}()
	return run(ctx, env)
}

// runDescription names the run for an error: workflow, job and run ID under
// Actions, else "a local run".
func runDescription(getenv func(string) string) string {
	var parts []string
	for _, kv := range [][2]string{{"workflow", "GITHUB_WORKFLOW"}, {"job", "GITHUB_JOB"}, {"run", "GITHUB_RUN_ID"}, {"repository", "GITHUB_REPOSITORY"}} {
		if v := getenv(kv[1]); v != "" {
			parts = append(parts, fmt.Sprintf("%s %q", kv[0], v))
		}
	}
	if len(parts) == 0 {
		return "a run outside GitHub Actions"
	}
	return strings.Join(parts, ", ")
}

// fileCommand renders one output in the GITHUB_OUTPUT format: name=value,
// or a heredoc with a random delimiter for a value with line breaks (a
// fixed delimiter could be forged by the value).
func fileCommand(name, value string) string {
	if !strings.ContainsAny(value, "\r\n") {
		return name + "=" + value + "\n"
	}
	var delim string
	for delim == "" || strings.Contains(value, delim) {
		b := make([]byte, 12)
		rand.Read(b)
		delim = "ghadelimiter_" + hex.EncodeToString(b)
	}
	return name + "<<" + delim + "\n" + value + "\n" + delim + "\n"
}

// jsonObject renders outputs as one JSON object of strings, keys sorted; a
// later value of the same name wins, as in GITHUB_OUTPUT.
func jsonObject(outs []output) []byte {
	m := map[string]string{}
	for _, o := range outs {
		m[o.name] = o.value
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(m[k])
		b.WriteString("\n  ")
		b.Write(kb)
		b.WriteString(": ")
		b.Write(vb)
	}
	if len(keys) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// redactor writes to w with every masked value replaced by ***. Writes are
// redacted one call at a time; each log line is one call.
type redactor struct {
	w       io.Writer
	secrets *redactor // share another redactor's values; nil means own
	mu      sync.Mutex
	values  []string
}

func (r *redactor) add(v string) {
	if r.secrets != nil {
		r.secrets.add(v)
		return
	}
	if strings.TrimSpace(v) == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values = append(r.values, v)
	// Longest first, so a value that contains another is hidden whole.
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
}

func (r *redactor) redact(s string) string {
	if r.secrets != nil {
		return r.secrets.redact(s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, "***")
	}
	return s
}

func (r *redactor) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
