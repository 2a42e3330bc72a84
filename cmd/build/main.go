// Command gantry-build builds and pushes a multi-arch OCI image without
// Docker. It reads its inputs as GitHub hands them to actions (INPUT_IMAGE,
// INPUT_REGISTRY-PASSWORD ...), so it runs the same in a composite action, a
// Docker action, or a local shell.
package main

import (
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/image"
)

func main() { ghaction.Main(image.Stage) }
