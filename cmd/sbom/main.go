// Command gantry-sbom writes an SPDX and a CycloneDX SBOM for every platform
// of a pushed image, read straight from the registry by digest (no Docker),
// and for every directory or file of its paths input. It reads its inputs
// as GitHub hands them to actions (INPUT_IMAGE, INPUT_REGISTRY-PASSWORD
// ...), so it runs the same in a composite action or a local shell.
package main

import (
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/sbom"
)

func main() { ghaction.Main(sbom.Stage) }
