package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gantry-ci/gantry/internal/config"
	"github.com/gantry-ci/gantry/internal/stages"
)

const configUsage = `usage: gantry config <command> [flags]

commands:
  check [--file F]                      check gantry.yaml (or F) against the schema
  show [stage] [--file F] [--environment E]
                                        every input's effective value and where it
                                        comes from (file line or default)
  schema                                print gantry.yaml's JSON Schema
`

// configCmd runs gantry config.
func configCmd(w io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, configUsage)
		return fmt.Errorf("config: no command given")
	}
	schema, err := stages.ConfigSchema()
	if err != nil {
		return err
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("config "+cmd, flag.ContinueOnError)
	file := fs.String("file", "", "the config file (default: gantry.yaml or .gantry.yaml here)")
	environment := fs.String("environment", "", "the deploy environment whose block applies")
	// Flags may come before or after the stage name.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("config %s: %w", cmd, err)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	load := func() (*config.File, error) {
		path, err := config.Locate(*file, ".")
		if err != nil {
			return nil, err
		}
		if path == "" {
			return nil, fmt.Errorf("no %s here: write one (see the README's quick start) or pass --file", strings.Join(config.FileNames, " or "))
		}
		return config.Load(path, schema)
	}
	switch cmd {
	case "schema":
		b, err := schema.JSON()
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "check":
		f, err := load()
		if err != nil {
			return err
		}
		var secs []string
		for _, s := range config.Sections() {
			if f.Has(s) {
				secs = append(secs, s)
			}
		}
		fmt.Fprintf(w, "%s: ok (sections: %s", f.Path, strings.Join(secs, ", "))
		if envs := f.Environments(); len(envs) > 0 {
			fmt.Fprintf(w, "; deploy environments: %s", strings.Join(envs, ", "))
		}
		fmt.Fprintln(w, ")")
		return nil
	case "show":
		f, err := load()
		if err != nil {
			return err
		}
		if *environment != "" && !f.HasEnvironment(*environment) {
			return fmt.Errorf("config show: --environment %q: %s has no deploy.environments.%s (it has: %s)", *environment, f.Path, *environment, strings.Join(f.Environments(), ", "))
		}
		want := ""
		if len(positional) > 0 {
			want = config.SectionOf(positional[0])
			if want == "" {
				want = positional[0]
			}
			if schema.Section(want) == nil {
				return fmt.Errorf("config show: no stage %q (stages: build, sbom, scan, sign, deploy, analyze, notify, release)", positional[0])
			}
		}
		for _, name := range config.Sections() {
			sec := schema.Section(name)
			if sec == nil || (want != "" && want != name) {
				continue
			}
			fmt.Fprintf(w, "%s (gantry-%s):\n", name, sec.Stage)
			for _, in := range sec.Inputs {
				env := *environment
				if name == "deploy" && env == "" {
					env, _ = config.Resolve(f, sec.Stage, "", "environment", "", "")
				}
				v, src := config.Resolve(f, sec.Stage, env, in.Name, "", in.Default)
				switch {
				case in.Secret:
					fmt.Fprintf(w, "  %-26s (secret: pass it to the step)\n", in.Name)
				case v == "" && in.Required:
					fmt.Fprintf(w, "  %-26s (required: the step or this file must set it)\n", in.Name)
				case v == "":
				default:
					fmt.Fprintf(w, "  %-26s %s  [%s]\n", in.Name, strings.ReplaceAll(v, "\n", ", "), src)
				}
			}
		}
		return nil
	}
	fmt.Fprint(os.Stderr, configUsage)
	return fmt.Errorf("config: unknown command %q", cmd)
}
