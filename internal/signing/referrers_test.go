package signing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gantry-ci/gantry/internal/ghaction"
	"github.com/gantry-ci/gantry/internal/ocitest"
	"github.com/gantry-ci/gantry/internal/signing"
)

// The two kinds of registry every attachment test runs against.
var registryKinds = []struct {
	name string
	opts ocitest.RegistryOptions
	via  string // how SignedDigest.Referrers starts
}{
	{"referrers API", ocitest.RegistryOptions{}, "referrers API"},
	{"fallback tag", ocitest.RegistryOptions{NoReferrers: true}, "fallback tag sha256-"},
}

// wantTypes is what a full sign run attaches to each digest.
var wantTypes = map[string][]string{
	"":            {"provenance", "scan", "signature"},
	"linux/amd64": {"provenance", "sbom/cyclonedx", "sbom/spdx", "signature"},
	"linux/arm64": {"provenance", "sbom/cyclonedx", "sbom/spdx", "signature"},
}

// fullPolicy requires every attestation type, each SBOM format on its own.
func fullPolicy(pub string) signing.Policy {
	return keyPolicy(pub, signing.KindSPDX, signing.KindCycloneDX, signing.KindProvenance, signing.KindScan)
}

// on returns f on a fresh registry started with opts, with the image
// pushed to it (the SBOMs, scan result and key stay f's).
func (f *fixture) on(t *testing.T, opts ocitest.RegistryOptions) *fixture {
	t.Helper()
	reg, err := ocitest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	g := *f
	g.reg = reg
	g.image, g.plat = pushImage(t, reg, "acme/app:1", ocitest.BaseOptions{})
	return &g
}

// digestOfPlatform is repo@sha256:… of a platform ("" is the index).
func (f *fixture) digestOfPlatform(p string) name.Digest {
	ref := f.image
	if p != "" {
		ref = f.image[:strings.Index(f.image, "@")] + "@" + f.plat[p]
	}
	d, err := name.NewDigest(ref)
	if err != nil {
		panic(err)
	}
	return d
}

// checkAttached checks what a user checks after one or more sign runs:
// every manifest the runs say they attached is among the digest's
// referrers as a registry client lists them, each run's outputs list
// every type on every digest as found, the registry is of the kind
// intended, and Verify passes every attestation type on every platform.
func checkAttached(t *testing.T, f *fixture, via string, runs ...[]signing.SignedDigest) {
	t.Helper()
	for _, p := range []string{"", "linux/amd64", "linux/arm64"} {
		d := f.digestOfPlatform(p)
		listed := bundleManifests(t, d)
		for i, signed := range runs {
			j := slices.IndexFunc(signed, func(s signing.SignedDigest) bool { return s.Digest == d.DigestStr() })
			if j < 0 {
				t.Errorf("run %d: no output for %s", i, orIndex(p))
				continue
			}
			sd := signed[j]
			if !slices.Equal(sd.Types, wantTypes[p]) || !strings.HasPrefix(sd.Referrers, via) || sd.Platform != p {
				t.Errorf("run %d, %s: output %+v, want types %v read via %s", i, orIndex(p), sd, wantTypes[p], via)
			}
			for _, a := range sd.Attached {
				if !a.Found || !listed[a.Manifest] {
					t.Errorf("run %d, %s: the %s referrer %s is not among the %d referrers (output says found=%v)", i, orIndex(p), a.Type, a.Manifest, len(listed), a.Found)
				}
			}
		}
		_, err := remote.Head(d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1)))
		if fallback := strings.HasPrefix(via, "fallback"); fallback != (err == nil) {
			t.Errorf("%s: fallback tag read: %v; want it present only without the referrers API", orIndex(p), err)
		}
	}
	rep, err := signing.Verify(t.Context(), f.image, fullPolicy(f.pub))
	if err != nil || len(rep.Checks) != 3+2*4 {
		t.Errorf("verify: %d checks: %v", len(rep.Checks), err)
	}
}

// cosignVerifiesAll has the cosign CLI verify the signature of every
// digest and every attestation type on every platform.
func cosignVerifiesAll(t *testing.T, cosign cosignCLI, f *fixture) {
	t.Helper()
	for _, p := range []string{"", "linux/amd64", "linux/arm64"} {
		ref := f.digestOfPlatform(p).String()
		cosign.must(t, nil, "verify", "--key", f.pub, "--insecure-ignore-tlog=true", ref)
		types := []string{"slsaprovenance1", "vuln"}
		if p != "" {
			types = []string{"spdxjson", "cyclonedx", "slsaprovenance1"}
		}
		for _, typ := range types {
			cosign.must(t, nil, "verify-attestation", "--key", f.pub, "--insecure-ignore-tlog=true", "--type", typ, ref)
		}
	}
}

