package ghaction

import (
	"fmt"
	"os"
	"strings"

	"github.com/gantry-ci/gantry/internal/config"
)

// LoadConfig finds and checks the gantry.yaml a stage reads: the file its
// config input names (INPUT_CONFIG; "none" reads none), else gantry.yaml or
// .gantry.yaml in the workspace (GITHUB_WORKSPACE, else the working
// directory). nil without a file, or for a binary that is no stage's.
func LoadConfig(getenv func(string) string, stage string) (*config.File, error) {
	if config.SectionOf(stage) == "" {
		return nil, nil
	}
	dir := getenv("GITHUB_WORKSPACE")
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	path, err := config.Locate(getenv(InputName("config")), dir)
	if err != nil || path == "" {
		return nil, err
	}
	schema, err := config.Embedded()
	if err != nil {
		return nil, err
	}
	f, err := config.Load(path, schema)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return f, nil
}

// UseConfig makes the Env read the inputs its steps leave empty from f, as
// stage's (see config.Resolve). Decode then also writes a summary table of
// where every input it set came from.
func (e *Env) UseConfig(stage string, f *config.File) {
	e.stage, e.cfg = stage, f
}

// Config returns the file UseConfig gave (nil when none).
func (e *Env) Config() *config.File { return e.cfg }

// Input returns an input's effective value after the config file, with
// def as the default, and where it came from.
func (e *Env) Input(name, def string) (string, config.Source) {
	environment := ""
	if e.cfg != nil && config.SectionOf(e.stage) == "deploy" && name != "environment" {
		environment, _ = e.Input("environment", "")
	}
	return config.Resolve(e.cfg, e.stage, environment, name, e.GetInput(name), def)
}

// provenance is one row of the "where each input came from" table.
type provenance struct {
	name, value string
	src         config.Source
}

// provenanceSummary renders Decode's rows as a collapsed Markdown table.
func (e *Env) provenanceSummary(rows []provenance) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary>gantry-%s inputs: step, %s or default</summary>\n\n", e.stage, e.cfg.Path)
	b.WriteString("| Input | Value | From |\n|---|---|---|\n")
	for _, r := range rows {
		v := r.value
		if first, _, multi := strings.Cut(v, "\n"); multi {
			v = first + " …"
		}
		if len(v) > 80 {
			v = v[:77] + "…"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.name, mdCell(v), r.src)
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

func mdCell(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.NewReplacer("|", `\|`, "`", "'").Replace(s) + "`"
}
