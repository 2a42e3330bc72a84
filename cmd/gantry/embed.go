package main

import (
	"fmt"
	"io"
	"os"

	"github.com/gantry-ci/gantry/internal/dist"
)

func embedRelease(w io.Writer, root, version, url, sumsPath string) error {
	if sumsPath == "" {
		return fmt.Errorf("embed-release: -sums is required (the sha256sum file of the release archives)")
	}
	f, err := os.Open(sumsPath)
	if err != nil {
		return fmt.Errorf("embed-release: %w", err)
	}
	defer f.Close()
	sums, err := dist.ParseSums(f)
	if err != nil {
		return fmt.Errorf("embed-release: %s: %w", sumsPath, err)
	}
	changed, err := dist.Embed(root, dist.Release{Version: version, URL: url, Sums: sums})
	if err != nil {
		return fmt.Errorf("embed-release: %w", err)
	}
	if len(changed) == 0 {
		return fmt.Errorf("embed-release: no action.yml under %s has a %q block", root, "# gantry:release")
	}
	for _, p := range changed {
		fmt.Fprintln(w, "embedded", version, "in", p)
	}
	return nil
}
