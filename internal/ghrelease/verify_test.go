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

// keylessBundle and keyBundle are the parts of a Sigstore bundle (v0.3,
// as cosign sign-blob --bundle writes it) that VERIFY.md depends on: a
// Fulcio certificate and a log entry, or a public-key hint and no log
// entry (key mode, tlog-upload off, the sign stage's default).
var (
	keylessBundle = []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"MIIC1zCCAl2gAwIBAgIU"},"tlogEntries":[{"logIndex":"123456","kindVersion":{"kind":"hashedrekord","version":"0.0.1"}}]},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"MEUCIQ=="}}`)
	keyBundle     = []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"dlxSaFM5I9dJ6RjikstYvWP0poXcolUCrHOUQi1c6rw="}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"MEUCIQ=="}}`)
)

// reusable is the identity of Gantry's reusable workflow, which every
// repository that calls it signs with; reusableFlags are the flags a
// command checking it for repo takes.
const (
	reusable      = `^https://github\.com/gantry-ci/gantry/\.github/workflows/build-and-push\.yml@.*$`
	reusableFlags = "--certificate-identity-regexp '" + reusable + "' --certificate-oidc-issuer 'https://token.actions.githubusercontent.com' --certificate-github-workflow-repository " + repo
)

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
				"sha256sum --ignore-missing --check checksums.txt",
				"gh release download v1.2.3 --repo " + repo,
			},
			assets: []string{"app_linux_amd64.tar.gz", "app_linux_amd64.tar.gz.sigstore.json", "app_linux_arm64.tar.gz", "app_linux_arm64.tar.gz.sigstore.json", "checksums.txt", "gantry-release.json", "VERIFY.md"},
		},
		{
			// A reusable workflow signed: its identity is every caller's,
			// so each keyless command also names this repository.
			name: "keyless for one repository",
			sign: keylessSign(),
			setup: func(in *ghrelease.Inputs) {
				in.VerifyCertificateIdentityRegexp = reusable
				in.VerifySourceRepository = "https://github.com/" + repo + ".git"
			},
			want: []string{
				"cosign verify " + image + "@" + index + " " + reusableFlags + "\n",
				"cosign verify-attestation " + image + "@" + index + " --type slsaprovenance1 " + reusableFlags + "\n",
				"cosign verify-attestation " + image + "@" + amd64 + " --type spdxjson " + reusableFlags + "\n",
				"cosign verify-blob app_linux_amd64.tar.gz --bundle app_linux_amd64.tar.gz.sigstore.json " + reusableFlags + "\n",
				"the identity alone does not tie a signature to this project",
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

// TestVerifyDocBinaries: a release without an image record, shaped like
// Gantry's own — archives, a checksums file, its Sigstore bundle, SBOMs —
// gets a VERIFY.md (and a Verify section in the notes) for its files, and
// says nothing of an image. Golden files in
// testdata/TestVerifyDocBinaries/<case>/.
func TestVerifyDocBinaries(t *testing.T) {
	t.Parallel()
	const sums = "gantry_v1.2.3_checksums.txt"
	tests := []struct {
		name   string
		bundle []byte // the checksums file's; nil for none
		setup  func(in *ghrelease.Inputs)
		want   []string // lines VERIFY.md must contain
		not    []string // text it must not contain
		log    string   // a line the log must contain
	}{
		{
			name:   "keyless",
			bundle: keylessBundle,
			setup: func(in *ghrelease.Inputs) {
				in.VerifyCertificateIdentityRegexp = reusable
				in.VerifySourceRepository = repo
			},
			want: []string{
				"cosign verify-blob " + sums + " --bundle " + sums + ".sigstore.json " + reusableFlags + "\n",
				"sha256sum --ignore-missing --check " + sums + "\n",
				"for a run in the repository `" + repo + "`",
			},
			not: []string{"--insecure-ignore-tlog"},
		},
		{
			name:   "key without a transparency log",
			bundle: keyBundle,
			setup:  func(in *ghrelease.Inputs) { in.VerifyKey = "keys/cosign.pub" },
			want: []string{
				"cosign verify-blob " + sums + " --bundle " + sums + ".sigstore.json --key cosign.pub --insecure-ignore-tlog=true\n",
				"sha256sum --ignore-missing --check " + sums + "\n",
				"curl -fsSLo cosign.pub https://github.com/" + repo + "/raw/v1.2.3/keys/cosign.pub",
			},
			not: []string{"--certificate-"},
		},
		{
			name:  "checksums only",
			setup: func(in *ghrelease.Inputs) { in.VerifySourceRepository = repo },
			want:  []string{"sha256sum --ignore-missing --check " + sums + "\n"},
			not:   []string{"cosign", "sigstore"},
			log:   `warning: input "verify-source-repository" is set, but VERIFY.md has no keyless cosign command`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			files := []string{"gantry-scan_v1.2.3_darwin_arm64.tar.gz", "gantry-scan_v1.2.3_linux_amd64.spdx.json", "gantry-scan_v1.2.3_linux_amd64.tar.gz"}
			var list strings.Builder
			for i, f := range files {
				data := payload(3000+i, byte(i))
				e.write(t, "dist/"+f, data)
				if strings.HasSuffix(f, ".tar.gz") {
					list.WriteString(sha256hex(data) + "  " + f + "\n")
				}
			}
			e.write(t, "dist/"+sums, []byte(list.String()))
			files = append(files, sums)
			if tt.bundle != nil {
				e.write(t, "dist/"+sums+".sigstore.json", tt.bundle)
				files = append(files, sums+".sigstore.json")
			}
			in := e.inputs()
			in.Assets = []string{"dist/gantry*"}
			tt.setup(&in)
			out, err := e.run(t, in)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, e.log)
			}
			rel := e.one(t, "v1.2.3")
			if want := append(files, ghrelease.VerifyFile); !slices.Equal(rel.AssetNames(), want) {
				t.Errorf("assets %v, want %v", rel.AssetNames(), want)
			}
			doc, _ := rel.Asset(ghrelease.VerifyFile)
			if string(doc.Data) != out.Verify || out.Verify == "" {
				t.Errorf("the VERIFY.md asset differs from the one planned")
			}
			for _, w := range tt.want {
				if !strings.Contains(out.Verify, w) {
					t.Errorf("VERIFY.md lacks\n  %s\nin:\n%s", w, out.Verify)
				}
			}
			for _, n := range append(tt.not, "## The image", "release record", "gantry-release.json") {
				if strings.Contains(out.Verify, n) {
					t.Errorf("VERIFY.md holds %q:\n%s", n, out.Verify)
				}
			}
			verify, ok := strings.CutPrefix(rel.Body[strings.Index(rel.Body, "## Verify"):], "## Verify")
			if !ok || strings.Contains(rel.Body, "## Image") {
				t.Fatalf("notes want a Verify section and no Image section:\n%s", rel.Body)
			}
			for _, w := range tt.want[:1] {
				if !strings.Contains(verify, w) {
					t.Errorf("the notes' Verify section lacks %s", w)
				}
			}
			if tt.log != "" && !strings.Contains(e.log.String(), tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, e.log)
			}
			t.Run("VERIFY", func(t *testing.T) { golden.Check(t, []byte(out.Verify)) })
			t.Run("notes", func(t *testing.T) { golden.Check(t, []byte(rel.Body)) })
		})
	}
}

