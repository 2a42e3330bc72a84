package signing_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/release"
	"github.com/gantry-ci/gantry/internal/signing"
)

var platforms = []string{"linux/amd64", "linux/arm64"}

// fixture is a registry with a pushed multi-arch image, SBOM files, a scan
// result and a key pair.
type fixture struct {
	reg      *ocitest.Registry
	dir      string
	image    string // repo@sha256:… of the index
	plat     map[string]string
	sbomJSON string
	scan     string
	key, pub string // cosign.key, cosign.pub paths
	password string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, ocitest.RegistryOptions{})
}

// newFixtureOn is newFixture on a registry started with opts.
func newFixtureOn(t *testing.T, opts ocitest.RegistryOptions) *fixture {
	t.Helper()
	reg, err := ocitest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	f := &fixture{reg: reg, dir: t.TempDir(), password: "correct horse battery staple"}
	f.image, f.plat = pushImage(t, reg, "acme/app:1", ocitest.BaseOptions{})

	sboms := map[string][]string{}
	for _, p := range platforms {
		slug := strings.ReplaceAll(p, "/", "-")
		spdx := filepath.Join("sbom", slug+".spdx.json")
		cdx := filepath.Join("sbom", slug+".cyclonedx.json")
		writeFile(t, filepath.Join(f.dir, spdx), spdxDoc(p))
		writeFile(t, filepath.Join(f.dir, cdx), cyclonedxDoc(p))
		sboms[p] = []string{spdx, cdx}
	}
	b, _ := json.Marshal(sboms)
	f.sbomJSON = string(b)
	f.scan = filepath.Join(f.dir, "scan.vuln.json")
	writeFile(t, f.scan, `{"invocation":{"uri":"https://github.com/acme/app/actions/runs/1"},"scanner":{"uri":"pkg:github/aquasecurity/trivy@v0.74.0","version":"0.74.0","db":{"uri":"","version":"2"},"result":{"Results":[]}},"metadata":{"scanStartedOn":"2026-11-25T00:00:00Z","scanFinishedOn":"2026-11-25T00:00:05Z"}}`)
	f.key, f.pub = gantryKeyPair(t, f.dir, "gantry", f.password)
	return f
}