func orIndex(p string) string {
	if p == "" {
		return "index"
	}
	return p
}

// TestNoAttestationLost signs and attests a two-platform image (SPDX,
// CycloneDX, provenance, scan) 30 times, each time on a fresh registry,
// with and without the referrers API: every attestation is listed and
// verifies every time. Without the API, attestations of one digest were
// attached concurrently and the fallback tag's last writer dropped the
// others (issue 14: before the fix, 6 of 10 runs lost one or more). Our
// own Verify checks every run; the cosign CLI the first, middle and last.
func TestNoAttestationLost(t *testing.T) {
	t.Parallel() // each has its own registry; the three long tests overlap
	const runs = 30
	base := newFixture(t)
	cosign := newCosign(t)
	for _, kind := range registryKinds {
		t.Run(kind.name, func(t *testing.T) {
			start := time.Now()
			readded := 0
			for i := range runs {
				t.Run(fmt.Sprintf("run %02d", i), func(t *testing.T) {
					f := base.on(t, kind.opts)
					out, err := signing.Run(t.Context(), f.keyInputs(f.image, f.key, f.password, "sbom", "provenance", "scan"))
					if err != nil {
						t.Fatal(err)
					}
					checkAttached(t, f, kind.via, out.Signed)
					for _, sd := range out.Signed {
						readded += sd.Readded
					}
					if i == 0 || i == runs/2 || i == runs-1 {
						cosignVerifiesAll(t, cosign, f)
					}
				})
			}
			t.Logf("%d runs in %s, %d entries re-added", runs, time.Since(start).Round(time.Millisecond), readded)
		})
	}
}

// TestConcurrentSignRunsKeepEveryAttestation runs two gantry-sign
// processes at once on the same digest, ten times on fresh registries
// with and without the referrers API (two jobs of one workflow, or a
// re-run beside a running job): both succeed, and every attestation either
// wrote is listed. Without the API, reading the fallback tag takes 20ms
// (as on a remote registry), which widens the window in which one run's
// write drops the other's entries. Our own Verify checks every round; the
// cosign CLI the first and the last.
func TestConcurrentSignRunsKeepEveryAttestation(t *testing.T) {
	t.Parallel() // each has its own registry; the three long tests overlap
	const rounds = 10
	base := newFixture(t)
	cosign := newCosign(t)
	bin := buildSign(t)
	for _, kind := range registryKinds {
		t.Run(kind.name, func(t *testing.T) {
			start := time.Now()
			readded := 0
			for i := range rounds {
				t.Run(fmt.Sprintf("round %02d", i), func(t *testing.T) {
					opts := kind.opts
					if opts.NoReferrers {
						slow := &ocitest.Fault{Match: ocitest.FallbackTag(http.MethodGet, ""), Delay: 20 * time.Millisecond}
						opts.Wrap = slow.Wrap
					}
					f := base.on(t, opts)
					var wg sync.WaitGroup
					outs := make([][]signing.SignedDigest, 2)
					for p := range outs {
						wg.Go(func() { outs[p] = runSignProcess(t, bin, f, p) })
					}
					wg.Wait()
					if t.Failed() {
						return
					}
					checkAttached(t, f, kind.via, outs...)
					for _, out := range outs {
						for _, sd := range out {
							readded += sd.Readded
						}
					}
					if i == 0 || i == rounds-1 {
						cosignVerifiesAll(t, cosign, f)
					}
				})
			}
			t.Logf("%d rounds of two processes in %s, %d entries re-added", rounds, time.Since(start).Round(time.Millisecond), readded)
		})
	}
}

// buildSign builds cmd/sign into the test's temporary directory.
func buildSign(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gantry-sign")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	// make build's flags: the build cache serves the link it made.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, "./cmd/sign")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sign: %v\n%s", err, out)
	}
	return bin
}

