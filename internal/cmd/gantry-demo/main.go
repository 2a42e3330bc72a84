// Command gantry-demo runs the pipeline's stages on embedded defaults
// (make demo): the sample app built for linux/amd64 and linux/arm64 and
// pushed to an embedded registry by gantry-build exactly as the action does,
// then SBOM, scan, sign, notify, release and deploy.
//
// It is a developer's program, not part of a release: its embedded
// registry, Slack and GitHub stand-ins come from the test servers under
// internal/*test, which nothing Gantry ships may link (make lint checks).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	fs := flag.NewFlagSet("gantry-demo", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gantry-demo [flags]\n\nruns the pipeline on embedded defaults (make demo)\n\n")
		fs.PrintDefaults()
	}
	root := fs.String("root", ".", "the Gantry source tree (for testdata/)")
	bin := fs.String("bin", "bin", "directory holding the gantry-* binaries")
	keep := fs.Bool("keep", false, "keep the work directory")
	fs.Parse(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := demo(ctx, os.Stdout, *root, *bin, *keep)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gantry-demo:", err)
		os.Exit(1)
	}
}