// pushImage pushes a two-platform index and returns it by digest with its
// platform manifest digests.
// Other BaseOptions give other digests.
func pushImage(t *testing.T, reg *ocitest.Registry, repoTag string, opts ocitest.BaseOptions) (string, map[string]string) {
	t.Helper()
	tagged, idx, err := ocitest.PushBase(t.Context(), reg.Host, repoTag, platforms, opts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	plat := map[string]string{}
	for _, m := range im.Manifests {
		plat[m.Platform.String()] = m.Digest.String()
	}
	repo := tagged[:strings.LastIndex(tagged, ":")]
	return repo + "@" + d.String(), plat
}

func gantryKeyPair(t *testing.T, dir, prefix, password string) (key, pub string) {
	t.Helper()
	priv, pubPEM, err := signing.GenerateKeyPair([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	key, pub = filepath.Join(dir, prefix+".key"), filepath.Join(dir, prefix+".pub")
	writeFile(t, key, string(priv))
	writeFile(t, pub, string(pubPEM))
	return key, pub
}

func spdxDoc(platform string) string {
	return fmt.Sprintf(`{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"acme/app %s","documentNamespace":"https://gantry.dev/spdx/%s","creationInfo":{"created":"2026-11-25T00:00:00Z","creators":["Tool: gantry-test"]},"packages":[{"name":"busybox","SPDXID":"SPDXRef-Package-busybox","versionInfo":"1.36.1","downloadLocation":"NOASSERTION"}]}`, platform, strings.ReplaceAll(platform, "/", "-"))
}

func cyclonedxDoc(platform string) string {
	return fmt.Sprintf(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{"component":{"type":"container","name":"acme/app %s"}},"components":[{"type":"library","name":"busybox","version":"1.36.1"}]}`, platform)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// keyInputs are sign inputs for key mode on the fixture.
func (f *fixture) keyInputs(image, key, password string, attest ...string) signing.Inputs {
	return signing.Inputs{
		Image: image, Key: key, KeyPassword: password, Keyless: "auto", TlogUpload: "auto",
		Recursive: true, Attestations: attest, SBOMFiles: f.sbomJSON, ScanResult: f.scan,
		Dir: f.dir, ReportFile: "report.json", Jobs: 4, Timeout: 2 * time.Minute,
		Build: buildContext(),
	}
}

func buildContext() signing.BuildContext {
	return signing.BuildContext{
		ServerURL: "https://github.com", Repository: "acme/app", RepositoryID: "101", OwnerID: "202",
		Ref: "refs/heads/main", SHA: "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		WorkflowRef: "acme/app/.github/workflows/release.yml@refs/heads/main", EventName: "push",
		RunID: "4242", RunAttempt: "2", RunnerEnvironment: "github-hosted",
		StartedOn: time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC),
	}
}

func keyPolicy(key string, require ...string) signing.Policy {
	return signing.Policy{Key: key, Require: require, Recursive: true}
}

// bundleTypes lists the predicate types of the Sigstore bundles referring
// to a digest, as a registry client sees them.
func bundleTypes(t *testing.T, digest string) []string {
	t.Helper()
	d, err := name.NewDigest(digest)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	var out []string
	for _, m := range im.Manifests {
		if pt, ok := m.Annotations["dev.sigstore.bundle.predicateType"]; ok {
			out = append(out, pt)
		}
	}
	slices.Sort(out)
	return out
}

// TestSignWithKeyThenVerify signs an index and its platforms with a key,
// attests SBOMs, provenance and a scan, and checks what a registry client
// and the verifier see.
func TestSignWithKeyThenVerify(t *testing.T) {
	f := newFixture(t)
	repo, indexDigest, _ := strings.Cut(f.image, "@")
	// The build stage's record of this image: the sign stage adds to it.
	relPath := filepath.Join(f.dir, "gantry-release.json")
	if _, err := release.Write(relPath, release.Record{Image: f.image, Digest: indexDigest}); err != nil {
		t.Fatal(err)
	}
	in := f.keyInputs(f.image, f.key, f.password, "sbom", "provenance", "scan")
	in.ReleaseFile = "gantry-release.json"
	out, err := signing.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := release.Read(relPath)
	var section struct {
		Mode   string                 `json:"mode"`
		Signed []signing.SignedDigest `json:"signed"`
	}
	if err != nil || json.Unmarshal(rec.Stages["sign"], &section) != nil || section.Mode != "sign" || len(section.Signed) != 3 {
		t.Errorf("release record sign section: %s (%v)", rec.Stages["sign"], err)
	}
	want := []signing.SignedDigest{
		{Digest: indexDigest, Types: []string{"provenance", "scan", "signature"}},
	}
	for _, p := range platforms {
		want = append(want, signing.SignedDigest{Digest: f.plat[p], Platform: p, Types: []string{"provenance", "sbom/cyclonedx", "sbom/spdx", "signature"}})
	}
	var got []signing.SignedDigest
	for _, sd := range out.Signed {
		got = append(got, signing.SignedDigest{Digest: sd.Digest, Platform: sd.Platform, Types: sd.Types})
		// Each type attached once, found on the read-back via the API.
		var types []string
		for _, a := range sd.Attached {
			if !a.Found || !strings.HasPrefix(a.Manifest, "sha256:") {
				t.Errorf("%s: attached %+v", sd.Digest, a)
			}
			types = append(types, a.Type)
		}
		if !slices.Equal(types, sd.Types) || sd.Referrers != "referrers API" || sd.Readded != 0 {
			t.Errorf("%s: attached %+v via %q, %d re-added; want %v via the referrers API", sd.Digest, sd.Attached, sd.Referrers, sd.Readded, sd.Types)
		}
	}
	if mustJSON(got) != mustJSON(want) {
		t.Errorf("signed output\n got %s\nwant %s", mustJSON(got), mustJSON(want))
	}
	if got := bundleTypes(t, f.image); !slices.Equal(got, sorted(signing.PredicateSLSA1, signing.PredicateSignature, signing.PredicateVuln)) {
		t.Errorf("bundles on the index: %v", got)
	}
	for _, p := range platforms {
		if got := bundleTypes(t, repo+"@"+f.plat[p]); !slices.Equal(got, sorted(signing.PredicateCycloneDX, signing.PredicateSLSA1, signing.PredicateSignature, signing.PredicateSPDX)) {
			t.Errorf("bundles on %s: %v", p, got)
		}
	}
	var rep signing.Report
	b, err := os.ReadFile(out.ReportFile)
	if err != nil || json.Unmarshal(b, &rep) != nil || rep.Image != f.image || len(rep.SBOMs) != 4 {
		t.Errorf("report file %s: %v %s", out.ReportFile, err, b)
	}

	rep, err = signing.Verify(t.Context(), f.image, keyPolicy(f.pub, "sbom", "provenance", "scan"))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.Verified || len(rep.Checks) != 3+2*3 {
		t.Fatalf("report: verified=%v, %d checks: %+v", rep.Verified, len(rep.Checks), rep.Checks)
	}
	for _, c := range rep.Checks {
		if !c.Passed || !strings.Contains(c.Reason, "signed by key sha256:") {
			t.Errorf("check %+v", c)
		}
		if c.What == "sbom" && !strings.HasPrefix(c.Reason, "spdx + cyclonedx") {
			t.Errorf("sbom check %+v, want both formats", c)
		}
	}
}

// TestVerifyFailures checks that each way a policy can fail is reported
// with its precise reason.
func TestVerifyFailures(t *testing.T) {
	f := newFixture(t)
	if _, err := signing.Run(t.Context(), f.keyInputs(f.image, f.key, f.password, "provenance")); err != nil {
		t.Fatal(err)
	}
	unsigned, _ := pushImage(t, f.reg, "acme/app:unsigned", ocitest.BaseOptions{Docker: true})
	target, _ := pushImage(t, f.reg, "acme/app:moved", ocitest.BaseOptions{Attestation: true})
	_, otherPub := gantryKeyPair(t, f.dir, "other", "pw")

	// A signature moved to another digest: copy the index's signature
	// referrer onto the unsigned image's index.
	moved := moveSignature(t, f.image, target)

	for _, tc := range []struct {
		name, image string
		policy      signing.Policy
		want        []string // substrings of the failed checks' reasons
		failed      int
	}{
		{"wrong key", f.image, keyPolicy(otherPub), []string{"does not verify with the trusted key"}, 3},
		{"missing required attestation", f.image, keyPolicy(f.pub, "sbom"), []string{"no sbom: no Sigstore bundle with predicate type https://spdx.dev/Document or https://cyclonedx.org/bom", "it has: provenance, signature"}, 2},
		{"never signed", unsigned, keyPolicy(f.pub), []string{"no signature", "never signed"}, 3},
		{"signature moved to another digest", moved, signing.Policy{Key: f.pub}, []string{"moved from another image"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := signing.Verify(t.Context(), tc.image, tc.policy)
			if !signing.IsVerificationError(err) {
				t.Fatalf("err = %v, want a verification error", err)
			}
			if rep.Verified {
				t.Fatal("verified, want not verified")
			}
			var failed []signing.Check
			for _, c := range rep.Checks {
				if !c.Passed {
					failed = append(failed, c)
				}
			}
			if len(failed) != tc.failed {
				t.Errorf("%d failed checks, want %d: %+v", len(failed), tc.failed, rep.Checks)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// moveSignature copies the signature referrer of from onto to (both
// repo@sha256:… in one repository) and returns to.
func moveSignature(t *testing.T, from, to string) string {
	t.Helper()
	src, _ := name.NewDigest(from)
	dst, _ := name.NewDigest(to)
	idx, err := remote.Referrers(src)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for _, m := range im.Manifests {
		if m.Annotations["dev.sigstore.bundle.predicateType"] != signing.PredicateSignature {
			continue
		}
		img, err := remote.Image(src.Context().Digest(m.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		man, _ := img.Manifest()
		desc, err := remote.Head(dst)
		if err != nil {
			t.Fatal(err)
		}
		man.Subject = &v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
		raw, _ := json.Marshal(man)
		// Blobs are cross-mounted by being in the same repository.
		if err := remote.Put(dst.Context().Digest(digestOf(raw)), rawManifest(raw)); err != nil {
			t.Fatal(err)
		}
		return to
	}
	t.Fatal("no signature referrer to move")
	return ""
}

// rawManifest is a manifest remote.Put pushes as is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func digestOf(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.String()
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestValidate checks that bad input fails fast with the input's name and the fix.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   signing.Inputs
		want string
	}{
		{"no image", signing.Inputs{Key: "k"}, `input "image" is required`},
		{"nothing to sign with", signing.Inputs{Image: "r@sha256:x", Keyless: "auto"}, `set "key"`},
		{"keyless and key", signing.Inputs{Image: "r", Key: "k", Keyless: "true"}, `"keyless: true" and "key" exclude each other`},
		{"bad attestation", signing.Inputs{Image: "r", Key: "k", Attestations: []string{"sbomz"}}, `input "attestations": "sbomz" is not one of sbom, provenance, scan`},
		{"sbom without files", signing.Inputs{Image: "r", Key: "k", Attestations: []string{"sbom"}}, `"sbom-files" is empty`},
		{"verify without policy", signing.Inputs{Image: "r", Verify: true}, `verify needs a policy`},
		{"identity without issuer", signing.Inputs{Image: "r", Verify: true, CertificateIdentity: "x"}, `"certificate-oidc-issuer" is empty`},
		{"bad require", signing.Inputs{Image: "r", Verify: true, Key: "k", Require: []string{"slsa"}}, `input "require": "slsa"`},
		{"bad tlog", signing.Inputs{Image: "r", Key: "k", TlogUpload: "maybe"}, `input "tlog-upload" is "maybe"`},
		{"source repository with a key", signing.Inputs{Image: "r", Verify: true, Key: "k", VerifySourceRepository: "acme/app"}, `input "verify-source-repository" needs a keyless policy: a key signature carries no repository`},
		{"source ref with a key", signing.Inputs{Image: "r", Verify: true, Key: "k", VerifySourceRefRegexp: "^refs/tags/"}, `input "verify-source-ref-regexp" needs a keyless policy`},
		{"source repository not a repository", signing.Inputs{Image: "r", Verify: true, CertificateIdentity: "x", CertificateOIDCIssuer: "y", VerifySourceRepository: "acme"}, `input "verify-source-repository" is "acme": use OWNER/NAME`},
		{"source ref regexp", signing.Inputs{Image: "r", Verify: true, CertificateIdentity: "x", CertificateOIDCIssuer: "y", VerifySourceRefRegexp: "(v"}, `input "verify-source-ref-regexp": error parsing regexp`},
		{"half registry auth", signing.Inputs{Image: "r", Key: "k", RegistryUsername: "u"}, `"registry-username" and "registry-password" go together`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSignInputErrors checks errors found only when reading files and keys.
func TestSignInputErrors(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		edit func(*signing.Inputs)
		want string
	}{
		{"wrong password", func(in *signing.Inputs) { in.KeyPassword = "nope" }, `check "key-password"`},
		{"empty env key", func(in *signing.Inputs) {
			in.Key = "env://COSIGN_PRIVATE_KEY"
			in.Getenv = func(string) string { return "" }
		}, `the environment variable COSIGN_PRIVATE_KEY is empty`},
		{"sbom of a platform not in the image", func(in *signing.Inputs) {
			in.Attestations = []string{"sbom"}
			in.SBOMFiles = `{"linux/s390x":["sbom/linux-amd64.spdx.json"]}`
		}, `platform linux/s390x (sbom/linux-amd64.spdx.json) is not in the image, which has linux/amd64, linux/arm64`},
		{"not an SBOM", func(in *signing.Inputs) {
			in.Attestations = []string{"sbom"}
			in.SBOMFiles = `{"linux/amd64":["scan.vuln.json"]}`
		}, `neither SPDX JSON`},
		{"keyless without a token", func(in *signing.Inputs) { in.Key, in.Keyless = "", "true" }, `give the job "permissions: id-token: write"`},
		{"scan result of another type", func(in *signing.Inputs) {
			in.Attestations = []string{"scan"}
			in.ScanResult = "sbom/linux-amd64.spdx.json"
		}, `is not a cosign vulnerability predicate (https://cosign.sigstore.dev/attestation/vuln/v1): it has no "scanner"`},
		{"tag not found", func(in *signing.Inputs) { in.Image = f.reg.Host + "/acme/app:missing" }, `input "image": ` + f.reg.Host + `/acme/app:missing is a tag and resolving it failed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := f.keyInputs(f.image, f.key, f.password)
			tc.edit(&in)
			_, err := signing.Run(t.Context(), in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run() = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSBOMDirectoryAndEnvKey signs with the key in an environment variable
// and SBOMs from a directory, telling the formats apart by content.
func TestSBOMDirectoryAndEnvKey(t *testing.T) {
	f := newFixture(t)
	keyPEM, err := os.ReadFile(f.key)
	if err != nil {
		t.Fatal(err)
	}
	// Swap the names' formats: content, not name, decides.
	writeFile(t, filepath.Join(f.dir, "odd", "linux-amd64.spdx.json"), cyclonedxDoc("linux/amd64"))
	in := f.keyInputs(f.image, "env://COSIGN_PRIVATE_KEY", f.password, "sbom")
	in.Getenv = func(k string) string {
		if k == "COSIGN_PRIVATE_KEY" {
			return string(keyPEM)
		}
		return ""
	}
	in.SBOMFiles = "odd"
	in.Recursive = false
	out, err := signing.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Report.SBOMs) != 1 || out.Report.SBOMs[0].Format != "cyclonedx" || out.Report.SBOMs[0].Platform != "linux/amd64" {
		t.Errorf("SBOMs read from the directory: %+v", out.Report.SBOMs)
	}
	repo, _, _ := strings.Cut(f.image, "@")
	if got := bundleTypes(t, repo+"@"+f.plat["linux/amd64"]); !slices.Equal(got, []string{signing.PredicateCycloneDX}) {
		t.Errorf("bundles on linux/amd64 (recursive false: the SBOM only): %v", got)
	}
	if got := bundleTypes(t, repo+"@"+f.plat["linux/arm64"]); len(got) != 0 {
		t.Errorf("bundles on linux/arm64: %v, want none", got)
	}
}

// TestSignSummary: per digest, what was attached and what the read-back
// of its referrers found, missing attestations named.
func TestSignSummary(t *testing.T) {
	md := signing.Summary(signing.Outputs{Report: signing.Report{
		Image: "ghcr.io/acme/app@sha256:0433f73a751060932c9303b1873e2d703619744b7c4bb8104a4116aa5d671924", Mode: "sign", Signer: "key sha256:07868b1f8b089d17",
		Signed: []signing.SignedDigest{
			{Digest: "sha256:0433f73a751060932c9303b1873e2d703619744b7c4bb8104a4116aa5d671924", Types: []string{"signature"}, Referrers: "referrers API",
				Attached: []signing.Attached{{Type: "signature", Manifest: "sha256:aa", Found: true}}},
			{Digest: "sha256:3255405628cdbe32e98890996a7a3272715d60c5dbe01fd4e7e3e23aa488b48d", Platform: "linux/amd64", Types: []string{"signature"},
				Referrers: "fallback tag sha256-3255405628cdbe32e98890996a7a3272715d60c5dbe01fd4e7e3e23aa488b48d", Readded: 2,
				Attached: []signing.Attached{{Type: "sbom/spdx", Manifest: "sha256:bb"}, {Type: "signature", Manifest: "sha256:cc", Found: true}}},
		},
	}})
	for _, want := range []string{
		"| `sha256:0433f73a7510…` | index | signature | ✅ 1 of 1, referrers API |",
		"| `sha256:3255405628cd…` | linux/amd64 | signature | ❌ 1 of 2, missing sbom/spdx, fallback tag `sha256-3255405628cdbe32e98890996a7a3272715d60c5dbe01fd4e7e3e23aa488b48d` (2 lost to another writer and re-added) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

// TestSummary renders a failed verification the way a reviewer reads it.
func TestSummary(t *testing.T) {
	md := signing.Summary(signing.Outputs{Report: signing.Report{
		Image: "ghcr.io/acme/app@sha256:0433f73a751060932c9303b1873e2d703619744b7c4bb8104a4116aa5d671924", Mode: "verify", Policy: "key sha256:07868b1f8b089d17",
		Checks: []signing.Check{
			{Digest: "sha256:0433f73a751060932c9303b1873e2d703619744b7c4bb8104a4116aa5d671924", What: "signature", Passed: true, Reason: "signed by key sha256:07868b1f8b089d17"},
			{Digest: "sha256:3255405628cdbe32e98890996a7a3272715d60c5dbe01fd4e7e3e23aa488b48d", Platform: "linux/amd64", What: "sbom", Reason: "no sbom | none"},
		},
	}})
	for _, want := range []string{
		"### Gantry verify: NOT verified",
		"| `sha256:0433f73a7510…` | index | signature | ✅ pass | signed by key sha256:07868b1f8b089d17 |",
		"| `sha256:3255405628cd…` | linux/amd64 | sbom | ❌ fail | no sbom \\| none |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}