// runSignProcess runs gantry-sign as the composite action does (INPUT_*
// variables, outputs to GITHUB_OUTPUT) and returns its signed output.
func runSignProcess(t *testing.T, bin string, f *fixture, n int) []signing.SignedDigest {
	t.Helper()
	work := t.TempDir()
	outFile := filepath.Join(work, "github-output")
	os.WriteFile(outFile, nil, 0o644)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = f.dir
	cmd.Env = []string{
		"HOME=" + work, "PATH=" + os.Getenv("PATH"),
		"INPUT_IMAGE=" + f.image,
		"INPUT_KEY=" + f.key,
		"INPUT_KEY-PASSWORD=" + f.password,
		"INPUT_ATTESTATIONS=sbom,provenance,scan",
		"INPUT_SBOM-FILES=" + f.sbomJSON,
		"INPUT_SCAN-RESULT=" + f.scan,
		"INPUT_REPORT-FILE=" + filepath.Join(work, "report.json"),
		"INPUT_TIMEOUT=2m",
		"GITHUB_OUTPUT=" + outFile,
		"GITHUB_STEP_SUMMARY=" + filepath.Join(work, "summary.md"),
		"GITHUB_REPOSITORY=acme/app", "GITHUB_SHA=9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
		"GITHUB_RUN_ID=" + fmt.Sprint(4242+n), "GITHUB_RUN_ATTEMPT=1",
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("gantry-sign #%d: %v\n%s", n, err, out)
		return nil
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Error(err)
		return nil
	}
	outs, err := ghaction.ParseOutputFile(bytes.NewReader(b))
	if err != nil {
		t.Error(err)
		return nil
	}
	var signed []signing.SignedDigest
	if err := json.Unmarshal([]byte(outs["signed"]), &signed); err != nil || len(signed) != 3 {
		t.Errorf("gantry-sign #%d: signed output %q: %v", n, outs["signed"], err)
	}
	return signed
}

// TestFallbackIndexWriteFaults answers writes of the fallback tag with
// 503 on a registry without the referrers API. Failures that pass (the
// first three writes, or every write stored and then answered 503) end
// with every attestation listed; a platform whose index can never be
// written ends in an error that names what is missing, with the outputs
// and summary saying the same: never a silent loss.
func TestFallbackIndexWriteFaults(t *testing.T) {
	t.Parallel() // each has its own registry; the three long tests overlap
	base := newFixture(t)
	amd := base.plat["linux/amd64"]
	for _, tc := range []struct {
		name  string
		fault *ocitest.Fault
		fails bool
	}{
		{"first three writes refused", &ocitest.Fault{Match: ocitest.FallbackTag(http.MethodPut, ""), Status: http.StatusServiceUnavailable, Times: 3}, false},
		{"every write stored, then answered 503", &ocitest.Fault{Match: ocitest.FallbackTag(http.MethodPut, ""), Status: http.StatusServiceUnavailable, After: true}, false},
		{"every write of linux/amd64's index refused", &ocitest.Fault{Match: ocitest.FallbackTag(http.MethodPut, amd), Status: http.StatusServiceUnavailable}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fault := tc.fault
			f := base.on(t, ocitest.RegistryOptions{NoReferrers: true, Wrap: fault.Wrap})
			in := f.keyInputs(f.image, f.key, f.password, "sbom", "provenance", "scan")
			// Fail fast on the registry's own retries of other requests.
			in.Backoff = remote.Backoff{Duration: 10 * time.Millisecond, Factor: 2, Steps: 2}
			start := time.Now()
			out, err := signing.Run(t.Context(), in)
			t.Logf("%d writes failed; %s", fault.Failed(), time.Since(start).Round(time.Millisecond))
			if fault.Failed() == 0 {
				t.Fatal("no write of the fallback tag failed: the fault did not apply")
			}
			if !tc.fails {
				if err != nil {
					t.Fatal(err)
				}
				checkAttached(t, f, "fallback tag sha256-", out.Signed)
				return
			}
			if err == nil {
				t.Fatal("signing succeeded while linux/amd64's referrers could never be written")
			}
			for _, want := range []string{"sha256-" + strings.TrimPrefix(amd, "sha256:"), "of linux/amd64", "after 10 tries", "injected fault"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
			t.Logf("the error:\n%v", err)
			// The outputs say exactly what the registry lists: nothing
			// on linux/amd64; the jobs cancelled with it never attached.
			i := slices.IndexFunc(out.Signed, func(s signing.SignedDigest) bool { return s.Platform == "linux/amd64" })
			if i < 0 {
				t.Fatalf("the outputs do not list linux/amd64: %+v", out.Signed)
			}
			for _, sd := range out.Signed {
				listed := bundleManifests(t, f.digestOfPlatform(sd.Platform))
				for _, a := range sd.Attached {
					if a.Found != listed[a.Manifest] || (sd.Platform == "linux/amd64" && a.Found) {
						t.Errorf("%s: output says the %s referrer %s found=%v, the registry lists it: %v", orIndex(sd.Platform), a.Type, a.Manifest, a.Found, listed[a.Manifest])
					}
				}
			}
			if md := signing.Summary(out); !strings.Contains(md, "| linux/amd64 |") || !strings.Contains(md, "❌ 0 of") {
				t.Errorf("the summary does not show linux/amd64's attestations missing:\n%s", md)
			}
			if _, err := os.Stat(out.ReportFile); err != nil {
				t.Errorf("no report file: %v", err)
			}
			// What a user checks: verification fails on linux/amd64.
			rep, verr := signing.Verify(t.Context(), f.image, fullPolicy(f.pub))
			if verr == nil {
				t.Fatal("verify passed")
			}
			amdFailed := 0
			for _, c := range rep.Checks {
				if !c.Passed && c.Platform == "linux/amd64" {
					amdFailed++
				}
			}
			if amdFailed != 4 {
				t.Errorf("%d checks failed on linux/amd64, want all 4: %+v", amdFailed, rep.Checks)
			}
		})
	}
}

