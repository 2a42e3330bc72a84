// Command gantry is Gantry's command line: gantry run runs the pipeline
// anywhere from gantry.yaml, gantry config checks and shows that file; for
// Gantry's own development it checks the project's action.yml files
// (gantry check-actions) and embeds a release into them (gantry
// embed-release). The demo is a separate developer's program
// (internal/cmd/gantry-demo, make demo) that ships in no release.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gantry-ci/gantry/internal/ghaction"
)

const usage = `usage: gantry <command> [flags]

commands:
  run             the pipeline here (build, sbom, scan gate, sign, deploy, analyze,
                  notify) from gantry.yaml, on any machine or CI (gantry run -h)
  check-actions   check every action.yml (inputs mapped to INPUT_*, Go inputs and
                  outputs in sync, no expressions in run:, actions pinned by SHA)
  embed-release   write a release's version, download URL and the SHA256 of its
                  binary archives into every action.yml (Gantry's release commit)
  config          check gantry.yaml, show the effective inputs, print its schema
                  (gantry config check|show [stage]|schema)
  version         the version, commit and Go version of this binary (also --version)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gantry:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "demo":
		return fmt.Errorf("the demo is its own program now: make demo (bin/gantry-demo)")
	case "run":
		return runCmd(ctx, os.Stdout, os.Stderr, args[1:])
	case "config":
		return configCmd(os.Stdout, args[1:])
	case "check-actions":
		fs := flag.NewFlagSet("check-actions", flag.ExitOnError)
		root := fs.String("root", ".", "the Gantry source tree")
		fs.Parse(args[1:])
		return checkActions(os.Stdout, *root)
	case "embed-release":
		fs := flag.NewFlagSet("embed-release", flag.ExitOnError)
		root := fs.String("root", ".", "the Gantry source tree")
		version := fs.String("version", "", "the release tag, e.g. v1.2.3")
		url := fs.String("url", "", "base URL of the release's assets (…/releases/download/<tag>)")
		sums := fs.String("sums", "", "sha256sum file of the release's archives")
		fs.Parse(args[1:])
		return embedRelease(os.Stdout, *root, *version, *url, *sums)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return nil
	case "version", "--version":
		fmt.Println("gantry", ghaction.Version())
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
