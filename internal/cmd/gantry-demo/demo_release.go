package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/ghrelease/ghreleasetest"
)

// demoRelease runs gantry-release as a tag-push workflow's release job
// would, against a local stand-in of the GitHub releases API: the release
// for v1.2.3 with the CHANGELOG section as notes, the SBOMs, the signed
// release record and VERIFY.md. It prints the assets and VERIFY.md's
// commands.
func demoRelease(ctx context.Context, w io.Writer, root, bin, work string) error {
	step(w, "Release: gantry-release makes the GitHub Release of v1.2.3 (a local stand-in of the releases API)")
	var leaks []string
	gh := ghreleasetest.New(func(format string, args ...any) { leaks = append(leaks, fmt.Sprintf(format, args...)) })
	defer gh.Close()
	env := map[string]string{
		"INPUT_TOKEN":     gh.Token,
		"INPUT_API-URL":   gh.URL,
		"INPUT_CHANGELOG": filepath.Join(root, "testdata", "release", "CHANGELOG.md"),
		// What gantry run wrote (work is the app's repository).
		"INPUT_RELEASE-FILE": filepath.Join(work, ".gantry", "run", "gantry-release.json"),
		"INPUT_ASSETS":       filepath.Join(work, ".gantry", "run", "sbom", "*.json"),
		"INPUT_CONFIG":       "none",
		// gantry run signed with its local key pair; a project publishes
		// its cosign.pub in its repository.
		"INPUT_VERIFY-KEY":  ".gantry/local-signing.pub",
		"GITHUB_EVENT_NAME": "push",
		"GITHUB_EVENT_PATH": filepath.Join(root, "testdata", "events", "push-tag.json"),
		"GITHUB_REF":        "refs/tags/v1.2.3",
		"GITHUB_REF_NAME":   "v1.2.3",
		"GITHUB_SHA":        "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"GITHUB_REPOSITORY": "acme/Prompt-Builder",
		"GITHUB_SERVER_URL": "https://github.com",
	}
	out, err := runStage(ctx, io.Discard, filepath.Join(bin, "gantry-release"), work, env)
	if err != nil {
		return err
	}
	if len(leaks) > 0 {
		return fmt.Errorf("gantry-release: %s", strings.Join(leaks, "; "))
	}
	rels := gh.ReleasesForTag("acme/Prompt-Builder", "v1.2.3")
	if len(rels) != 1 {
		return fmt.Errorf("the stand-in holds %d releases for v1.2.3, want 1", len(rels))
	}
	rel := rels[0]
	fmt.Fprintf(w, "  release %s (id %s), notes from the %s, published: %v\n", out["url"], out["release-id"], out["notes-source"], !rel.Draft)
	for _, a := range rel.Assets {
		fmt.Fprintf(w, "    %-34s %7d bytes\n", a.Name, len(a.Data))
	}
	verify, ok := rel.Asset("VERIFY.md")
	if !ok {
		return fmt.Errorf("the release has no VERIFY.md")
	}
	fmt.Fprintln(w, "  VERIFY.md's commands:")
	for _, line := range strings.Split(string(verify.Data), "\n") {
		if strings.HasPrefix(line, "cosign ") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
	return nil
}