// TestVerifyRequiresEachSBOMFormatPerPlatform leaves the registry as issue
// 14 found it (linux/amd64's SPDX attestation dropped from its fallback
// tag's index) and checks that a policy naming the format fails on exactly
// that platform, with or without recursive, where "sbom" (any format)
// passes.
func TestVerifyRequiresEachSBOMFormatPerPlatform(t *testing.T) {
	f := newFixture(t).on(t, ocitest.RegistryOptions{NoReferrers: true})
	if _, err := signing.Run(t.Context(), f.keyInputs(f.image, f.key, f.password, "sbom", "provenance", "scan")); err != nil {
		t.Fatal(err)
	}
	amd := f.digestOfPlatform("linux/amd64")
	dropReferrer(t, amd, signing.PredicateSPDX)
	cosign := newCosign(t)
	if out, err := cosign.run(t, nil, "verify-attestation", "--key", f.pub, "--insecure-ignore-tlog=true", "--type", "spdxjson", amd.String()); err == nil || !strings.Contains(out, "none of the attestations matched the predicate type") {
		t.Fatalf("cosign still finds the dropped SPDX attestation: %v\n%s", err, out)
	}

	if _, err := signing.Verify(t.Context(), f.image, keyPolicy(f.pub, signing.KindSBOM)); err != nil {
		t.Errorf("require sbom (any format): %v", err)
	}
	for _, recursive := range []bool{true, false} {
		p := keyPolicy(f.pub, signing.KindSPDX, signing.KindCycloneDX)
		p.Recursive = recursive
		rep, err := signing.Verify(t.Context(), f.image, p)
		if !signing.IsVerificationError(err) {
			t.Fatalf("recursive %v: err = %v, want a verification error", recursive, err)
		}
		var failed []signing.Check
		sbomChecks := 0
		for _, c := range rep.Checks {
			if strings.HasPrefix(c.What, "sbom/") {
				sbomChecks++
			}
			if !c.Passed {
				failed = append(failed, c)
			}
		}
		if sbomChecks != 4 || len(failed) != 1 || failed[0].Platform != "linux/amd64" || failed[0].What != signing.KindSPDX ||
			!strings.Contains(failed[0].Reason, "no sbom/spdx") || !strings.Contains(failed[0].Reason, "it has: provenance, sbom/cyclonedx, signature") {
			t.Errorf("recursive %v: %d SBOM checks, failed %+v; want 4, and sbom/spdx on linux/amd64 failed", recursive, sbomChecks, failed)
		}
	}
}

// bundleManifests lists the referrer manifests of d as a registry client
// sees them.
func bundleManifests(t *testing.T, d name.Digest) map[string]bool {
	t.Helper()
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	out := map[string]bool{}
	for _, m := range im.Manifests {
		out[m.Digest.String()] = true
	}
	return out
}

// dropReferrer rewrites d's fallback tag index without its referrer of
// predicateType, as another writer's stale index would.
func dropReferrer(t *testing.T, d name.Digest, predicateType string) {
	t.Helper()
	tag := d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1))
	idx, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	n := len(im.Manifests)
	im.Manifests = slices.DeleteFunc(im.Manifests, func(m v1.Descriptor) bool {
		return m.Annotations["dev.sigstore.bundle.predicateType"] == predicateType
	})
	if len(im.Manifests) != n-1 {
		t.Fatalf("%d referrers of type %s on %s, want 1", n-len(im.Manifests), predicateType, d)
	}
	raw, _ := json.Marshal(im)
	if err := remote.Put(tag, rawIndex(raw)); err != nil {
		t.Fatal(err)
	}
}

// rawIndex is an image index remote.Put pushes as is.
type rawIndex []byte

func (m rawIndex) RawManifest() ([]byte, error)        { return m, nil }
func (m rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }
