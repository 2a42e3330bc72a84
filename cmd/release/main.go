// Command gantry-release creates or updates the GitHub Release of a tag:
// notes from the changelog (or GitHub's generated notes), the image by
// digest with the commands to verify it, and the build's files as assets,
// published only once every asset is uploaded.
package main

import (
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ghrelease"
)

func main() { ghaction.Main(ghrelease.Stage) }