// TestNoVerifyDocWithoutChecks: files with no bundle and no checksums
// file, and no release record, give no VERIFY.md and no Verify section.
func TestNoVerifyDocWithoutChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.inputs()
	in.Assets = []string{"dist/*.tar.gz"}
	in.VerifyCertificateIdentityRegexp = identity
	out, err := e.run(t, in)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, e.log)
	}
	rel := e.one(t, "v1.2.3")
	if _, ok := rel.Asset(ghrelease.VerifyFile); ok || out.Verify != "" || strings.Contains(rel.Body, "## Verify") {
		t.Errorf("VERIFY.md or a Verify section for a release with nothing to verify: assets %v\n%s", rel.AssetNames(), rel.Body)
	}
}

// TestWorkflowRepository: the forms verify-source-repository takes, and
// what cosign's --certificate-github-workflow-repository gets (the
// extension holds owner/name, without a host).
func TestWorkflowRepository(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"acme/app":                             "acme/app",
		"Acme/My.App_2":                        "Acme/My.App_2",
		"acme/app/":                            "acme/app",
		"https://github.com/acme/app":          "acme/app",
		"https://github.com/acme/app.git":      "acme/app",
		"https://ghe.example.com/acme/app/":    "acme/app",
		"acme":                                 "",
		"acme/app/extra":                       "",
		"https://github.com/acme":              "",
		"http://github.com/acme/app":           "",
		"github.com/acme/app":                  "",
		"acme/app name":                        "",
		"https://user@github.com/acme/app":     "",
		"https://github.com/acme/app?tab=code": "",
	} {
		got, err := ghrelease.WorkflowRepository(in)
		switch {
		case want == "" && (err == nil || !strings.Contains(err.Error(), `input "verify-source-repository"`)):
			t.Errorf("WorkflowRepository(%q) = %q, %v; want an error naming the input", in, got, err)
		case want != "" && (err != nil || got != want):
			t.Errorf("WorkflowRepository(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
