// Command gantry-sign signs an image by digest — the index and every
// platform manifest — and attaches SBOM, SLSA provenance and scan
// attestations, keyless (GitHub OIDC → Fulcio → Rekor) or with a key; or,
// with files set, signs files and writes a <file>.sigstore.json bundle
// beside each. With verify: true it checks them against a policy instead.
// What it writes is what cosign v3 writes, so the cosign CLI verifies it.
package main

import (
	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/signing"
)

func main() { ghaction.Main(signing.Stage) }
