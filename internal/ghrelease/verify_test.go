package ghrelease_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/internal/ghrelease"
	"github.com/gantry-ci/gantry/internal/golden"
)

const pubPEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2pJ6m8bJ0m7zJ0mYzZ1wY1c4l3t2
Kx3o5v6pQ7dM1y2Y3w9c5Z7b8a1Q2e3R4t5Y6u7I8o9P0a1S2d3F4g5H6j7K8A==
-----END PUBLIC KEY-----`

// TestVerifyDoc checks VERIFY.md and the notes' Image and Verify sections
// against testdata/TestVerifyDoc/<case>/{VERIFY,notes}.golden, and that
// the commands hold the exact digest, identity or key.
func TestVerifyDoc(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sign   map[string]any
		setup  func(in *ghrelease.Inputs)
		want   []string // lines VERIFY.md must contain
		assets []string
	}{
		{
			name: "keyless",
			sign: keylessSign(),
			setup: func(in *ghrelease.Inputs) {
				in.VerifyCertificateIdentityRegexp = identity
			},
			want: []string{
				"cosign verify " + image + "@" + index + " --certificate-identity-regexp '" + identity + "' --certificate-oidc-issuer 'https://token.actions.githubusercontent.com'",
				"cosign verify-attestation " + image + "@" + amd64 + " --type spdxjson --certificate-identity-regexp '" + identity + "' --certificate-oidc-issuer 'https://token.actions.githubusercontent.com'",
				"cosign verify-attestation " + image + "@" + arm64 + " --type cyclonedx --certificate-identity-regexp",
				"cosign verify-attestation " + image + "@" + index + " --type slsaprovenance1 --certificate-identity-regexp",
				"cosign verify-attestation " + image + "@" + index + " --type vuln --certificate-identity-regexp",
				"cosign verify-blob app_linux_amd64.tar.gz --bundle app_linux_amd64.tar.gz.sigstore.json --certificate-identity-regexp '" + identity + "'",
				"cosign verify-blob app_linux_arm64.tar.gz --bundle app_linux_arm64.tar.gz.sigstore.json",
				"sha256sum --check --ignore-missing checksums.txt",
				"gh release download v1.2.3 --repo " + repo,
			},
			assets: []string{"app_linux_amd64.tar.gz", "app_linux_amd64.tar.gz.sigstore.json", "app_linux_arm64.tar.gz", "app_linux_arm64.tar.gz.sigstore.json", "checksums.txt", "gantry-release.json", "VERIFY.md"},
		},
		{
			name: "key in the repository",
			sign: keySign(),
			setup: func(in *ghrelease.Inputs) {
				in.VerifyKey = "keys/cosign.pub"
			},
			want: []string{
				"cosign verify " + image + "@" + index + " --key cosign.pub",
				"cosign verify-attestation " + image + "@" + index + " --type slsaprovenance1 --key cosign.pub",
				"cosign verify-blob app_linux_amd64.tar.gz --bundle app_linux_amd64.tar.gz.sigstore.json --key cosign.pub",
				"curl -fsSLo cosign.pub https://github.com/" + repo + "/raw/v1.2.3/keys/cosign.pub",
			},
			assets: []string{"app_linux_amd64.tar.gz", "app_linux_amd64.tar.gz.sigstore.json", "app_linux_arm64.tar.gz", "app_linux_arm64.tar.gz.sigstore.json", "checksums.txt", "gantry-release.json", "VERIFY.md"},
		},
		{
			name: "key as PEM text",
			sign: keySign(),
			setup: func(in *ghrelease.Inputs) {
				in.VerifyKey = pubPEM
				in.Assets = []string{"dist/*.tar.gz"}
			},
			want:   []string{"cosign verify " + image + "@" + index + " --key cosign.pub", "`cosign.pub` is attached to this release"},
			assets: []string{"app_linux_amd64.tar.gz", "app_linux_arm64.tar.gz", "gantry-release.json", "VERIFY.md", "cosign.pub"},
		},
		{
			name:   "not signed",
			setup:  func(in *ghrelease.Inputs) { in.Assets = []string{"dist/*.tar.gz"} },
			want:   []string{"gantry-release.json has no sign section"},
			assets: []string{"app_linux_amd64.tar.gz", "app_linux_arm64.tar.gz", "gantry-release.json", "VERIFY.md"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			recPath := e.record(t, tt.sign)
			e.write(t, "dist/app_linux_amd64.tar.gz.sigstore.json", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
			e.write(t, "dist/app_linux_arm64.tar.gz.sigstore.json", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
			amdBytes, _ := os.ReadFile(e.dir + "/dist/app_linux_amd64.tar.gz")
			armBytes, _ := os.ReadFile(e.dir + "/dist/app_linux_arm64.tar.gz")
			e.write(t, "dist/checksums.txt", []byte(sha256hex(amdBytes)+"  app_linux_amd64.tar.gz\n"+sha256hex(armBytes)+"  app_linux_arm64.tar.gz\n"))
			in := e.inputs()
			in.ReleaseFile = "gantry-release.json"
			in.Assets = []string{"dist/*"}
			tt.setup(&in)
			out, err := e.run(t, in)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, e.log)
			}
			rel := e.one(t, "v1.2.3")
			if got := rel.AssetNames(); !slices.Equal(got, tt.assets) {
				t.Errorf("assets %v, want %v", got, tt.assets)
			}
			doc, _ := rel.Asset(ghrelease.VerifyFile)
			if string(doc.Data) != out.Verify || doc.ContentType != "text/markdown; charset=utf-8" {
				t.Errorf("the VERIFY.md asset (%s) differs from the one planned", doc.ContentType)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.Verify, w) {
					t.Errorf("VERIFY.md lacks\n  %s\nin:\n%s", w, out.Verify)
				}
			}
			rec, _ := rel.Asset("gantry-release.json")
			if want, _ := os.ReadFile(recPath); string(rec.Data) != string(want) {
				t.Error("the release record asset differs from the file")
			}
			for _, w := range []string{"## Image", "| linux/arm64 | `" + arm64 + "` |", "`" + image + ":1.2.3`", "## Verify"} {
				if !strings.Contains(rel.Body, w) {
					t.Errorf("notes lack %q", w)
				}
			}
			// The Verify section holds the same commands as VERIFY.md.
			if tt.sign != nil {
				verify := rel.Body[strings.Index(rel.Body, "## Verify"):]
				if !strings.Contains(verify, tt.want[0]) {
					t.Errorf("the notes' Verify section lacks %s:\n%s", tt.want[0], verify)
				}
			}
			t.Run("VERIFY", func(t *testing.T) { golden.Check(t, []byte(out.Verify)) })
			t.Run("notes", func(t *testing.T) { golden.Check(t, []byte(rel.Body)) })
		})
	}
}
